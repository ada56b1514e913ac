"""Glance's error body format for domain errors (their statuses sit on the classes, in glimpse/errors.py).

Glance's errors are WebOb's, in one of three shapes chosen by the Accept header: HTML (for */*),
JSON {"message", "code", "title"} or plain text. The real clients parse the HTML and JSON forms.
"""

from __future__ import annotations

import html
import json
import logging
from http import HTTPStatus

from starlette.requests import Request
from starlette.responses import Response

from glimpse.errors import GlimpseError, RangeNotSatisfiable, status_for

log = logging.getLogger(__name__)

__all__ = ["domain_error", "error_response", "negotiate", "status_for"]

OFFERS = ("text/html", "application/json")


def _quality(accept: str, offer: str) -> float:
    """The q-value an Accept header gives an offer (0 when it is not acceptable)."""
    best, best_specificity = 0.0, -1
    major = offer.split("/")[0]
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        specificity = {offer: 2, f"{major}/*": 1, "*/*": 0}.get(media.lower(), -1)
        if specificity > best_specificity:
            best, best_specificity = q, specificity
    return best


def negotiate(accept: str | None) -> str:
    """WebOb's choice, which the clients expect: html for */*, json when asked, plain otherwise."""
    if not accept:
        return "text/plain"
    scored = [(_quality(accept, offer), -i, offer) for i, offer in enumerate(OFFERS)]
    q, _, offer = max(scored)
    return offer if q > 0 else "text/plain"


def _webob_escape(text: str) -> str:
    return html.escape(text, quote=True).encode("ascii", "xmlcharrefreplace").decode("ascii")


# WebOb's reason phrases (Python's own changed for 413 and 416 in 3.13).
TITLES = {413: "Request Entity Too Large", 414: "Request-URI Too Long", 416: "Requested Range Not Satisfiable"}


def error_response(
    request: Request | None, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    phrase = TITLES.get(status) or HTTPStatus(status).phrase
    title = f"{status} {phrase}"
    kind = negotiate(request.headers.get("accept") if request is not None else None)
    if kind == "application/json":
        body = json.dumps({"message": f"{message}<br /><br />\n\n\n", "code": title, "title": phrase})
        return Response(body, status, headers=headers, media_type="application/json")
    if kind == "text/html":
        text = (
            f"<html>\n <head>\n  <title>{title}</title>\n </head>\n <body>\n  <h1>{title}</h1>\n"
            f"  {_webob_escape(message)}<br /><br />\n\n\n\n </body>\n</html>"
        )
        return Response(text, status, headers=headers, media_type="text/html")
    return Response(f"{title}\n\n{message}\n\n   ", status, headers=headers, media_type="text/plain")


async def domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GlimpseError)
    status = status_for(exc)
    if status >= 500:
        log.error("Request %s failed: %s", request.url.path, exc.message)
    headers = {}
    if isinstance(exc, RangeNotSatisfiable):
        headers["Content-Range"] = f"bytes */{exc.size}"
    return error_response(request, status, exc.message, headers)
