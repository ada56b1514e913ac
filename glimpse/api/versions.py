"""The versions document at / (300 Multiple Choices) and /versions (200).

It lists what Glance 33 lists for the same configuration: with the image cache on (image_cache_dir) 2.18 is
CURRENT and 2.17, 2.16, 2.15 and 2.14 (the cache API; 2.18 its clean and prune) come first, else 2.15 (stores
detail) and, after the middle, 2.17 (locations API) as CURRENT; the middle is 2.8-2.13 with multi-store
(`enabled_backends`), else 2.9 alone; then 2.7 down to 2.0, in Glance's order.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CURRENT = "2.17"
CURRENT_WITH_CACHE = "2.18"
_CACHE = ("2.17", "2.16", "2.15", "2.14")
_MULTI_STORE = ("2.13", "2.12", "2.11", "2.10", "2.9", "2.8")
_SINGLE_STORE = ("2.9",)
_BASE = ("2.7", "2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0")


def advertised_versions(multi_store: bool, cache: bool = False) -> list[tuple[str, str]]:
    """(version, status) in the order Glance lists them."""
    middle = [(v, "SUPPORTED") for v in (_MULTI_STORE if multi_store else _SINGLE_STORE)]
    base = [(v, "SUPPORTED") for v in _BASE]
    if cache:
        return [(CURRENT_WITH_CACHE, "CURRENT"), *((v, "SUPPORTED") for v in _CACHE), *middle, *base]
    return [("2.15", "SUPPORTED"), *middle, (CURRENT, "CURRENT"), *base]


def versions_document(base_url: str, multi_store: bool = False, cache: bool = False) -> dict[str, Any]:
    href = base_url.rstrip("/") + "/v2/"

    def entry(version: str, status: str) -> dict[str, Any]:
        return {"id": f"v{version}", "status": status, "links": [{"rel": "self", "href": href}]}

    return {"versions": [entry(v, s) for v, s in advertised_versions(multi_store, cache)]}


def _document(request: Request) -> dict[str, Any]:
    settings = request.app.state.settings
    base = settings.public_endpoint or str(request.base_url)
    return versions_document(base, settings.multi_store, settings.image_cache is not None)


async def root(request: Request) -> Response:
    return JSONResponse(_document(request), status_code=300)


async def versions(request: Request) -> Response:
    return JSONResponse(_document(request))


routes = [
    Route("/", root, methods=["GET"]),
    Route("/versions", versions, methods=["GET"]),
    Route("/v2", versions, methods=["GET"]),
    Route("/v2/", versions, methods=["GET"]),
]
