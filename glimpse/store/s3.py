"""The s3 store: one object per image in a bucket of any S3-compatible service, through boto3.

Writes never hold the image in memory. Data is spooled (in memory up to one part, then on disk)
until it reaches s3_store_large_object_size; a smaller image goes up in one PUT with its MD5, a
larger one as a multipart upload in parts of s3_store_large_object_chunk_size, each with its MD5.
Any failure, the size cap included, aborts the multipart upload, so no orphan parts are left.

Locations look like Glance's, without the credentials Glance embeds in them:
`s3+http://host:port/bucket/key` (`s3://` for https or AWS). The store's own credentials are used
for every location it reads, including Glance-style ones that carry `access:secret@`.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import logging
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from glimpse.errors import GlimpseError, NotFound, StoreError, StoreUnavailable
from glimpse.store.base import HashingMeter, StoredData
from glimpse.store.error_map import ErrorMap, guarded_read
from glimpse.store.objects import (
    MIB,
    READ_CHUNK,
    byte_range,
    fixed_blocks,
    metered,
    missing_container,
    object_location,
)
from glimpse.store.partials import upload_tag

if TYPE_CHECKING:  # types-boto3-s3 (a test tool) annotates boto3's generated S3 client
    from types_boto3_s3.client import S3Client
    from types_boto3_s3.type_defs import CompletedPartTypeDef

log = logging.getLogger(__name__)

MIN_PART = 5 * MIB  # S3 refuses smaller parts except the last
MISSING = {"NoSuchKey", "NoSuchBucket", "404", "NotFound"}
# s3_store_bucket_url_format -> botocore's addressing_style (the same three words).
AddressingStyle = Literal["auto", "path", "virtual"]
ADDRESSING_STYLES: dict[str, AddressingStyle] = {"auto": "auto", "path": "path", "virtual": "virtual"}


class S3Store:
    type = "s3"
    schemes = ("s3", "s3+http", "s3+https")
    read_only = False

    def __init__(
        self,
        name: str,
        *,
        host: str | None,
        access_key: str | None,
        secret_key: str | None,
        bucket: str,
        region_name: str | None = None,
        create_bucket_on_put: bool = False,
        bucket_url_format: str = "auto",
        large_object_size: int = 100 * MIB,
        large_object_chunk_size: int = 10 * MIB,
        cacert: str | None = None,
    ) -> None:
        if large_object_chunk_size < MIN_PART:
            raise StoreError(f"Store {name}: s3_store_large_object_chunk_size must be at least 5 (MiB).")
        addressing_style = ADDRESSING_STYLES.get(bucket_url_format)
        if addressing_style is None:
            raise StoreError(f"Store {name}: s3_store_bucket_url_format must be auto, path or virtual.")
        self.name = name
        self.bucket = bucket
        self.region_name = region_name
        self.create_bucket_on_put = create_bucket_on_put
        self.bucket_url_format = bucket_url_format
        self.large_object_size = large_object_size
        self.chunk_size = large_object_chunk_size
        self.endpoint = _endpoint(host)
        scheme = self.endpoint.split("://", 1)[0] if self.endpoint else "https"
        self.location_scheme = "s3+http" if scheme == "http" else "s3"
        self.netloc = self.endpoint.split("://", 1)[1].rstrip("/") if self.endpoint else "s3.amazonaws.com"
        self._client: S3Client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region_name or "us-east-1",
            verify=cacert if cacert else None,
            config=Config(
                s3={"addressing_style": addressing_style},
                retries={"max_attempts": 3, "mode": "standard"},
                # Glimpse sends Content-MD5 itself and hashes everything it reads; the newer CRC
                # trailers are not understood by every S3-compatible server.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        self._bucket_ready = False

    # --- locations -----------------------------------------------------------------------------
    def url_for(self, key: str) -> str:
        return f"{self.location_scheme}://{self.netloc}/{self.bucket}/{key}"

    def _parse(self, url: str) -> tuple[str, str]:
        return object_location(url, self.schemes, "an s3", path_in_host=False)

    # --- writing -------------------------------------------------------------------------------
    def add(
        self, image_id: str, chunks: Iterable[bytes], *, max_size: int, expected_size: int | None, hash_algo: str
    ) -> StoredData:
        self._ensure_bucket()
        meter = HashingMeter(max_size, hash_algo)
        source = iter(chunks)
        with tempfile.SpooledTemporaryFile(max_size=self.chunk_size) as spool:
            for chunk in source:
                meter.update(chunk)
                spool.write(chunk)
                if meter.size >= self.large_object_size:
                    break
            else:
                meter.check_expected(expected_size)
                spool.seek(0)
                self._put(image_id, spool, meter)
                return meter.result(self.url_for(image_id))
            spooled = iter(lambda: spool.read(READ_CHUNK), b"")
            spool.seek(0)
            # The size is checked before the last part, so a short or long upload is never completed.
            parts = fixed_blocks(
                itertools.chain(spooled, metered(source, meter)),
                self.chunk_size,
                lambda: meter.check_expected(expected_size),
            )
            self._multipart(image_id, parts)
        return meter.result(self.url_for(image_id))

    def _put(self, key: str, body: IO[bytes], meter: HashingMeter) -> None:
        with _errors(f"s3://{self.bucket}/{key}"):
            self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentLength=meter.size,
                ContentMD5=base64.b64encode(meter.md5.digest()).decode(),
            )

    def _multipart(self, key: str, parts: Iterator[bytes]) -> None:
        with _errors(f"s3://{self.bucket}/{key}"):
            upload_id = self._client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        done: list[CompletedPartTypeDef] = []
        try:
            for number, part in enumerate(parts, start=1):
                with _errors(f"s3://{self.bucket}/{key} part {number}"):
                    answer = self._client.upload_part(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=part,
                        ContentLength=len(part),
                        ContentMD5=base64.b64encode(hashlib.md5(part, usedforsecurity=False).digest()).decode(),
                    )
                done.append({"PartNumber": number, "ETag": answer["ETag"]})
            with _errors(f"s3://{self.bucket}/{key}"):
                self._client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
                )
        except BaseException:
            self._abort(key, upload_id)
            raise

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except (BotoCoreError, ClientError):
            log.exception("Could not abort the multipart upload %s of s3://%s/%s", upload_id, self.bucket, key)

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) not in MISSING:
                raise StoreError(f"Bucket {self.bucket} of store {self.name} is not usable: {exc}.") from exc
            if not self.create_bucket_on_put:
                raise missing_container("Bucket", self.bucket, self.name, "s3_store_create_bucket_on_put") from exc
            args: dict[str, Any] = {"Bucket": self.bucket}
            if self.region_name and self.region_name != "us-east-1":
                args["CreateBucketConfiguration"] = {"LocationConstraint": self.region_name}
            with _errors(f"s3://{self.bucket}"):
                self._client.create_bucket(**args)
        except (BotoCoreError, EndpointConnectionError) as exc:
            raise StoreUnavailable(f"Store {self.name} cannot reach {self.endpoint or 'S3'}: {exc}.") from exc
        self._bucket_ready = True

    # --- pieces (tus uploads) ----------------------------------------------------------------------
    # One multipart upload per tus upload, to the object `<image id>.tus-<upload id>`, which becomes the image's
    # location. S3 takes parts of 5 MiB or more but the last, and a PATCH may bring less: what is left over after
    # a PATCH's whole parts waits in a small "tail" object of its own, and goes first into the next PATCH's parts.
    # The handle lists the parts (number, ETag) and the tail; parts a PATCH sent but never committed are simply
    # not listed when the upload completes (S3 then drops them).
    def begin_pieces(self, image_id: str, upload_id: str) -> str:
        self._ensure_bucket()
        key = f"{image_id}.tus-{upload_id.replace('-', '')}"
        with _errors(f"s3://{self.bucket}/{key}"):
            multipart = self._client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        return json.dumps({"key": key, "upload": multipart, "parts": [], "tail": None, "tails": []})

    def append_piece(self, handle: str, chunks: Iterable[bytes]) -> str:
        state = json.loads(handle)
        tail = self.get(self.url_for(state["tail"])) if state["tail"] else iter(())
        parts, new_tail = list(state["parts"]), None
        blocks = fixed_blocks(itertools.chain(tail, chunks), self.chunk_size, lambda: None)
        try:
            for block in blocks:
                if len(block) < MIN_PART:  # the last, short block: it waits for the next PATCH or the end
                    new_tail = f"{state['key']}.tail-{upload_tag()}"
                    with _errors(f"s3://{self.bucket}/{new_tail}"):
                        self._client.put_object(Bucket=self.bucket, Key=new_tail, Body=block)
                    break
                parts.append([len(parts) + 1, self._part(state, len(parts) + 1, block)])
        except BaseException:
            if new_tail is not None:
                self.delete(self.url_for(new_tail))
            raise
        if len(parts) == len(state["parts"]) and new_tail is None:
            return handle  # nothing arrived
        tails = state["tails"] + ([state["tail"]] if state["tail"] else [])
        return json.dumps({**state, "parts": parts, "tail": new_tail, "tails": tails})

    def _part(self, state: dict[str, Any], number: int, block: bytes) -> str:
        with _errors(f"s3://{self.bucket}/{state['key']} part {number}"):
            answer = self._client.upload_part(
                Bucket=self.bucket,
                Key=state["key"],
                UploadId=state["upload"],
                PartNumber=number,
                Body=block,
                ContentLength=len(block),
                ContentMD5=base64.b64encode(hashlib.md5(block, usedforsecurity=False).digest()).decode(),
            )
        return str(answer["ETag"])

    def _complete(self, state: dict[str, Any]) -> None:
        parts = list(state["parts"])
        if state["tail"]:
            tail = b"".join(self.get(self.url_for(state["tail"])))
            parts.append([len(parts) + 1, self._part(state, len(parts) + 1, tail)])
        done: list[CompletedPartTypeDef] = [{"PartNumber": n, "ETag": etag} for n, etag in parts]
        key = state["key"]
        with _errors(f"s3://{self.bucket}/{key}"):
            if done:
                self._client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=state["upload"], MultipartUpload={"Parts": done}
                )
            else:  # no data at all: S3 completes no upload without parts
                self._abort(key, state["upload"])
                self._client.put_object(Bucket=self.bucket, Key=key, Body=b"")
        for tail in [*state["tails"], *([state["tail"]] if state["tail"] else [])]:
            self.delete(self.url_for(tail))

    def assemble(self, image_id: str, handles: Sequence[str]) -> str:
        states = [json.loads(h) for h in handles]
        for state in states:
            self._complete(state)
        if len(states) == 1:
            return self.url_for(states[0]["key"])
        # Joined through this node, in parts of the store's size: the partial objects' ends need not fall on
        # part boundaries S3 would take.
        key = f"{image_id}.tus-joined-{upload_tag()}"
        chunks = itertools.chain.from_iterable(self.get(self.url_for(s["key"])) for s in states)
        try:
            self._multipart(key, fixed_blocks(chunks, self.chunk_size, lambda: None))
        finally:
            for state in states:
                self.delete(self.url_for(state["key"]))
        return self.url_for(key)

    def drop_pieces(self, handle: str, keep: str | None = None) -> None:
        state = json.loads(handle)
        kept = json.loads(keep) if keep else None
        tails = {*state["tails"], *([state["tail"]] if state["tail"] else [])}
        if kept is not None:
            tails -= {*kept["tails"], *([kept["tail"]] if kept["tail"] else [])}
        for tail in tails:
            self.delete(self.url_for(tail))
        if kept is None:
            self._abort(state["key"], state["upload"])

    # --- reading -------------------------------------------------------------------------------
    def get(self, url: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        bucket, key = self._parse(url)
        if length == 0:
            return iter(())
        args: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if (wanted := byte_range(offset, length)) is not None:
            args["Range"] = wanted
        with _errors(url):
            body = self._client.get_object(**args)["Body"]
        return guarded_read(body.iter_chunks(READ_CHUNK), (BotoCoreError, ClientError), url, body.close)

    def size(self, url: str) -> int:
        bucket, key = self._parse(url)
        with _errors(url):
            return int(self._client.head_object(Bucket=bucket, Key=key)["ContentLength"])

    def delete(self, url: str) -> None:
        bucket, key = self._parse(url)
        try:
            with _errors(url):
                self._client.delete_object(Bucket=bucket, Key=key)
        except NotFound:
            pass

    def stored_ids(self) -> list[str]:
        """Keys of the complete objects in the bucket (multipart uploads in progress are not objects yet)."""
        keys: list[str] = []
        with _errors(f"s3://{self.bucket}"):
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
                keys.extend(item["Key"] for item in page.get("Contents", []) if "Key" in item)
        return sorted(keys)

    def properties(self) -> dict[str, object]:
        return {
            "bucket": self.bucket,
            "host": self.endpoint or "https://s3.amazonaws.com",
            "region_name": self.region_name or "",
            "bucket_url_format": self.bucket_url_format,
            "large_object_size": self.large_object_size,
            "large_object_chunk_size": self.chunk_size,
        }

    def recover(self, node: str) -> int:
        """Nothing to do: an interrupted multipart upload is aborted by the writer that failed, and one
        left by a killed process is invisible until completed; a bucket lifecycle rule
        (AbortIncompleteMultipartUpload) reclaims its parts."""
        return 0

    def discard_partial(self, image_id: str, node: str) -> None:
        """Abort the multipart uploads of an image whose writer died (their parts would linger unseen)."""
        with _errors(f"s3://{self.bucket}"):
            answer = self._client.list_multipart_uploads(Bucket=self.bucket, Prefix=image_id)
            for upload in answer.get("Uploads", []):
                if upload["Key"] == image_id:
                    self._abort(upload["Key"], upload["UploadId"])


def _endpoint(host: str | None) -> str | None:
    if not host:
        return None
    if "://" not in host:
        return f"https://{host}"
    return host


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class _errors(ErrorMap):
    """Turns boto errors into the store errors the domain understands."""

    def translate(self, exc: BaseException) -> GlimpseError | None:
        if isinstance(exc, ClientError):
            code = _code(exc)
            if code in MISSING:
                return NotFound(f"Image data at {self.what} is missing.")
            return StoreError(f"S3 refused an operation on {self.what}: {code or exc}.")
        if isinstance(exc, BotoCoreError):
            return StoreUnavailable(f"S3 could not be reached for {self.what}: {exc}.")
        return None
