"""/healthcheck as oslo.middleware's healthcheck app answers it in Glance's pipeline.

The simple view, for load balancers, needs no credentials: 200 "OK" (204 to HEAD), or 503 with the reason
("DISABLED BY FILE") while the operator's disable file exists, in plain text, HTML or JSON as the Accept header
asks. The detailed view adds each check's details, the process's threads, and checks that the database and every
store answer (each within a timeout, so a hung store gives 503 instead of a hung probe). It is given to an
administrator asking /healthcheck?detailed=true, or to everyone with [healthcheck] detailed = true (oslo.middleware's
meaning of that option). A caller outside allowed_source_ranges, or a proxied request with ignore_proxied_requests,
gets 404, as Glance's API would answer without the health check.
"""

from __future__ import annotations

import gc
import html
import io
import json
import os
import platform
import socket
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
import anyio.to_thread
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from glimpse.api.errors import preferred
from glimpse.api.metrics import peer_allowed
from glimpse.auth.context import RequestContext
from glimpse.errors import Forbidden
from glimpse.logsafe import redact
from glimpse.ops_options import HealthcheckConfig

OFFERS = ("text/plain", "text/html", "application/json")
PROXY_HEADERS = tuple(
    f"x-forwarded-{h}".encode() for h in ("", "proto", "host", "for", "prefix")
)  # X-Forwarded and its kin, as oslo.middleware lists them
TRUE = frozenset({"1", "true", "yes", "on"})

Check = Callable[[], str]  # returns what was checked; raises when the component does not answer


@dataclass(frozen=True)
class Result:
    available: bool
    reason: str
    details: str = ""
    component: str = ""  # what a detailed check checked: "database", "store <id>"


@dataclass(frozen=True)
class DeepChecks:
    """What the detailed view checks, built by app.py: the database and each store by id."""

    database: Check | None = None
    stores: Mapping[str, Check] = field(default_factory=dict)
    timeout: float = 5.0
    status: Callable[[], dict[str, object]] | None = None  # the node's own figures, for `glimpse status`


class Health:
    def __init__(self, config: HealthcheckConfig, deep: DeepChecks | None = None) -> None:
        self.config = config
        self.deep = deep or DeepChecks()
        # Checks of a hung store are abandoned to their threads: a limiter of their own keeps them from taking
        # the threads the API's requests need.
        self._threads = anyio.CapacityLimiter(16)

    def simple(self, port: int) -> list[Result]:
        c = self.config
        results = []
        for backend in c.backends:
            if backend == "disable_by_file":
                results.append(_disable_by_file(c.disable_by_file_path))
            elif backend == "disable_by_files_ports":
                path = dict(c.disable_by_file_paths).get(port)
                results.append(_disable_by_file(path) if path else Result(True, "OK"))
            elif backend == "enable_by_files":
                results.append(_enable_by_files(c.enable_by_file_paths))
        return results

    async def detailed(self) -> list[Result]:
        checks: list[tuple[str, str, Check]] = []
        if self.deep.database is not None:
            checks.append(("database", "DATABASE UNAVAILABLE", self.deep.database))
        checks += [(f"store {name}", "STORE UNAVAILABLE", check) for name, check in self.deep.stores.items()]
        results: list[Result] = [Result(True, "OK")] * len(checks)

        async def run(i: int, what: str, failure: str, check: Check) -> None:
            try:
                with anyio.fail_after(self.deep.timeout):
                    details = await anyio.to_thread.run_sync(check, abandon_on_cancel=True, limiter=self._threads)
                results[i] = Result(True, "OK", f"{what}: {details}", what)
            except TimeoutError:
                results[i] = Result(False, failure, f"{what}: no answer within {self.deep.timeout:g} s", what)
            except Exception as exc:
                results[i] = Result(False, failure, f"{what}: {redact(str(exc)) or type(exc).__name__}", what)

        async with anyio.create_task_group() as group:
            for i, (what, failure, check) in enumerate(checks):
                group.start_soon(run, i, what, failure, check)
        return results


def _disable_by_file(path: str | None) -> Result:
    if not path:
        return Result(True, "OK", "No 'disable_by_file_path' configuration value specified")
    if os.path.exists(path):
        return Result(False, "DISABLED BY FILE", f"Path '{path}' was found")
    return Result(True, "OK", f"Path '{path}' was not found")


def _enable_by_files(paths: tuple[str, ...]) -> Result:
    for path in paths:
        if not os.path.exists(path):
            return Result(False, "FILE PATH MISSING", f"File path {path} is missing")
    return Result(True, "OK", "Specified file paths are available")


def _threads() -> list[str]:
    stacks = []
    for frame in sys._current_frames().values():
        out = io.StringIO()
        traceback.print_stack(frame, file=out)
        stacks.append(out.getvalue())
    return stacks


def _server_facts() -> dict[str, object]:
    return {
        "python_version": sys.version,
        "now": str(datetime.now(UTC).replace(tzinfo=None)),
        "platform": platform.platform(),
        "gc": {"counts": list(gc.get_count()), "threshold": list(gc.get_threshold())},
    }


def _reasons(results: list[Result]) -> list[dict[str, str]]:
    return [{"reason": r.reason, "details": r.details, "class": "HealthcheckResult"} for r in results]


def render_json(results: list[Result], detailed: bool, status: dict[str, object] | None) -> str:
    if not detailed:
        return json.dumps({"detailed": False, "reasons": [r.reason for r in results]}, indent=4, sort_keys=True)
    body: dict[str, object] = {
        "detailed": True,
        **_server_facts(),
        "reasons": _reasons(results),
        "greenthreads": [],
        "threads": _threads(),
    }
    if status is not None:
        body["glimpse"] = status
    return json.dumps(body, indent=4, sort_keys=True)


def render_text(results: list[Result]) -> str:
    return "\n".join(r.reason for r in results if r.reason)


def _table(rows: list[list[str]], header: list[str] | None = None) -> list[str]:
    lines = ['<TABLE bgcolor="#ffffff" border="1">', "<TBODY>"]
    if header:
        lines += ["<TR>", *(f"<TH>\n{h}\n</TH>" for h in header), "</TR>"]
    for row in rows:
        lines += ["<TR>", *(f"    <TD>{cell}</TD>" for cell in row), "</TR>"]
    return [*lines, "</TBODY>", "</TABLE>", "<HR></HR>"]


def render_html(results: list[Result], detailed: bool) -> str:
    e = html.escape
    lines = ["<HTML>", "<HEAD><TITLE>Healthcheck Status</TITLE></HEAD>", "<BODY>"]
    shown = [r for r in results if r.reason]
    if detailed:
        facts = _server_facts()
        counts = facts["gc"]
        assert isinstance(counts, dict)
        lines += [
            "<H1>Server status</H1>",
            f"<B>Server hostname:</B><PRE>{e(socket.gethostname())}</PRE>",
            f"<B>Current time:</B><PRE>{e(str(facts['now']))}</PRE>",
            f"<B>Python version:</B><PRE>{e(sys.version)}</PRE>",
            f"<B>Platform:</B><PRE>{e(str(facts['platform']))}</PRE>",
            "<HR></HR>",
            "<H2>Garbage collector:</H2>",
            f"<B>Counts:</B><PRE>{e(str(tuple(counts['counts'])))}</PRE>",
            f"<B>Thresholds:</B><PRE>{e(str(tuple(counts['threshold'])))}</PRE>",
            "<HR></HR>",
        ]
    lines.append(f"<H2>Result of {len(results)} checks:</H2>")
    if detailed:
        rows = [["HealthcheckResult", e(r.reason), e(r.details)] for r in shown]
        lines += _table(rows, ["Kind", "Reason", "Details"])
        stacks = _threads()
        lines.append(f"<H2>{len(stacks)} thread(s) active:</H2>")
        lines += _table([[f"<PRE>{e(s)}</PRE>"] for s in stacks])
    else:
        lines += _table([[e(r.reason)] for r in shown], ["Reason"])
    return "\n".join([*lines, "</BODY>", "</HTML>"])


def _ignored(request: Request, config: HealthcheckConfig) -> bool:
    """oslo.middleware lets such requests through to the API, which has no /healthcheck: 404."""
    if config.allowed_source_ranges and not peer_allowed(request.scope, config.allowed_source_ranges):
        return True
    if config.ignore_proxied_requests:
        headers: list[tuple[bytes, bytes]] = request.scope["headers"]
        return any(name in PROXY_HEADERS and value for name, value in headers)
    return False


def _wants_details(request: Request, config: HealthcheckConfig) -> bool:
    asked = request.query_params.get("detailed", "").strip().lower() in TRUE
    if config.detailed or not asked:
        return config.detailed
    ctx = request.scope.get("context")
    if not (isinstance(ctx, RequestContext) and ctx.is_admin):
        raise Forbidden("The detailed health check is for administrators.")
    return True


async def healthcheck(request: Request) -> Response:
    health: Health = request.app.state.health
    config = health.config
    if _ignored(request, config):
        raise HTTPException(404)
    detailed = _wants_details(request, config)
    server = request.scope.get("server")
    results = health.simple(int(server[1]) if server and server[1] is not None else 0)
    if detailed:
        results += await health.detailed()
    healthy = all(r.available for r in results)
    if request.method == "HEAD":
        return Response(b"", 204 if healthy else 503, media_type="text/plain")
    status = 200 if healthy else 503
    kind = preferred(request.headers.get("accept"), OFFERS) or "text/plain"
    if kind == "application/json":
        node = None
        if detailed and health.deep.status is not None:
            node = await anyio.to_thread.run_sync(health.deep.status)
            node["healthy"] = healthy
            node["checks"] = [
                {"component": r.component, "available": r.available, "reason": r.reason, "details": r.details}
                for r in results
                if r.component
            ]
        return Response(render_json(results, detailed, node), status, media_type="application/json")
    if kind == "text/html":
        return Response(render_html(results, detailed), status, media_type="text/html")
    return Response(render_text(results), status, media_type="text/plain")


routes = [Route("/healthcheck", healthcheck, methods=["GET", "HEAD"])]
