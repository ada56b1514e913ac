"""Image data: streaming upload (PUT) and download (GET, with Range) of /v2/images/{id}/file."""

from __future__ import annotations

import re

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from glimpse.api import deps
from glimpse.api.routing import resource
from glimpse.domain import digests
from glimpse.domain.inputs import parse_count
from glimpse.errors import BadRequest, UnsupportedMediaType

# ASCII digits only, at most 19 of them (a 64-bit offset): \d would also take other scripts' digits.
_RANGE = re.compile(r"^bytes=([0-9]{0,19})-([0-9]{0,19})$")
_CONTENT_RANGE = re.compile(r"^bytes ([0-9]{1,19})-([0-9]{1,19})/([0-9]{1,19}|\*)$")


def expected_size(request: Request) -> int | None:
    value = request.headers.get("x-openstack-image-size")
    if value is None:
        return None
    return parse_count(value, "The x-openstack-image-size header (a size in bytes)")


def declared_digests(request: Request) -> list[digests.Digest]:
    """The Content-Digest / Repr-Digest the client sent (RFC 9530), read before any byte of the body."""
    return digests.parse_fields((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw)


async def upload(request: Request) -> Response:
    media = deps.media_type(request)
    if media and media != "application/octet-stream":
        raise UnsupportedMediaType(f"Unsupported Content-Type {media}: image data must be application/octet-stream.")
    declared = declared_digests(request)
    size = expected_size(request)
    if size is None and digests.declared_hexdigest(declared, "sha-512") and "content-length" in request.headers:
        # A client declaring the data's sha-512 declares its size with Content-Length: enough to find a twin.
        size = parse_count(request.headers["content-length"], "The Content-Length header")
    reader = deps.transfers(request).reader(request.stream())
    try:
        await deps.transfers(request).run(
            deps.images(request).upload,
            deps.context(request),
            request.path_params["image_id"],
            reader,
            size,
            request.headers.get("x-image-meta-store"),
            declared,
        )
    except ClientDisconnect:
        return Response(status_code=400)  # nobody is listening; the image is back in queued
    return Response(status_code=204)


def parse_range(request: Request) -> tuple[int | None, int | None] | None:
    header = request.headers.get("range")
    if header:
        match = _RANGE.match(header.replace(" ", ""))
        if not match or match.group(1) == match.group(2) == "":
            raise BadRequest(f"Invalid Range header {header!r}: one range 'bytes=start-end' is supported.")
        start, end = match.group(1), match.group(2)
        if start == "":
            return None, int(end)
        return int(start), int(end) if end else None
    legacy = request.headers.get("content-range")
    if legacy:
        match = _CONTENT_RANGE.match(legacy.strip())
        if not match:
            raise BadRequest(f"Invalid Content-Range header {legacy!r}.")
        return int(match.group(1)), int(match.group(2))
    return None


async def download(request: Request) -> Response:
    wanted = parse_range(request)
    result = await run_in_threadpool(
        deps.images(request).download, deps.context(request), request.path_params["image_id"], wanted
    )
    image = result.image
    if not image.has_data or image.size is None:
        return Response(status_code=204)
    headers = {"Content-Length": str(result.length)}
    if image.checksum:
        headers["Content-MD5"] = image.checksum
    # The whole representation's digest, on a 206 too (RFC 9530 section 3): any HTTP client can check what it got.
    repr_digest = digests.repr_digest_for(image.os_hash_algo, image.os_hash_value)
    if repr_digest:
        headers["Repr-Digest"] = repr_digest
    status = 200
    if wanted is not None:
        status = 206
        headers["Content-Range"] = f"bytes {result.start}-{result.start + result.length - 1}/{image.size}"
    return deps.transfers(request).response(result.chunks, status, headers)


routes = [resource("/v2/images/{image_id}/file", put=upload, get=download)]
