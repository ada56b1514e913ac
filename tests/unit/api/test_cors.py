"""CORS with oslo.middleware's rules and Glance's defaults, and the cross-site guard trusting allowed origins."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from glimpse.api.cors import CorsMiddleware, CorsRules
from glimpse.api.middleware import CrossSiteGuard
from glimpse.app import create_app
from glimpse.config import load_settings

ALLOWED = "http://horizon.example:8080"


async def _create(request: Request) -> Response:
    return JSONResponse({"made": True}, status_code=201, headers={"Vary": "Accept"})


def _client(rules: CorsRules) -> TestClient:
    app = Starlette(routes=[Route("/v2/images", _create, methods=["GET", "POST"])])
    return TestClient(CorsMiddleware(CrossSiteGuard(app, trusted=rules.allows), rules))


def _glance_defaults(tmp_path: Path, extra: str = "") -> CorsRules:
    conf = tmp_path / "glance-api.conf"
    conf.write_text(f"[cors]\nallowed_origin = {ALLOWED}\n{extra}")
    return CorsRules.from_settings(load_settings([str(conf)]))


def test_the_cors_options_default_to_glances(tmp_path: Path) -> None:
    rules = _glance_defaults(tmp_path)
    assert rules.allowed_origins == (ALLOWED,)
    assert rules.allow_methods == ("GET", "PUT", "POST", "DELETE", "PATCH")
    assert "X-Auth-Token" in rules.allow_headers and "Content-MD5" in rules.allow_headers
    assert rules.expose_headers[-1] == "X-OpenStack-Request-ID"
    assert rules.max_age == 3600 and rules.allow_credentials is True
    assert CorsRules.from_settings(load_settings([])).allowed_origins == ()


def test_preflight_from_an_allowed_origin_is_answered_as_oslo_middleware_does(tmp_path: Path) -> None:
    client = _client(_glance_defaults(tmp_path))
    asked = {"Origin": ALLOWED, "Access-Control-Request-Method": "PUT",
             "Access-Control-Request-Headers": "content-type,X-Auth-Token"}  # fmt: skip
    response = client.options("/v2/images", headers=asked)
    assert response.status_code == 200 and response.content == b""
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert response.headers["access-control-allow-methods"] == "PUT"
    assert response.headers["access-control-allow-headers"] == "content-type,X-Auth-Token"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-max-age"] == "3600"
    assert response.headers["vary"] == "Origin"


def test_refused_preflights_get_a_bare_200(tmp_path: Path) -> None:
    client = _client(_glance_defaults(tmp_path))
    for headers in (
        {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
        {"Origin": ALLOWED, "Access-Control-Request-Method": "TRACE"},  # not in Glance's allow_methods
        {"Origin": ALLOWED, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-evil"},
        {"Origin": ALLOWED},
        {},
    ):
        response = client.options("/v2/images", headers=headers)
        assert response.status_code == 200 and response.content == b""
        assert not [h for h in response.headers if h.startswith("access-control-")], headers


def test_actual_responses_are_marked_for_allowed_origins_only(tmp_path: Path) -> None:
    client = _client(_glance_defaults(tmp_path))
    allowed = client.post("/v2/images", headers={"Origin": ALLOWED, "Sec-Fetch-Site": "cross-site"})
    assert allowed.status_code == 201
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "X-OpenStack-Request-ID" in allowed.headers["access-control-expose-headers"]
    assert allowed.headers["vary"] == "Accept,Origin"

    refused = client.post("/v2/images", headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert refused.status_code == 403  # the cross-site guard: a page of another site changes nothing
    assert "access-control-allow-origin" not in refused.headers
    read = client.get("/v2/images", headers={"Origin": "http://evil.example"})
    assert read.status_code == 201 and "access-control-allow-origin" not in read.headers


def test_a_star_allows_every_origin_and_credentials_can_be_turned_off(tmp_path: Path) -> None:
    conf = tmp_path / "glance-api.conf"
    conf.write_text("[cors]\nallowed_origin = *\nallow_credentials = false\nexpose_headers =\n")
    client = _client(CorsRules.from_settings(load_settings([str(conf)])))
    response = client.post("/v2/images", headers={"Origin": "http://any.example", "Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 201
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
    assert "access-control-expose-headers" not in response.headers


def test_in_the_app_refusals_are_marked_and_the_dashboard_is_left_alone(tmp_path: Path) -> None:
    conf = tmp_path / "glance-api.conf"
    conf.write_text(f"[cors]\nallowed_origin = {ALLOWED}\n[oslo_middleware]\nmax_request_body_size = 1024\n")
    app = create_app(load_settings([str(conf)], overrides={"data_dir": str(tmp_path / "data")}))
    with TestClient(app) as client:
        origin = {"Origin": ALLOWED, "Sec-Fetch-Site": "cross-site"}
        too_big = client.post("/v2/images", content=b"{" + b" " * 4096 + b"}", headers=origin)
        assert too_big.status_code == 413  # refused by the request limits, and the page can read why
        assert too_big.headers["access-control-allow-origin"] == ALLOWED
        made = client.post("/v2/images", json={"name": "cors"}, headers=origin)
        assert made.status_code == 201 and made.headers["access-control-allow-origin"] == ALLOWED
        dashboard = client.get("/dashboard/", headers={"Origin": ALLOWED}, follow_redirects=False)
        assert "access-control-allow-origin" not in dashboard.headers
        preflight = client.options(
            "/v2/images/x/file", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "PUT"}
        )
        assert preflight.status_code == 200 and preflight.headers["access-control-allow-methods"] == "PUT"


def test_with_keystone_the_preflight_needs_no_token_and_a_401_is_readable(tmp_path: Path) -> None:
    conf = tmp_path / "glance-api.conf"
    conf.write_text(
        f"[cors]\nallowed_origin = {ALLOWED}\n[paste_deploy]\nflavor = keystone\n"
        "[keystone_authtoken]\nauth_url = http://127.0.0.1:9/v3\nusername = glance\npassword = secret\n"
    )
    app = create_app(load_settings([str(conf)], overrides={"data_dir": str(tmp_path / "data")}))
    with TestClient(app) as client:
        asked = {"Origin": ALLOWED, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "x-auth-token,content-type"}  # fmt: skip
        preflight = client.options("/v2/images", headers=asked)
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-headers"] == "x-auth-token,content-type"
        unauthenticated = client.post("/v2/images", json={}, headers={"Origin": ALLOWED})
        assert unauthenticated.status_code == 401
        assert unauthenticated.headers["access-control-allow-origin"] == ALLOWED


def _tus_client(rules: CorsRules) -> TestClient:
    async def discover(request: Request) -> Response:
        return Response(status_code=204, headers={"Tus-Resumable": "1.0.0", "Tus-Version": "1.0.0"})

    async def patch(request: Request) -> Response:
        return Response(status_code=204, headers={"Tus-Resumable": "1.0.0", "Upload-Offset": "5"})

    app = Starlette(
        routes=[
            Route("/v2/images/{image_id}/uploads", discover, methods=["OPTIONS"]),
            Route("/v2/images/{image_id}/uploads/{upload_id}", patch, methods=["PATCH"]),
        ]
    )
    return TestClient(CorsMiddleware(CrossSiteGuard(app, trusted=rules.allows), rules))


def test_tus_discovery_reaches_the_api_and_a_browsers_tus_client_may_speak_tus(tmp_path: Path) -> None:
    client = _tus_client(_glance_defaults(tmp_path))
    discovery = client.options("/v2/images/i/uploads")  # no Access-Control-Request-Method: tus's own OPTIONS
    assert discovery.status_code == 204 and discovery.headers["tus-version"] == "1.0.0"
    asked = {"Origin": ALLOWED, "Access-Control-Request-Method": "PATCH",
             "Access-Control-Request-Headers": "tus-resumable,upload-offset,upload-checksum,content-type"}  # fmt: skip
    preflight = client.options("/v2/images/i/uploads/u", headers=asked)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-methods"] == "PATCH"
    assert preflight.headers["access-control-allow-headers"] == asked["Access-Control-Request-Headers"]
    sent = client.patch("/v2/images/i/uploads/u", headers={"Origin": ALLOWED, "Sec-Fetch-Site": "cross-site"})
    assert sent.status_code == 204
    exposed = sent.headers["access-control-expose-headers"].split(",")
    assert "Upload-Offset" in exposed and "Location" in exposed and "X-OpenStack-Request-ID" in exposed
    # Elsewhere the operator's lists stand as they are.
    elsewhere = client.options("/v2/images", headers={**asked, "Access-Control-Request-Method": "PUT"})
    assert "access-control-allow-origin" not in elsewhere.headers


def test_of_two_origin_headers_the_last_decides(tmp_path: Path) -> None:
    rules = _glance_defaults(tmp_path)

    async def answer(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def marked(origins: list[bytes]) -> bool:
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/v2/images", "headers": [(b"origin", o) for o in origins]}
        asyncio.run(CorsMiddleware(answer, rules)(scope, _never, send))
        return (b"access-control-allow-origin", ALLOWED.encode()) in sent[0]["headers"]

    assert marked([b"http://evil.example", ALLOWED.encode()])
    assert not marked([ALLOWED.encode(), b"http://evil.example"])
    assert not marked([])


async def _never() -> dict[str, Any]:
    raise AssertionError("no body is read")
