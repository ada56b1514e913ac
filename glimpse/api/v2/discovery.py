"""Discovery and schema documents: /v2/info/* and /v2/schemas/*."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from glimpse.domain.schema import schema_document

SCHEMAS = ("image", "images", "member", "members", "task", "tasks")


async def schema(request: Request) -> Response:
    documents = request.app.state.images.schema.documents
    return JSONResponse(schema_document(documents[request.url.path.rsplit("/", 1)[1]]))


async def import_info(request: Request) -> Response:
    methods = list(request.app.state.import_methods)
    return JSONResponse(
        {"import-methods": {"description": "Import methods available.", "type": "array", "value": methods}}
    )


async def stores_info(request: Request) -> Response:
    registry = request.app.state.images.stores
    stores = []
    for name, store in registry.stores.items():
        entry: dict[str, str | bool] = {"id": name, "description": f"{store.type} store"}
        if name == registry.default:
            entry["default"] = "true"
        if store.read_only:
            entry["read-only"] = "true"
        stores.append(entry)
    return JSONResponse({"stores": stores})


routes = [
    *(Route(f"/v2/schemas/{name}", schema, methods=["GET"]) for name in SCHEMAS),
    Route("/v2/info/import", import_info, methods=["GET"]),
    Route("/v2/info/stores", stores_info, methods=["GET"]),
]
