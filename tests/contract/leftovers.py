"""What a store holds besides published images, read behind the store's back with the servers' own clients.

The drivers keep only what the service uses; these checks are the tests' (moved out of the drivers).
"""

from __future__ import annotations

import json
import re
from typing import Any

from swiftclient.exceptions import ClientException

# A swift segment: <image id>-<node tag>-<upload tag>-<number>.
SEGMENT = re.compile(r"^(?P<image>.+)-[0-9a-f]{16}-[0-9a-f]{8}-\d{5}$")


def incomplete_uploads(client: Any, bucket: str) -> list[str]:
    """Keys of the bucket with a multipart upload in progress (client: a boto3 S3 client)."""
    return [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def orphan_segments(conn: Any, container: str) -> list[str]:
    """Segments in the container that no published static large object manifest uses (conn: swiftclient)."""
    try:
        _, listing = conn.get_container(container, full_listing=True)
    except ClientException as exc:
        if exc.http_status == 404:
            return []
        raise
    names = [o["name"] for o in listing]
    live: set[str] = set()
    for name in names:
        if SEGMENT.match(name):
            continue
        try:
            headers = conn.head_object(container, name)
            if headers.get("x-static-large-object", "").lower() != "true":
                continue
            _, body = conn.get_object(container, name, query_string="multipart-manifest=get&format=raw")
        except ClientException as exc:
            if exc.http_status == 404:
                continue
            raise
        live.update(str(s["path"]) for s in json.loads(body))
    return sorted(n for n in names if SEGMENT.match(n) and f"/{container}/{n}" not in live)
