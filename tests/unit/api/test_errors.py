"""glimpse.api.errors: content negotiation and Glance's (WebOb's) three error body shapes."""

from __future__ import annotations

import asyncio
import json

import pytest
from starlette.requests import Request

from glimpse.api.errors import domain_error, error_response, negotiate, status_for
from glimpse.errors import (
    BadRequest,
    ConfigError,
    Conflict,
    Forbidden,
    GlimpseError,
    Gone,
    NotFound,
    RangeNotSatisfiable,
    StoreError,
    StoreFull,
    StoreUnavailable,
    TooLarge,
    UnsupportedMediaType,
)


def make_request(accept: str | None) -> Request:
    headers = [] if accept is None else [(b"accept", accept.encode())]
    return Request({"type": "http", "method": "GET", "path": "/v2/images", "headers": headers, "query_string": b""})


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "text/plain"),
        ("", "text/plain"),
        ("*/*", "text/html"),
        ("text/html", "text/html"),
        ("text/*", "text/html"),
        ("application/json", "application/json"),
        ("APPLICATION/JSON", "application/json"),
        ("application/*", "application/json"),
        ("text/plain", "text/plain"),
        ("image/png", "text/plain"),
        ("application/octet-stream", "text/plain"),
        ("application/json, text/html;q=0.5", "application/json"),
        ("application/json;q=0.5, text/html", "text/html"),
        ("application/json; q=0.9, */*; q=0.1", "application/json"),
        ("text/html;q=0, */*", "application/json"),
        ("application/json;q=0", "text/plain"),
        ("*/*;q=0", "text/plain"),
        ("application/json, */*", "text/html"),  # equal q: the first offer (html), as WebOb's acceptable_offers
        ("text/plain, application/json;q=0.8", "application/json"),
    ],
)
def test_negotiate(accept: str | None, expected: str) -> None:
    assert negotiate(accept) == expected


def test_json_body() -> None:
    response = error_response(make_request("application/json"), 404, "No image found with ID x")
    assert response.status_code == 404
    assert response.media_type == "application/json"
    assert response.headers["content-type"].startswith("application/json")
    body = json.loads(response.body)
    assert body == {
        "message": "No image found with ID x<br /><br />\n\n\n",
        "code": "404 Not Found",
        "title": "Not Found",
    }


def test_html_body() -> None:
    response = error_response(make_request("*/*"), 403, "Image abc is protected and cannot be deleted.")
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    text = response.body.decode()
    assert text == (
        "<html>\n <head>\n  <title>403 Forbidden</title>\n </head>\n <body>\n  <h1>403 Forbidden</h1>\n"
        "  Image abc is protected and cannot be deleted.<br /><br />\n\n\n\n </body>\n</html>"
    )


def test_html_body_escapes_quotes_and_non_ascii_like_webob() -> None:
    # WebOb's html_body escapes the explanation with webob.util.html_escape: html.escape(s, quote=True),
    # then non-ASCII as character references. Glance's 403 for PATCH /status therefore reads
    # "Attribute &#x27;status&#x27; is read-only." in the HTML form.
    response = error_response(make_request("text/html"), 403, "Attribute 'status' is read-only. \"caf\u00e9\"")
    text = response.body.decode()
    assert "  Attribute &#x27;status&#x27; is read-only. &quot;caf&#233;&quot;<br /><br />" in text


def test_html_body_escapes_the_message() -> None:
    response = error_response(make_request("text/html"), 400, "<script>alert(1)</script> & more")
    text = response.body.decode()
    assert "<script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in text


def test_plain_body() -> None:
    response = error_response(make_request("text/plain"), 409, "Property foo does not exist.")
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("text/plain")
    assert response.body.decode() == "409 Conflict\n\nProperty foo does not exist.\n\n   "


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "400 Bad Request"),
        (403, "403 Forbidden"),
        (404, "404 Not Found"),
        (409, "409 Conflict"),
        (410, "410 Gone"),
        (413, "413 Request Entity Too Large"),
        (415, "415 Unsupported Media Type"),
        (416, "416 Requested Range Not Satisfiable"),
        (500, "500 Internal Server Error"),
        (503, "503 Service Unavailable"),
    ],
)
def test_status_titles_are_webobs(status: int, code: str) -> None:
    # WebOb's titles; Python 3.13 renamed some http.HTTPStatus phrases (413 "Content Too Large",
    # 416 "Range Not Satisfiable"), which must not leak into Glance-compatible bodies.
    body = json.loads(error_response(make_request("application/json"), status, "m").body)
    assert body["code"] == code
    assert body["title"] == code.split(" ", 1)[1]
    assert error_response(make_request("text/plain"), status, "m").body.decode().startswith(f"{code}\n\nm")


def test_no_request_gives_plain_text() -> None:
    response = error_response(None, 500, "boom")
    assert response.headers["content-type"].startswith("text/plain")
    assert response.body.decode().startswith("500 Internal Server Error\n\nboom")


def test_extra_headers_are_sent() -> None:
    response = error_response(make_request("application/json"), 416, "nope", {"Content-Range": "bytes */10"})
    assert response.headers["content-range"] == "bytes */10"


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (BadRequest("x"), 400),
        (Forbidden("x"), 403),
        (NotFound("x"), 404),
        (Conflict("x"), 409),
        (Gone("x"), 410),
        (TooLarge("x"), 413),
        (StoreFull("x"), 413),
        (UnsupportedMediaType("x"), 415),
        (RangeNotSatisfiable("x", 5), 416),
        (StoreUnavailable("x"), 503),
        (StoreError("x"), 500),
        (ConfigError("x"), 500),
        (GlimpseError("x"), 500),
    ],
)
def test_status_for(exc: GlimpseError, status: int) -> None:
    assert status_for(exc) == status


def test_domain_error_handler() -> None:
    response = asyncio.run(domain_error(make_request("application/json"), Conflict("Property foo already present.")))
    assert response.status_code == 409
    assert json.loads(response.body)["message"].startswith("Property foo already present.")


def test_domain_error_range_not_satisfiable_sets_content_range() -> None:
    response = asyncio.run(domain_error(make_request(None), RangeNotSatisfiable("no", 1234)))
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */1234"


# What WebOb 1.8 (Glance 33's) picks for an error, read from webob.exc against each header; a missing
# header is read as empty by webob.exc, so it gets plain text too.
WEBOB_CHOICES = [
    (None, "text/plain"), ("", "text/plain"), ("*/*", "text/html"), ("application/json", "application/json"),
    ("text/html", "text/html"), ("text/plain", "text/plain"), ("application/xml", "text/plain"),
    ("garbage", "text/html"), ("garbage;;", "text/html"), ("text/html;q=abc", "text/html"), (",", "text/plain"),
    ("text/*", "text/html"), ("application/*", "application/json"), ("text/plain, */*;q=0.1", "text/html"),
    ("application/json;q=0.5, text/html;q=0.4", "application/json"), ("text/html;level=1", "text/plain"),
    ("application/json, text/html", "text/html"), ("application/json;q=0", "text/plain"), ("*/*;q=0", "text/plain"),
    ("text/html;q=0, */*", "application/json"), ("APPLICATION/JSON", "application/json"),
    ("application/json;charset=utf-8", "text/plain"), ("*/*, application/json;q=0.9", "text/html"),
]  # fmt: skip


@pytest.mark.parametrize(("accept", "expected"), WEBOB_CHOICES)
def test_the_error_format_is_the_one_webob_picks(accept: str | None, expected: str) -> None:
    assert negotiate(accept) == expected


def test_plain_errors_fold_newlines_and_drop_tags_as_webob_does() -> None:
    request = Request({"type": "http", "method": "PATCH", "path": "/", "headers": [(b"accept", b"")]})
    body = error_response(request, 400, "bad <x>\nvalue").body
    assert body == b"400 Bad Request\n\nbad  value\n\n   "
