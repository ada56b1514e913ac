"""What handlers need from a request: the caller's context, the services, and JSON bodies."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from glimpse.auth.context import RequestContext
from glimpse.auth.policy import Policy
from glimpse.config import Settings
from glimpse.domain.inputs import check_document, parse_count
from glimpse.domain.service import ImageService
from glimpse.errors import BadRequest, UnsupportedMediaType
from glimpse.streaming import Transfers


def context(request: Request) -> RequestContext:
    ctx = request.scope.get("context")
    assert isinstance(ctx, RequestContext), "the auth middleware sets the context"
    return ctx


def images(request: Request) -> ImageService:
    service: ImageService = request.app.state.images
    return service


P = ParamSpec("P")
T = TypeVar("T")


async def read(request: Request, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a read of the database (a show, a list page) for the handler.

    On SQLite it runs right here on the event loop: the hop to a worker thread and back cost a show 0.1 ms, a fifth
    of it, and more under concurrency, where the two threads hand the GIL to each other. A read cannot wait there
    for a writer: in WAL mode readers take no lock a writer holds, writers queue on their own lock
    (SerializedSessions) that reads never take, and the pool opens a connection rather than wait for one. It is a
    few index searches in a local file, as short as the JSON of the answer. What can still lock readers out (a
    crashed writer's journal being recovered, a connection in exclusive locking mode) is waited for briefly here,
    then in a thread, where only this request waits. A database over the network (PostgreSQL, MariaDB) keeps the
    thread: its round trip and its pool can wait.

    app.state.inline_reads is None or db.session's read_briefly with its LockedOut, set by the app."""
    return await _here_or_in_thread(request, request.app.state.inline_reads, func, *args, **kwargs)


async def write(request: Request, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a short write of the database (a create) for the handler.

    On SQLite it too runs on the event loop when the writers' queue is free or frees within a few milliseconds (the
    other worker's transaction): the thread hop cost a create a sixth of its CPU time, and a create waiting in a
    thread behind a dozen others was handed the GIL and the queue in no particular order (p99 50 ms at 16
    connections, 36 on the loop). A write that would wait longer, or that SQLite's lock keeps out, starts again in a
    thread before anything of it committed (db.session.write_briefly).

    app.state.inline_writes is None or db.session's write_briefly with its LockedOut, set by the app: None also when
    the project limits come from Keystone, which a create may have to ask."""
    return await _here_or_in_thread(request, request.app.state.inline_writes, func, *args, **kwargs)


async def checked(request: Request, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """func, which checks the policy and nothing slower (Policy.run_check)."""
    policy: Policy = request.app.state.policy
    return await policy.run_check(func, *args, **kwargs)


async def _here_or_in_thread(
    request: Request, inline: Any, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """func through inline's runner on the event loop, or in a thread when inline is None, when a policy rule may
    ask a server (an http: check), or when the runner raised its LockedOut (inline: the app's (runner, LockedOut)
    pair)."""
    if inline is not None and not request.app.state.policy.calls_out:
        run_briefly, locked_out = inline
        try:
            result: T = run_briefly(func, *args, **kwargs)
            return result
        except locked_out:
            pass
    return await run_in_threadpool(func, *args, **kwargs)


def transfers(request: Request) -> Transfers:
    value: Transfers = request.app.state.transfers
    return value


def settings(request: Request) -> Settings:
    value: Settings = request.app.state.settings
    return value


def page_limit(text: str) -> int:
    """A ?limit= of a list: a whole number (the service caps it at api_limit_max)."""
    return parse_count(text, "limit param")


JSON_MEDIA_TYPES = ("application/json",)


def require_media_type(request: Request, allowed: tuple[str, ...] = JSON_MEDIA_TYPES) -> None:
    """A JSON body must say so: a browser's cross-site form post (text/plain, urlencoded, multipart or
    no type at all) is refused before anything is read, as Glance's clients always send the type."""
    media = media_type(request)
    if media not in allowed:
        raise UnsupportedMediaType(f"Invalid content type {media or '(none)'}: use {' or '.join(allowed)}.")


async def json_body(request: Request, allowed: tuple[str, ...] = JSON_MEDIA_TYPES) -> Any:
    """The parsed body (RequestLimitsMiddleware caps its size); 415 for another media type; 400 for bad JSON,
    deep nesting, NUL, surrogates."""
    require_media_type(request, allowed)
    raw = await request.body()
    if not raw:
        raise BadRequest("Request body is empty: a JSON document is required.")
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"Malformed JSON in request body: {exc}.") from None
    except RecursionError:
        raise BadRequest("The JSON request body is nested too deep.") from None
    check_document(doc)
    return doc


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()
