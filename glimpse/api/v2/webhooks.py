"""Webhooks: /v2/webhooks[/{id}], its delivery log /v2/webhooks/{id}/deliveries, and /actions/test.

Glimpse's own API (Glance has none), in Glance's style and error format. A webhook's secret is write-only.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from glimpse.api import deps
from glimpse.api.routing import resource
from glimpse.api.v2.views import isotime
from glimpse.domain.webhook_entities import Delivery, Webhook
from glimpse.domain.webhooks import WebhookService
from glimpse.errors import BadRequest, NotFound

PATCH_TYPES = ("application/json", "application/merge-patch+json")


def _service(request: Request) -> WebhookService:
    service: WebhookService | None = request.app.state.webhooks
    if service is None:
        raise NotFound("Webhooks are not available on this server.")
    return service


def webhook_view(webhook: Webhook) -> dict[str, Any]:
    return {
        "id": webhook.id,
        "url": webhook.url,
        "project_id": webhook.project_id,
        "global": webhook.project_id is None,
        "events": list(webhook.events),
        "description": webhook.description,
        "enabled": webhook.enabled,
        "created_at": isotime(webhook.created_at),
        "updated_at": isotime(webhook.updated_at),
        "self": f"/v2/webhooks/{webhook.id}",
        "deliveries": f"/v2/webhooks/{webhook.id}/deliveries",
    }


def delivery_view(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.event_id,
        "type": delivery.event_type,
        "subject": delivery.subject,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": isotime(delivery.next_attempt_at) if delivery.status == "pending" else None,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "created_at": isotime(delivery.created_at),
        "finished_at": isotime(delivery.finished_at),
    }


async def index(request: Request) -> Response:
    found = await run_in_threadpool(_service(request).list, deps.context(request))
    return JSONResponse({"webhooks": [webhook_view(w) for w in found]})


async def create(request: Request) -> Response:
    body = await deps.json_body(request)
    webhook = await run_in_threadpool(_service(request).create, deps.context(request), body)
    return JSONResponse(webhook_view(webhook), status_code=201)


async def show(request: Request) -> Response:
    webhook = await run_in_threadpool(_service(request).get, deps.context(request), request.path_params["id"])
    return JSONResponse(webhook_view(webhook))


async def update(request: Request) -> Response:
    body = await deps.json_body(request, PATCH_TYPES)
    service, ctx = _service(request), deps.context(request)
    webhook = await run_in_threadpool(service.update, ctx, request.path_params["id"], body)
    return JSONResponse(webhook_view(webhook))


async def delete(request: Request) -> Response:
    await run_in_threadpool(_service(request).delete, deps.context(request), request.path_params["id"])
    return Response(status_code=204)


async def deliveries(request: Request) -> Response:
    limit = _limit(request.query_params.get("limit"))
    service, ctx = _service(request), deps.context(request)
    found = await run_in_threadpool(service.deliveries, ctx, request.path_params["id"], limit)
    return JSONResponse({"deliveries": [delivery_view(d) for d in found]})


async def send_test(request: Request) -> Response:
    event_id = await run_in_threadpool(_service(request).send_test, deps.context(request), request.path_params["id"])
    return JSONResponse({"id": event_id}, status_code=202)


def _limit(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or not 0 < int(raw) <= 10000:
        raise BadRequest(f"limit must be a positive integer, not {raw[:40]!r}.")
    return int(raw)


routes = [
    resource("/v2/webhooks", get=index, post=create),
    resource("/v2/webhooks/{id}", get=show, patch=update, delete=delete),
    resource("/v2/webhooks/{id}/deliveries", get=deliveries),
    resource("/v2/webhooks/{id}/actions/test", post=send_test),
]
