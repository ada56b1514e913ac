"""ASGI middleware: a request id on every response, and the request context (no-auth or Keystone)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from glimpse.api.errors import error_response
from glimpse.auth.context import RequestContext
from glimpse.auth.keystone import IdentityUnavailable, InvalidToken, KeystoneValidator
from glimpse.auth.policy import Policy
from glimpse.errors import PolicyUnavailable

# Keystone's default role implications, applied here as a token would carry them.
IMPLIED_ROLES = {"admin": {"member", "reader"}, "member": {"reader"}}


def expand_roles(roles: set[str]) -> frozenset[str]:
    expanded = set(roles)
    for role in roles:
        expanded |= IMPLIED_ROLES.get(role, set())
    return frozenset(expanded)


def _header(scope: Scope, name: bytes) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


class RequestIdMiddleware:
    """Adds x-openstack-request-id to every response and keeps it in scope['request_id']."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"req-{uuid.uuid4()}"
        scope["request_id"] = request_id
        raw = request_id.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-openstack-request-id", raw)]
            await send(message)

        await self.app(scope, receive, send_with_id)


class CrossSiteGuard:
    """A browser page of another site cannot change anything through the API.

    Without authentication every caller is trusted, so a form or fetch() sent by any web page a local
    browser opens would act as an administrator. Browsers say where a request comes from
    (Sec-Fetch-Site, Origin); the API's clients never send those headers. Reading stays open, and the
    dashboard (in front of this) has its own CSRF tokens. The origins the operator allows in [cors]
    allowed_origin (Horizon's, for its direct upload) are trusted: allowing them is the point of that option.
    """

    SAFE = frozenset({"GET", "HEAD", "OPTIONS"})

    def __init__(self, app: ASGIApp, trusted: Callable[[str | None], bool] = lambda origin: False) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] not in self.SAFE
            and self._from_another_site(scope)
            and not self.trusted(_header(scope, b"origin"))
        ):
            message = "Requests sent by a web page of another site are refused: use an API client or the dashboard."
            await error_response(Request(scope), 403, message)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _from_another_site(scope: Scope) -> bool:
        fetch_site = _header(scope, b"sec-fetch-site")
        if fetch_site is not None:
            return fetch_site not in ("same-origin", "none")
        origin = _header(scope, b"origin")
        if origin is None:
            return False
        host = _header(scope, b"host") or ""
        return origin.split("://", 1)[-1].rstrip("/") != host


async def with_admin(policy: Policy, ctx: RequestContext) -> RequestContext:
    """The context with the policy's context_is_admin answer: in a thread when a rule may ask a server."""
    return dataclasses.replace(ctx, is_admin=await policy.run_check(policy.is_admin, ctx))


async def _call_with(
    app: ASGIApp, policy: Policy, ctx: RequestContext, scope: Scope, receive: Receive, send: Send
) -> None:
    """The app, called with the caller's context; a 503 instead when the policy's server cannot say whether the
    caller is an administrator."""
    try:
        scope["context"] = await with_admin(policy, ctx)
    except PolicyUnavailable as exc:
        await error_response(Request(scope), exc.http_status, exc.message)(scope, receive, send)
        return
    await app(scope, receive, send)


class NoAuthContextMiddleware:
    """No-authentication mode: the context comes from X-Project-Id, X-User-Id and X-Roles headers.

    Without them the caller is an administrator with no project, as in Glance's unauthenticated mode.
    """

    def __init__(self, app: ASGIApp, policy: Policy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Version discovery needs no caller, and answers while a policy server is away.
        if scope["type"] == "http" and scope["path"] not in KeystoneAuthMiddleware.PUBLIC:
            project = _header(scope, b"x-project-id") or _header(scope, b"x-tenant-id")
            user = _header(scope, b"x-user-id")
            roles_header = _header(scope, b"x-roles")
            if roles_header is None:
                named = {"admin"} if project is None else {"member"}
            else:
                named = {r.strip().lower() for r in roles_header.split(",") if r.strip()}
            roles = expand_roles(named)
            ctx = RequestContext(
                project_id=project, user_id=user, roles=roles, request_id=scope.get("request_id", ""),
                remote_address=_client(scope),
            )  # fmt: skip
            await _call_with(self.app, self.policy, ctx, scope, receive, send)
            return
        await self.app(scope, receive, send)


class KeystoneAuthMiddleware:
    """Every request but version discovery carries X-Auth-Token, validated against Keystone."""

    PUBLIC = frozenset({"/", "/versions"})
    # Answered without a token (a load balancer has none); a token, when sent, is validated: an administrator's
    # gets the detailed view.
    OPTIONAL = frozenset({"/healthcheck"})

    def __init__(self, app: ASGIApp, validator: KeystoneValidator, policy: Policy, www_authenticate_uri: str) -> None:
        self.app = app
        self.validator = validator
        self.policy = policy
        self.challenge = f'Keystone uri="{www_authenticate_uri}"'

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.PUBLIC:
            await self.app(scope, receive, send)
            return
        token = _header(scope, b"x-auth-token")
        if not token and scope["path"] in self.OPTIONAL:
            await self.app(scope, receive, send)
            return
        try:
            if not token:
                raise InvalidToken("The request you have made requires authentication.")
            info = await anyio.to_thread.run_sync(self.validator.validate, token)
        except InvalidToken as exc:
            await self._unauthorized(exc.message)(scope, receive, send)
            return
        except IdentityUnavailable as exc:
            await error_response(Request(scope), 503, exc.message)(scope, receive, send)
            return
        ctx = RequestContext(
            project_id=info.project_id,
            user_id=info.user_id,
            roles=info.roles,
            request_id=scope.get("request_id", ""),
            auth_token=token,
            service_catalog=info.catalog,
            system_scope=info.system_scope,
            domain_id=info.domain_id,
            user_domain_id=info.user_domain_id,
            project_domain_id=info.project_domain_id,
            remote_address=_client(scope),
        )
        await _call_with(self.app, self.policy, ctx, scope, receive, send)

    def _unauthorized(self, message: str) -> Response:
        body = {"error": {"code": 401, "title": "Unauthorized", "message": message}}
        return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": self.challenge})
