"""Glance's error body format for domain errors (their statuses sit on the classes, in glimpse/errors.py).

Glance's errors are WebOb's, in one of three shapes chosen by the Accept header: HTML (for */*),
JSON {"message", "code", "title"} or plain text. The real clients parse the HTML and JSON forms; openstacksdk
sends an empty Accept with uploads and PATCH, and gets plain text, from Glance as from Glimpse.
"""

from __future__ import annotations

import html
import json
import logging
import re
from http import HTTPStatus

from starlette.requests import Request
from starlette.responses import Response

from glimpse.errors import GlimpseError, RangeNotSatisfiable, status_for

log = logging.getLogger(__name__)

__all__ = ["domain_error", "error_response", "negotiate", "preferred", "status_for"]

OFFERS = ("text/html", "application/json")
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PARAM = rf"\s*;\s*{_TOKEN}=(?:{_TOKEN}|\"(?:[^\"\\]|\\.)*\")"
_RANGE = re.compile(rf"^(?P<media>{_TOKEN}/{_TOKEN})(?P<params>(?:{_PARAM})*)\s*$")
_QVALUE = re.compile(r"^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$")


def _ranges(accept: str) -> list[tuple[str, float]] | None:
    """(media range, q) of each element; None when the header is not valid (WebOb then accepts anything).

    A range carrying parameters other than q (text/html;level=1) matches none of the offers, which have none.
    """
    ranges = []
    for element in accept.split(","):
        if not element.strip():
            continue
        match = _RANGE.match(element.strip())
        if match is None:
            return None
        q, extensions = 1.0, False
        for param in re.findall(_PARAM, match["params"]):
            name, _, value = param.strip().lstrip(";").strip().partition("=")
            if name.lower() == "q":
                if not _QVALUE.match(value):
                    return None
                q = float(value)
                break  # what follows q are accept-extensions
            extensions = True
        ranges.append(("" if extensions else match["media"].lower(), q))
    return ranges


def _quality(ranges: list[tuple[str, float]], offer: str) -> float:
    """The q-value the most specific range matching `offer` gives it (0 when none matches)."""
    best, best_specificity = 0.0, -1
    specificity = {offer: 2, f"{offer.split('/')[0]}/*": 1, "*/*": 0}
    for media, q in ranges:
        rank = specificity.get(media, -1)
        if rank > best_specificity:
            best, best_specificity = q, rank
    return best


def negotiate(accept: str | None) -> str:
    """WebOb's choice for an error, which the clients expect.

    No header or an empty one: plain text (WebOb reads a missing Accept as empty there); an invalid one:
    HTML; else the offer with the highest q (HTML first on a tie, so */* gets HTML), plain when none is acceptable.
    """
    if not accept:
        return "text/plain"
    ranges = _ranges(accept)
    if ranges is None:
        return "text/html"
    scored = [(_quality(ranges, offer), -i, offer) for i, offer in enumerate(OFFERS)]
    q, _, offer = max(scored)
    return offer if q > 0 else "text/plain"


def preferred(accept: str | None, offers: tuple[str, ...]) -> str | None:
    """WebOb's first acceptable offer: without a header, or with an invalid one, anything is acceptable (the first
    offer); else the offer with the highest q, the earlier one on a tie; None when none is acceptable."""
    ranges = _ranges(accept) if accept is not None else None
    if ranges is None:
        return offers[0]
    q, _, offer = max((_quality(ranges, offer), -i, offer) for i, offer in enumerate(offers))
    return offer if q > 0 else None


def _webob_plain(text: str) -> str:
    """WebOb's plain-text body of a message: newlines folded to spaces, <br> to newlines, other tags removed."""
    text = text.replace("\n", " ").replace("\r", "")
    text = re.sub(r"<br.*?>", "\n", text, flags=re.I | re.S)
    text = re.sub(r"<!--|-->", "", text)
    return re.sub(r"<.*?>", "", text, flags=re.S)


def _webob_escape(text: str) -> str:
    return html.escape(text, quote=True).encode("ascii", "xmlcharrefreplace").decode("ascii")


# WebOb's reason phrases (Python's own changed for 413 and 416 in 3.13).
TITLES = {
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    416: "Requested Range Not Satisfiable",
    460: "Checksum Mismatch",  # tus's checksum extension
}


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
    return Response(f"{title}\n\n{_webob_plain(message)}\n\n   ", status, headers=headers, media_type="text/plain")


async def domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GlimpseError)
    status = status_for(exc)
    if status >= 500:
        log.error("Request %s failed: %s", request.url.path, exc.message)
    headers = {}
    if isinstance(exc, RangeNotSatisfiable):
        headers["Content-Range"] = f"bytes */{exc.size}"
    return error_response(request, status, exc.public_message, headers)
