"""The same requests to a real Glance 33 and to Glimpse, both with the same [cors] section: CORS headers, error
bodies for each Accept, and a raw image's virtual_size must come back the same.

Glance's cors filter (oslo.middleware) reads the [cors] options through its own config lookup, so its paste
filter is pointed at the test's glance-api.conf (oslo_config_file), as a deployment's /etc/glance would be.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.server import GlimpseServer

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from benchmarks.glance_baseline import VENV, GlanceServer  # noqa: E402

ALLOWED = "http://horizon.example:8080"
CORS = f"[cors]\nallowed_origin = {ALLOWED}\n"
Answer = tuple[int, dict[str, str], bytes]


class CorsGlance(GlanceServer):
    def _write_config(self) -> None:
        super()._write_config()
        conf = self.workdir / "glance-api.conf"
        conf.write_text(conf.read_text() + "\n" + CORS)
        paste = self.workdir / "glance-api-paste.ini"
        program = "oslo_config_program = glance-api"
        paste.write_text(paste.read_text().replace(program, f"{program}\noslo_config_file = {conf}"))


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    if not (VENV / ".installed").is_file():
        subprocess.run(["bash", str(ROOT / "benchmarks" / "install-glance")], check=True, timeout=1800)
    glance = CorsGlance(tmp_path_factory.mktemp("glance"), workers=1, threads=2).start()
    glimpse = GlimpseServer(tmp_path_factory.mktemp("glimpse"), extra_conf=CORS).start()
    try:
        yield glance.url, glimpse.url
    finally:
        glance.stop()
        glimpse.stop()


def _send(url: str, method: str, path: str, headers: dict[str, str], body: bytes | None = None) -> Answer:
    connection = http.client.HTTPConnection(url.split("//")[1], timeout=30)  # no header of its own but Host
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def _cors(answer: Answer) -> tuple[int, dict[str, str], bytes]:
    status, headers, body = answer
    return status, {k: v for k, v in headers.items() if k.startswith("access-control-") or k == "vary"}, body


PREFLIGHTS = [
    {"Origin": ALLOWED, "Access-Control-Request-Method": "PUT",
     "Access-Control-Request-Headers": "content-type,x-auth-token,content-md5"},
    {"Origin": ALLOWED, "Access-Control-Request-Method": "POST"},
    {"Origin": ALLOWED, "Access-Control-Request-Method": "HEAD"},  # not in Glance's allow_methods
    {"Origin": ALLOWED, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "x-evil"},
    {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    {"Origin": ALLOWED},
    {},
]  # fmt: skip


@pytest.mark.parametrize("headers", PREFLIGHTS)
def test_preflights_are_answered_alike(servers: tuple[str, str], headers: dict[str, str]) -> None:
    glance, glimpse = servers
    for path in ("/v2/images", "/v2/images/x/file", "/nowhere"):
        assert _cors(_send(glimpse, "OPTIONS", path, headers)) == _cors(_send(glance, "OPTIONS", path, headers))


@pytest.mark.parametrize("origin", [ALLOWED, "http://evil.example", None])
def test_actual_responses_carry_the_same_cors_headers(servers: tuple[str, str], origin: str | None) -> None:
    glance, glimpse = servers
    headers = {"Origin": origin} if origin else {}
    for path in ("/v2/images", f"/v2/images/{uuid.uuid4()}"):  # a 200 and a 404
        ours, theirs = _cors(_send(glimpse, "GET", path, headers)), _cors(_send(glance, "GET", path, headers))
        assert ours[:2] == theirs[:2]


@pytest.mark.parametrize("accept", [None, "", "*/*", "application/json", "text/html", "text/plain", "garbage"])
def test_a_404_has_glances_body_for_each_accept(servers: tuple[str, str], accept: str | None) -> None:
    glance, glimpse = servers
    path = f"/v2/images/{uuid.uuid4()}"
    headers = {"Accept": accept} if accept is not None else {}
    ours, theirs = _send(glimpse, "GET", path, headers), _send(glance, "GET", path, headers)
    assert ours[0] == theirs[0] == 404
    assert ours[1]["content-type"].split(";")[0] == theirs[1]["content-type"].split(";")[0]
    assert ours[2] == theirs[2]


def test_a_raw_upload_gets_the_same_virtual_size(servers: tuple[str, str]) -> None:
    sizes = []
    for url in servers:
        body = b'{"name": "raw", "disk_format": "raw", "container_format": "bare"}'
        status, _, made = _send(url, "POST", "/v2/images", {"Content-Type": "application/json"}, body)
        assert status == 201
        image_id = json.loads(made)["id"]
        octets = {"Content-Type": "application/octet-stream"}
        assert _send(url, "PUT", f"/v2/images/{image_id}/file", octets, b"\x07" * 12345)[0] == 204
        shown = _send(url, "GET", f"/v2/images/{image_id}", {"Accept": "application/json"})[2]
        sizes.append(json.loads(shown)["virtual_size"])
    assert sizes == [12345, 12345]
