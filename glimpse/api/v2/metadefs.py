"""The metadata definitions catalog: /v2/metadefs/namespaces, resource types and /v2/schemas/metadefs/*."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from glimpse.api import deps
from glimpse.api.routing import resource
from glimpse.api.v2.metadef_views import (
    NS_PATH,
    association_view,
    detail_view,
    namespace_view,
    resource_type_view,
)
from glimpse.domain.metadef_schema import SCHEMAS
from glimpse.domain.metadefs import MetadefService, NamespaceDetail


def service(request: Request) -> MetadefService:
    value: MetadefService = request.app.state.metadefs
    return value


def _ns(request: Request) -> str:
    name: str = request.path_params["namespace"]
    return name


async def index(request: Request) -> Response:
    params = dict(request.query_params)
    svc, ctx = service(request), deps.context(request)
    found, full = await run_in_threadpool(svc.list_namespaces, ctx, params)
    associations = await run_in_threadpool(svc.associations_of, [ns.namespace for ns in found])
    docs = []
    for ns in found:
        doc = namespace_view(ns)
        if associations.get(ns.namespace):
            doc["resource_type_associations"] = [association_view(a) for a in associations[ns.namespace]]
        docs.append(doc)
    params.pop("marker", None)
    query = urlencode(params)
    body = {"namespaces": docs, "first": f"{NS_PATH}?{query}" if query else NS_PATH,
            "schema": "/v2/schemas/metadefs/namespaces"}  # fmt: skip
    if full:
        body["next"] = f"{NS_PATH}?{urlencode({**params, 'marker': found[-1].namespace})}"
    return JSONResponse(body)


async def create(request: Request) -> Response:
    body = await deps.json_body(request)
    detail: NamespaceDetail = await run_in_threadpool(service(request).create_namespace, deps.context(request), body)
    doc = detail_view(detail)
    return JSONResponse(doc, status_code=201, headers={"Location": doc["self"]})


async def show(request: Request) -> Response:
    rtype = request.query_params.get("resource_type")
    detail = await run_in_threadpool(service(request).show_namespace, deps.context(request), _ns(request), rtype)
    return JSONResponse(detail_view(detail))


async def update(request: Request) -> Response:
    body = await deps.json_body(request)
    ns = await run_in_threadpool(service(request).update_namespace, deps.context(request), _ns(request), body)
    return JSONResponse(namespace_view(ns))


async def delete(request: Request) -> Response:
    await run_in_threadpool(service(request).delete_namespace, deps.context(request), _ns(request))
    return Response(status_code=204)


async def resource_types(request: Request) -> Response:
    found = await run_in_threadpool(service(request).resource_types, deps.context(request))
    return JSONResponse({"resource_types": [resource_type_view(r) for r in found]})


async def associations(request: Request) -> Response:
    found = await run_in_threadpool(service(request).associations, deps.context(request), _ns(request))
    return JSONResponse({"resource_type_associations": [association_view(a) for a in found]})


async def associate(request: Request) -> Response:
    body = await deps.json_body(request)
    made = await run_in_threadpool(service(request).associate, deps.context(request), _ns(request), body)
    return JSONResponse(association_view(made), status_code=201)


async def dissociate(request: Request) -> Response:
    name = request.path_params["resource_type"]
    await run_in_threadpool(service(request).dissociate, deps.context(request), _ns(request), name)
    return Response(status_code=204)


async def schema(request: Request) -> Response:
    return JSONResponse(SCHEMAS[request.url.path.rsplit("/", 1)[1]])


routes = [
    resource(NS_PATH, get=index, post=create),
    resource(NS_PATH + "/{namespace}", get=show, put=update, delete=delete),
    resource("/v2/metadefs/resource_types", get=resource_types),
    resource(NS_PATH + "/{namespace}/resource_types", get=associations, post=associate),
    resource(NS_PATH + "/{namespace}/resource_types/{resource_type}", delete=dissociate),
    *(Route(f"/v2/schemas/metadefs/{name}", schema, methods=["GET"]) for name in SCHEMAS),
]
