"""The s3 store's options (glance_store's names); sizes in MiB."""

from __future__ import annotations

from oslo_config import cfg

OPTS: list[cfg.Opt] = [
    cfg.StrOpt("s3_store_host", help="S3 endpoint URL (http[s]://host:port); empty for AWS."),
    cfg.StrOpt("s3_store_access_key", secret=True, help="S3 access key."),
    cfg.StrOpt("s3_store_secret_key", secret=True, help="S3 secret key."),
    cfg.StrOpt("s3_store_bucket", help="Bucket holding the images."),
    cfg.BoolOpt("s3_store_create_bucket_on_put", default=False, help="Create the bucket when it is missing."),
    cfg.StrOpt(
        "s3_store_bucket_url_format",
        default="auto",
        choices=["auto", "path", "virtual"],
        help="Bucket addressing: path (host/bucket) or virtual (bucket.host). Glance checks the value when the store "
        "starts; Glimpse as the file is read.",
    ),
    cfg.StrOpt("s3_store_region_name", default="", help="Region of the S3 service."),
    cfg.IntOpt(
        "s3_store_large_object_size", default=100, min=0, help="MiB from which images go up as multipart uploads."
    ),
    cfg.IntOpt(
        "s3_store_large_object_chunk_size",
        default=10,
        min=5,
        help="MiB per part of a multipart upload. Glance checks the minimum of 5 when the store starts; Glimpse as "
        "the file is read.",
    ),
    cfg.StrOpt("s3_store_cacert", default="", help="CA bundle to verify the S3 endpoint with."),
]
