"""Objects, properties and tags of a metadefs namespace: /v2/metadefs/namespaces/{namespace}/{kind}."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from glimpse.api import deps
from glimpse.api.routing import Handler, resource
from glimpse.api.v2.metadef_views import NS_PATH, object_view, properties_map, property_view, tag_view
from glimpse.api.v2.metadefs import service
from glimpse.domain.metadef_entities import Entry, Kind

TRUE = ("1", "t", "true", "on", "y", "yes")


def _view(kind: Kind, namespace: str, entry: Entry) -> dict[str, object]:
    if kind == "object":
        return object_view(namespace, entry)
    if kind == "property":
        return property_view(entry)
    return tag_view(entry)


def handlers(kind: Kind) -> tuple[Handler, Handler, Handler, Handler, Handler, Handler]:
    async def index(request: Request) -> Response:
        ns = request.path_params["namespace"]
        params = dict(request.query_params)
        found = await run_in_threadpool(service(request).list_entries, deps.context(request), ns, kind, params)
        if kind == "property":
            return JSONResponse({"properties": properties_map(found)})
        if kind == "object":
            return JSONResponse(
                {"objects": [object_view(ns, o) for o in found], "schema": "v2/schemas/metadefs/objects"}
            )
        return JSONResponse({"tags": [tag_view(t) for t in found]})

    async def create(request: Request) -> Response:
        ns = request.path_params["namespace"]
        body = await deps.json_body(request)
        made = await run_in_threadpool(service(request).add_entry, deps.context(request), ns, kind, body)
        return JSONResponse(_view(kind, ns, made), status_code=201)

    async def show(request: Request) -> Response:
        p = request.path_params
        rtype = request.query_params.get("resource_type") if kind == "property" else None
        found = await run_in_threadpool(
            service(request).get_entry, deps.context(request), p["namespace"], kind, p["name"], rtype
        )
        return JSONResponse(_view(kind, p["namespace"], found))

    async def update(request: Request) -> Response:
        p = request.path_params
        body = await deps.json_body(request)
        changed = await run_in_threadpool(
            service(request).update_entry, deps.context(request), p["namespace"], kind, p["name"], body
        )
        return JSONResponse(_view(kind, p["namespace"], changed))

    async def delete(request: Request) -> Response:
        p = request.path_params
        await run_in_threadpool(service(request).delete_entry, deps.context(request), p["namespace"], kind, p["name"])
        return Response(status_code=204)

    async def delete_all(request: Request) -> Response:
        ns = request.path_params["namespace"]
        await run_in_threadpool(service(request).delete_contents, deps.context(request), ns, kind)
        return Response(status_code=204)

    return index, create, show, update, delete, delete_all


async def create_tag(request: Request) -> Response:
    p = request.path_params
    made = await run_in_threadpool(service(request).add_tag, deps.context(request), p["namespace"], p["name"])
    return JSONResponse(tag_view(made), status_code=201)


async def create_tags(request: Request) -> Response:
    body = await deps.json_body(request)
    append = request.headers.get("x-openstack-append", "").strip().lower() in TRUE
    made = await run_in_threadpool(
        service(request).add_tags, deps.context(request), request.path_params["namespace"], body, append
    )
    return JSONResponse({"tags": [{"name": t.name} for t in made]}, status_code=201)


KINDS: tuple[tuple[Kind, str], ...] = (("object", "objects"), ("property", "properties"), ("tag", "tags"))


def _routes() -> list[Route]:
    out: list[Route] = []
    for kind, plural in KINDS:
        index, create, show, update, delete, delete_all = handlers(kind)
        base = f"{NS_PATH}/{{namespace}}/{plural}"
        out.append(resource(base, get=index, post=create_tags if kind == "tag" else create, delete=delete_all))
        if kind == "tag":
            out.append(resource(base + "/{name}", get=show, post=create_tag, put=update, delete=delete))
        else:
            out.append(resource(base + "/{name}", get=show, put=update, delete=delete))
    return out


routes = _routes()
