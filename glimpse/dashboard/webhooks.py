"""Webhook settings of the current project: list, add (with its secret), delete, send a test, recent deliveries.

Every action calls the WebhookService with the logged-in user's context, so the policy decides as for the API.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from glimpse.dashboard.messages import message_for
from glimpse.dashboard.web import BASE, Page
from glimpse.domain.webhooks import EVENT_TYPES, GROUPS, WebhookService
from glimpse.errors import GlimpseError, NotFound

HOME = f"{BASE}/webhooks"


def _service(page: Page) -> WebhookService:
    if page.dash.webhooks is None:
        raise NotFound(page._("Webhooks are not available on this server."))
    return page.dash.webhooks


async def index(request: Request) -> Response:
    page = await Page.open(request)
    service = _service(page)
    ctx = page.ctx
    hooks = [w for w in await page.call(service.list) if w.project_id == ctx.project_id or w.project_id is None]
    chosen = request.query_params.get("show")
    shown = next((w for w in hooks if w.id == chosen), None)
    deliveries = await page.call(service.deliveries, shown.id, 25) if shown is not None else []
    return await page.render("webhooks.html", hooks=hooks, shown=shown, deliveries=deliveries, groups=GROUPS,
                       event_types=EVENT_TYPES)  # fmt: skip


async def create(request: Request) -> Response:
    page = await Page.open(request)
    service = _service(page)
    form = await page.form()
    body: dict[str, object] = {
        "url": str(form.get("url") or "").strip(),
        "secret": str(form.get("secret") or ""),
        "description": str(form.get("description") or "").strip(),
    }
    events = [str(e) for e in form.getlist("events") if str(e)]
    if events:
        body["events"] = events
    if form.get("global") == "on":
        body["global"] = True
    try:
        created = await page.call(service.create, body)
    except GlimpseError as exc:
        return await page.redirect(HOME, message_for(exc, page._), error=True)
    return await page.redirect(f"{HOME}?show={created.id}", page._("Webhook added: %(url)s", url=created.url))


async def act(request: Request) -> Response:
    page = await Page.open(request)
    service = _service(page)
    webhook_id, action = request.path_params["webhook_id"], request.path_params["action"]
    await page.form()
    try:
        if action == "delete":
            await page.call(service.delete, webhook_id)
            return await page.redirect(HOME, page._("Webhook deleted."))
        if action == "test":
            event_id = await page.call(service.send_test, webhook_id)
            return await page.redirect(f"{HOME}?show={webhook_id}", page._("Test event %(id)s queued.", id=event_id))
    except GlimpseError as exc:
        return await page.redirect(HOME, message_for(exc, page._), error=True)
    return await page.redirect(HOME, page._("Unknown action %(action)s.", action=action), error=True)
