"""Discovery and schema documents: /v2/info/* and /v2/schemas/*."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from glimpse.api import deps
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


def _stores(request: Request, detail: bool) -> list[dict[str, object]]:
    registry = deps.images(request).stores
    stores = []
    for name, store in registry.stores.items():
        info = registry.info[name]
        entry: dict[str, object] = {"id": name, "description": info.description or f"{store.type} store"}
        if name == registry.default:
            entry["default"] = "true"
        if store.read_only:
            entry["read-only"] = "true"
        if detail:
            entry.update(type=store.type, weight=info.weight, properties=store.properties())
        stores.append(entry)
    return stores


async def stores_info(request: Request) -> Response:
    return JSONResponse({"stores": _stores(request, detail=False)})


async def stores_detail(request: Request) -> Response:
    ctx = deps.context(request)
    await deps.checked(
        request, deps.images(request).policy.enforce, ctx, "stores_info_detail", {"project_id": ctx.project_id}
    )
    return JSONResponse({"stores": _stores(request, detail=True)})


routes = [
    *(Route(f"/v2/schemas/{name}", schema, methods=["GET"]) for name in SCHEMAS),
    Route("/v2/info/import", import_info, methods=["GET"]),
    Route("/v2/info/stores", stores_info, methods=["GET"]),
    Route("/v2/info/stores/detail", stores_detail, methods=["GET"]),
]
