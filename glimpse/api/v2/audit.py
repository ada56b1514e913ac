"""The audit log (GET /v2/audit) and retention policies (/v2/retention/...): administrators', Glimpse's own."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from glimpse.api import deps
from glimpse.api.routing import resource
from glimpse.domain.audit import AuditService
from glimpse.domain.audit_entries import AuditEntry, RetentionPolicy
from glimpse.domain.retention import RetentionService, RunReport
from glimpse.errors import BadRequest


def _audit(request: Request) -> AuditService:
    service: AuditService = request.app.state.audit
    return service


def _retention(request: Request) -> RetentionService:
    service: RetentionService = request.app.state.retention
    return service


def _time(value: Any) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value is not None else None


def entry_view(entry: AuditEntry) -> dict[str, Any]:
    view = asdict(entry)
    view["created_at"] = _time(entry.created_at)
    view["roles"] = list(entry.roles)
    return view


def policy_view(policy: RetentionPolicy) -> dict[str, Any]:
    view = asdict(policy)
    view["created_at"] = _time(policy.created_at)
    return view


def report_view(report: RunReport) -> dict[str, Any]:
    return {
        "dry_run": report.dry_run,
        "acted": report.acted,
        "holder": report.holder,
        "decisions": [{**asdict(d), "created_at": _time(d.created_at)} for d in report.decisions],
        "deleted": report.deleted,
        "failed": report.failed,
    }


async def index(request: Request) -> Response:
    params = {key: request.query_params.getlist(key) for key in request.query_params}
    found, more = await run_in_threadpool(_audit(request).list, deps.context(request), params)
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "marker"]
    body: dict[str, Any] = {
        "audit": [entry_view(entry) for entry in found],
        "first": "/v2/audit" + (f"?{urlencode(query)}" if query else ""),
    }
    if more and found:
        body["next"] = "/v2/audit?" + urlencode([*query, ("marker", str(found[-1].id))])
    return JSONResponse(body)


async def policies(request: Request) -> Response:
    found = await run_in_threadpool(_retention(request).list, deps.context(request))
    return JSONResponse({"policies": [policy_view(p) for p in found]})


async def create_policy(request: Request) -> Response:
    body = await deps.json_body(request)
    created = await run_in_threadpool(_retention(request).create, deps.context(request), body)
    return JSONResponse(policy_view(created), status_code=201)


async def show_policy(request: Request) -> Response:
    found = await run_in_threadpool(_retention(request).get, deps.context(request), request.path_params["policy_id"])
    return JSONResponse(policy_view(found))


async def delete_policy(request: Request) -> Response:
    policy_id = request.path_params["policy_id"]
    await run_in_threadpool(_retention(request).delete, deps.context(request), policy_id)
    return Response(status_code=204)


async def run(request: Request) -> Response:
    body = await deps.json_body(request) if await request.body() else {}
    if not isinstance(body, dict) or not isinstance(body.get("dry_run", False), bool):
        raise BadRequest('Request body must be {"dry_run": true|false, "policy_id": "<id>" (optional)}.')
    policy_id = body.get("policy_id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise BadRequest("policy_id must be a string.")
    report = await run_in_threadpool(
        _retention(request).run, deps.context(request), body.get("dry_run", False), policy_id
    )
    return JSONResponse(report_view(report))


routes = [
    resource("/v2/audit", get=index),
    resource("/v2/retention/policies", get=policies, post=create_policy),
    resource("/v2/retention/policies/{policy_id}", get=show_policy, delete=delete_policy),
    resource("/v2/retention/run", post=run),
]
