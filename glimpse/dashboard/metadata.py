"""The "Update metadata" editor of an image: the catalog's properties for OS::Glance::Image, set or removed
through the same image update use case (and policy) as PATCH /v2/images/{id}."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from glimpse.auth.context import RequestContext
from glimpse.dashboard.messages import CATALOG_MISSING, NOTHING_CHANGED, message_for
from glimpse.dashboard.web import BASE, Page
from glimpse.domain.metadef_catalog import CatalogNamespace, catalog, check_value
from glimpse.domain.patch import MEDIA_V21
from glimpse.errors import GlimpseError


def _catalog(page: Page, only: str | None = None) -> Callable[[RequestContext], list[CatalogNamespace]]:
    service = page.dash.metadefs
    assert service is not None

    def read(ctx: RequestContext) -> list[CatalogNamespace]:
        return catalog(service, ctx, only=only)

    return read


def _back(image_id: str) -> str:
    return f"{BASE}/images/{image_id}/metadata"


async def show(request: Request) -> Response:
    page = await Page.open(request)
    image_id = request.path_params["image_id"]
    image = await page.call(page.dash.images.get, image_id)
    namespaces: list[CatalogNamespace] = []
    error = None
    if page.dash.metadefs is None:
        error = page._(CATALOG_MISSING)
    else:
        try:
            namespaces = await page.call(_catalog(page))
        except GlimpseError as exc:
            error = message_for(exc, page._)
    keys = {prop.key for ns in namespaces for prop in ns.properties}
    props_can = await page.checked(page.dash.images.property_permissions, page.ctx, keys)  # protected ones are locked
    return await page.render(
        "metadata.html", image=image, namespaces=namespaces, catalog_error=error, props_can=props_can
    )


def changes(form: Any, namespace: CatalogNamespace, current: dict[str, str]) -> list[dict[str, Any]]:
    """JSON-patch operations: a filled field sets its property, a ticked box removes it, the rest stay."""
    ops: list[dict[str, Any]] = []
    for prop in namespace.properties:
        text = form.get(f"md:{prop.key}")
        value = text.strip() if isinstance(text, str) else ""
        if form.get(f"remove:{prop.key}") and prop.key in current:
            ops.append({"op": "remove", "path": f"/{prop.key}"})
        elif value and current.get(prop.key) != value:
            ops.append({"op": "add", "path": f"/{prop.key}", "value": check_value(prop, value)})
    return ops


async def update(request: Request) -> Response:
    page = await Page.open(request)
    page.require_login()
    image_id = request.path_params["image_id"]
    try:
        form = await page.form()
        if page.dash.metadefs is None:
            return await page.redirect(_back(image_id), page._(CATALOG_MISSING), error=True)
        name = str(form.get("namespace", ""))
        found = await page.call(_catalog(page, name))
        if not found:
            return await page.redirect(
                _back(image_id), page._("%(name)s defines no image metadata.", name=name), error=True
            )
        image = await page.call(page.dash.images.get, image_id)
        ops = changes(form, found[0], image.properties)
        if not ops:
            return await page.redirect(_back(image_id), page._(NOTHING_CHANGED))
        await page.call(page.dash.images.update, image_id, ops, MEDIA_V21)
    except GlimpseError as exc:
        return await page.redirect(_back(image_id), message_for(exc, page._), error=True)
    return await page.redirect(_back(image_id), page._("Metadata from %(name)s saved.", name=found[0].display_name))
