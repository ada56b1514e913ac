"""The versions document at / (300 Multiple Choices) and /versions (200)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CURRENT = "2.17"
SUPPORTED = ("2.16", "2.15", "2.14", "2.7", "2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0")


def versions_document(base_url: str) -> dict[str, Any]:
    href = base_url.rstrip("/") + "/v2/"

    def entry(version: str, status: str) -> dict[str, Any]:
        return {"id": f"v{version}", "status": status, "links": [{"rel": "self", "href": href}]}

    return {"versions": [entry(CURRENT, "CURRENT"), *(entry(v, "SUPPORTED") for v in SUPPORTED)]}


def _base(request: Request) -> str:
    return request.app.state.settings.public_endpoint or str(request.base_url)


async def root(request: Request) -> Response:
    return JSONResponse(versions_document(_base(request)), status_code=300)


async def versions(request: Request) -> Response:
    return JSONResponse(versions_document(_base(request)))


routes = [
    Route("/", root, methods=["GET"]),
    Route("/versions", versions, methods=["GET"]),
    Route("/v2", versions, methods=["GET"]),
    Route("/v2/", versions, methods=["GET"]),
]
