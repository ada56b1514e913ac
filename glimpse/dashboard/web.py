"""What every dashboard handler needs: the services, the session, the caller's context, rendering."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from glimpse.auth.context import RequestContext
from glimpse.auth.policy import Policy
from glimpse.dashboard.i18n import Speech, current, install, speaking
from glimpse.dashboard.login import Identity, KeystoneLogin
from glimpse.dashboard.multipart import StreamedForm
from glimpse.dashboard.script_texts import script_texts
from glimpse.dashboard.session import CSRF_FIELD, CSRF_HEADER, Sessions, check_csrf
from glimpse.domain.data_meter import counted
from glimpse.domain.families import Families
from glimpse.domain.imports import ImportService
from glimpse.domain.members import MemberService
from glimpse.domain.metadefs import MetadefService
from glimpse.domain.ports import DataMeter
from glimpse.domain.quotas import QuotaService
from glimpse.domain.recycle_bin import RecycleBin
from glimpse.domain.resumable import ResumableUploads
from glimpse.domain.service import ImageService
from glimpse.domain.webhooks import WebhookService
from glimpse.errors import PolicyUnavailable
from glimpse.streaming import Transfers

if TYPE_CHECKING:
    from starlette.templating import Jinja2Templates

BASE = "/dashboard"
MAX_FORM_FIELDS = 200  # the edit form has two per property (value, remove) and image_property_quota is 128
T = TypeVar("T")


@cache
def page_templates() -> Jinja2Templates:
    """The pages' templates, made when a worker renders its first page: Jinja and Babel (about 3 MiB) are
    then imported by the workers that serve the dashboard only, not by the supervisor for every worker."""
    from starlette.templating import Jinja2Templates

    templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
    install(templates.env)
    templates.env.globals["script_texts"] = lambda: script_texts(current())  # for the pages that load scripts
    return templates


@dataclass(frozen=True)
class Dash:
    images: ImageService
    members: MemberService
    quotas: QuotaService
    policy: Policy
    sessions: Sessions
    keystone: KeystoneLogin | None
    web_download: bool
    imports: ImportService | None = None
    transfers: Transfers = field(default_factory=Transfers)
    metadefs: MetadefService | None = None
    max_form_bytes: int = 114688  # [oslo_middleware] max_request_body_size, for a form's text fields
    meter: DataMeter | None = None  # counts the image data uploaded through the dashboard
    webhooks: WebhookService | None = None
    bin: RecycleBin | None = None
    families: Families | None = None
    resumable: ResumableUploads | None = None  # tus uploads (the Create Image page's script)


class NeedLogin(Exception):
    """Raised by a handler whose caller has no session; answered with the login page."""


class Page:
    """One dashboard request: its session, its caller and its responses.

    What may wait (the session store, a database or Redis; a policy rule that asks a server) runs off the event
    loop, where the worker's other requests would wait with it: open() reads the session and settles the caller
    in a thread, render() and redirect() store the session in one, checked() runs policy checks in one when a
    rule may ask a server."""

    def __init__(self, request: Request) -> None:
        """Blocking: handlers use `await Page.open(request)`."""
        self.request = request
        self.dash: Dash = request.app.state.dash
        self.session = self.dash.sessions.read(request)
        self.identity = Identity.from_session(self.session)
        self.speech = Speech.of(request)

    @classmethod
    async def open(cls, request: Request) -> Page:
        return await run_in_threadpool(cls, request)

    @property
    def identity(self) -> Identity | None:
        return self._identity

    @identity.setter
    def identity(self, identity: Identity | None) -> None:
        """The caller, and its context (the policy's context_is_admin answer: blocking). When a policy server cannot
        give that answer, the page still opens (an error page needs none); asking for the context raises."""
        self._identity = identity
        self._unsettled: PolicyUnavailable | None = None
        self._ctx: RequestContext | None = None
        if identity is not None:
            try:
                self._ctx = identity.context(self.dash.policy, self.request.scope.get("request_id", ""))
            except PolicyUnavailable as exc:
                self._unsettled = exc

    def _(self, message: str, **values: Any) -> str:
        """message in the caller's language, its %(name)s placeholders filled from values."""
        return self.speech.gettext(message, **values)

    @property
    def ctx(self) -> RequestContext:
        if self._unsettled is not None:
            raise PolicyUnavailable(self._unsettled.message)
        if self._ctx is None:
            raise NeedLogin()
        return self._ctx

    def require_login(self) -> None:
        self.ctx  # noqa: B018  (raises NeedLogin for a caller without a session)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """A domain use case, run in a worker thread with the caller's context."""
        return await run_in_threadpool(fn, self.ctx, *args)

    async def checked(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args), which checks the policy and does nothing slower (Policy.run_check)."""
        return await self.dash.policy.run_check(fn, *args)

    async def transfer(self, fn: Callable[..., T], *args: Any) -> T:
        """An upload, in the threads kept for image data (streaming.Transfers)."""
        return await self.dash.transfers.run(fn, self.ctx, *args)

    async def upload(self, image_id: str, body: AsyncIterator[bytes], size: int | None) -> None:
        """An image's data from the browser (a PUT's body or a form's file part), counted as the dashboard's."""
        chunks = counted(self.dash.transfers.reader(body), self.dash.meter, "dashboard")
        await self.transfer(self.dash.images.upload, image_id, chunks, size)

    async def form(self) -> FormData:
        """The posted form, once its CSRF token has been checked."""
        # Bounded as the API's bodies are: RequestLimitsMiddleware caps the bytes, these the parts.
        form = await self.request.form(max_files=1, max_fields=MAX_FORM_FIELDS)
        submitted = form.get(CSRF_FIELD) or self.request.headers.get(CSRF_HEADER)
        check_csrf(self.session, submitted if isinstance(submitted, str) else None)
        return form

    async def streamed_form(self) -> StreamedForm:
        """A multipart form whose text fields (CSRF token checked) are read; its file, if any, is next."""
        form = StreamedForm(self.request, self.dash.max_form_bytes, MAX_FORM_FIELDS)
        submitted = (await form.read_fields()).get(CSRF_FIELD) or self.request.headers.get(CSRF_HEADER)
        check_csrf(self.session, submitted)
        return form

    def check_csrf_header(self) -> None:
        check_csrf(self.session, self.request.headers.get(CSRF_HEADER))

    def flash(self, message: str, *, error: bool = False) -> None:
        self.session["flash"] = {"text": message, "error": error}

    async def render(self, template: str, status_code: int = 200, **values: Any) -> Response:
        values.update(
            identity=self.identity,
            csrf_token=self.session[CSRF_FIELD],
            flash=self.session.pop("flash", None),
            base=BASE,
            is_admin=self._ctx is not None and self._ctx.is_admin,
            keystone=self.dash.keystone is not None,
            has_bin=self.dash.bin is not None,
            speech=self.speech,
            projects=self.session.get("projects") or [] if self.identity is not None else [],
        )
        with speaking(self.speech):
            response = page_templates().TemplateResponse(self.request, template, values, status_code=status_code)
        await run_in_threadpool(self.dash.sessions.write, response, self.session)
        return response

    async def redirect(self, url: str, message: str | None = None, *, error: bool = False) -> Response:
        if message:
            self.flash(message, error=error)
        response = RedirectResponse(url, status_code=303)
        await run_in_threadpool(self.dash.sessions.write, response, self.session)
        return response
