"""The web dashboard at /dashboard, served by the same process as the Images API.

It is its own small Starlette app in front of the API's authentication: its users log in with a
form and carry a session cookie instead of headers or tokens. Every action calls the same domain
services with the logged-in user's RequestContext, so policy decides exactly as for the API.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from glimpse.auth.policy import Policy
from glimpse.config import Settings
from glimpse.dashboard import account, bulk_delete, detail, language, lifecycle, metadata, probe, uploads
from glimpse.dashboard import images as image_pages
from glimpse.dashboard import webhooks as webhook_pages
from glimpse.dashboard.login import KeystoneLogin
from glimpse.dashboard.messages import message_for
from glimpse.dashboard.session import Sessions, load_secret
from glimpse.dashboard.web import BASE, Dash, NeedLogin, Page
from glimpse.domain.families import Families
from glimpse.domain.imports import ImportService
from glimpse.domain.members import MemberService
from glimpse.domain.metadefs import MetadefService
from glimpse.domain.ports import DataMeter
from glimpse.domain.quotas import QuotaService
from glimpse.domain.recycle_bin import RecycleBin
from glimpse.domain.resumable import ResumableUploads
from glimpse.domain.service import ImageService
from glimpse.domain.session_records import SessionStore
from glimpse.domain.webhooks import WebhookService
from glimpse.errors import GlimpseError, status_for
from glimpse.optvalues import as_float
from glimpse.streaming import Transfers

SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]
# Browsers ask for /favicon.ico of pages that name no icon (the API's JSON, a 404): the dashboard's icon.
FAVICON = Path(__file__).parent / "static" / "favicon.svg"
FAVICON_PATHS = frozenset({"/favicon.ico", f"{BASE}/favicon.ico"})


def _favicon() -> Response:
    return FileResponse(FAVICON, media_type="image/svg+xml", headers={"cache-control": "max-age=86400"})


async def home(request: Request) -> Response:
    return RedirectResponse(f"{BASE}/images", status_code=303)


async def need_login(request: Request, exc: Exception) -> Response:
    return await (await Page.open(request)).redirect(f"{BASE}/login")


async def domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GlimpseError)
    page = await Page.open(request)
    return await page.render("error.html", status_code=status_for(exc), message=message_for(exc, page._))


async def not_found(request: Request, exc: Exception) -> Response:
    page = await Page.open(request)
    return await page.render("error.html", status_code=404, message=page._("No such dashboard page."))


def build_dashboard(settings: Settings, dash: Dash) -> Starlette:
    static = StaticFiles(directory=Path(__file__).parent / "static")
    app = Starlette(
        routes=[
            Mount(
                BASE,
                routes=[
                    Route("/", home),
                    Route("/login", account.login_form, methods=["GET"]),
                    Route("/login", account.login, methods=["POST"]),
                    Route("/logout", account.logout, methods=["POST"]),
                    Route("/project", account.switch_project, methods=["POST"]),
                    Route("/sessions", account.sessions_index, methods=["GET"]),
                    Route("/sessions/{key}/revoke", account.revoke_session, methods=["POST"]),
                    Route("/images", image_pages.index, methods=["GET"]),
                    Route("/images/new", image_pages.new, methods=["GET"]),
                    Route("/images/new", image_pages.create, methods=["POST"]),
                    Route("/probe", probe.probe, methods=["POST"]),
                    Route("/images/selected/delete", bulk_delete.delete_selected, methods=["POST"]),
                    Route("/images/{image_id}", detail.show, methods=["GET"]),
                    Route("/images/{image_id}/file", image_pages.upload, methods=["PUT"]),
                    Route("/images/{image_id}/download", detail.download, methods=["GET"]),
                    Route("/images/{image_id}/delete", detail.confirm_delete, methods=["GET"]),
                    Route("/images/{image_id}/metadata", metadata.show, methods=["GET"]),
                    Route("/images/{image_id}/metadata", metadata.update, methods=["POST"]),
                    *uploads.routes,  # before the actions: POST .../uploads is not one
                    Route("/images/{image_id}/{action}", detail.act, methods=["POST"]),
                    Route("/webhooks", webhook_pages.index, methods=["GET"]),
                    Route("/webhooks", webhook_pages.create, methods=["POST"]),
                    Route("/webhooks/{webhook_id}/{action}", webhook_pages.act, methods=["POST"]),
                    Route("/bin", lifecycle.bin_index, methods=["GET"]),
                    Route("/bin/{image_id}/{action}", lifecycle.bin_act, methods=["POST"]),
                    Route("/families", lifecycle.families, methods=["GET"]),
                    Route("/language", language.choose, methods=["POST"]),
                    Mount("/static", app=static, name="static"),
                ],
            )
        ],
        exception_handlers={NeedLogin: need_login, GlimpseError: domain_error, 404: not_found},
    )
    app.state.dash = dash
    return app


def _wants_html(scope: Scope) -> bool:
    accept = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"accept"), "")
    kinds = [part.split(";")[0].strip() for part in accept.split(",")]
    return "text/html" in kinds and (
        "application/json" not in kinds or kinds.index("text/html") < kinds.index("application/json")
    )


class DashboardMiddleware:
    """/dashboard goes to the dashboard; a browser asking for / is sent there; the rest goes to the API."""

    def __init__(self, app: ASGIApp, dashboard: ASGIApp) -> None:
        self.app = app
        self.dashboard = dashboard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path in FAVICON_PATHS and scope["method"] in ("GET", "HEAD"):
            await _favicon()(scope, receive, send)
        elif path == "/" and scope["method"] in ("GET", "HEAD") and _wants_html(scope):
            await RedirectResponse(f"{BASE}/", status_code=303)(scope, receive, send)
        elif path == BASE or path.startswith(BASE + "/"):

            async def send_secured(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
                await send(message)

            await self.dashboard(scope, receive, send_secured)
        else:
            await self.app(scope, receive, send)


def dashboard_middleware(
    settings: Settings,
    policy: Policy,
    *,
    session_store: SessionStore,
    images: ImageService,
    members: MemberService,
    quotas: QuotaService,
    import_methods: list[str],
    imports: ImportService | None = None,
    transfers: Transfers | None = None,
    metadefs: MetadefService | None = None,
    meter: DataMeter | None = None,
    webhooks: WebhookService | None = None,
    recycle_bin: RecycleBin | None = None,
    families: Families | None = None,
    resumable: ResumableUploads | None = None,
) -> Middleware:
    keystone = None
    if settings.auth_flavor == "keystone":
        ks = settings.keystone
        url = ks.get("www_authenticate_uri") or ks.get("auth_uri") or ks.get("auth_url")
        keystone = KeystoneLogin(str(url), as_float(ks.get("http_connect_timeout") or 10.0))
    dash = Dash(
        images=images,
        members=members,
        quotas=quotas,
        policy=policy,
        sessions=Sessions(load_secret(settings.dashboard_secret_key, settings.data_dir), session_store),
        keystone=keystone,
        web_download="web-download" in import_methods and imports is not None,
        imports=imports,
        transfers=transfers or Transfers(),
        metadefs=metadefs,
        max_form_bytes=settings.max_request_body_size,
        meter=meter,
        webhooks=webhooks,
        bin=recycle_bin,
        families=families,
        resumable=resumable,
    )
    return Middleware(DashboardMiddleware, dashboard=build_dashboard(settings, dash))
