"""The framework floor for benchmarks/request_cost.py: a bare Starlette app on uvicorn answering the same paths
with a fixed JSON body of an image's size, no database, no policy, no middleware. What it costs per request is
what Starlette + uvicorn (httptools, uvloop) cost before Glimpse does anything."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

IMAGE = {
    "id": "6a0bd1b6-6c5e-4a36-9d4b-2f3e0b1a1c55", "name": "bench", "status": "queued", "visibility": "shared",
    "protected": False, "os_hidden": False, "checksum": None, "os_hash_algo": None, "os_hash_value": None,
    "owner": None, "size": None, "virtual_size": None, "min_ram": 0, "min_disk": 0, "disk_format": "raw",
    "container_format": "bare", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
    "tags": [], "os_distro": "ubuntu", "self": "/v2/images/6a0bd1b6-6c5e-4a36-9d4b-2f3e0b1a1c55",
    "file": "/v2/images/6a0bd1b6-6c5e-4a36-9d4b-2f3e0b1a1c55/file", "schema": "/v2/schemas/image",
}  # fmt: skip


async def show(request: Request) -> JSONResponse:
    return JSONResponse(IMAGE)


async def listing(request: Request) -> JSONResponse:
    if request.method == "POST":
        await request.body()
        return JSONResponse(IMAGE, status_code=201)
    return JSONResponse({"images": [IMAGE] * 20, "first": "/v2/images", "schema": "/v2/schemas/images"})


async def versions(request: Request) -> JSONResponse:
    return JSONResponse({"versions": []})


app = Starlette(
    routes=[
        Route("/versions", versions),
        Route("/v2/images", listing, methods=["GET", "POST"]),
        Route("/v2/images/{image_id}", show),
    ]
)
