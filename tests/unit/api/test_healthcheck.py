"""/healthcheck as oslo.middleware answers it in Glance's pipeline, in process (a real app, its SQLite database)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from glimpse.app import create_app
from glimpse.config import load_settings
from glimpse.errors import ConfigError

App = Callable[..., TestClient]


@pytest.fixture
def make(tmp_path: Path) -> App:
    def build(conf: str = "", client: tuple[str, int] = ("127.0.0.1", 50000)) -> TestClient:
        path = tmp_path / "glance-api.conf"
        path.write_text(conf)
        app: Starlette = create_app(load_settings([str(path)], overrides={"data_dir": str(tmp_path / "data")}))
        return TestClient(app, client=client)

    return build


def test_simple_view_in_each_format_and_draining_by_file(make: App, tmp_path: Path) -> None:
    flag = tmp_path / "disable"
    client = make(f"[healthcheck]\ndisable_by_file_path = {flag}\n")
    ok = client.get("/healthcheck")
    assert (ok.status_code, ok.text, ok.headers["content-type"]) == (200, "OK", "text/plain; charset=utf-8")
    assert client.head("/healthcheck").status_code == 204
    as_json = client.get("/healthcheck", headers={"Accept": "application/json"})
    assert as_json.json() == {"detailed": False, "reasons": ["OK"]}
    as_html = client.get("/healthcheck", headers={"Accept": "text/html"})
    assert "<H2>Result of 1 checks:</H2>" in as_html.text and "<TD>OK</TD>" in as_html.text
    assert client.get("/healthcheck", headers={"Accept": "image/png"}).text == "OK"  # none acceptable: plain

    flag.write_text("")
    down = client.get("/healthcheck")
    assert (down.status_code, down.text) == (503, "DISABLED BY FILE")
    assert client.head("/healthcheck").status_code == 503
    assert client.get("/healthcheck", headers={"Accept": "application/json"}).json()["reasons"] == ["DISABLED BY FILE"]
    assert client.get("/v2/images").status_code == 200  # draining, not refusing: the API still answers
    flag.unlink()
    assert client.get("/healthcheck").status_code == 200


def test_default_is_glances_disable_file(make: App) -> None:
    body = make("[healthcheck]\ndetailed = true\n").get("/healthcheck", headers={"Accept": "application/json"}).json()
    assert body["reasons"][0]["details"] == "Path '/etc/glance/healthcheck_disable' was not found"


def test_enable_by_files_and_ports(make: App, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    client = make(f"[healthcheck]\nbackends = enable_by_files\nenable_by_file_paths = {marker}\n")
    assert (client.get("/healthcheck").status_code, client.get("/healthcheck").text) == (503, "FILE PATH MISSING")
    marker.write_text("")
    assert client.get("/healthcheck").status_code == 200

    flag = tmp_path / "port-flag"
    flag.write_text("")
    # The test client's server port is 80: only the file named for port 80 counts.
    other = make(f"[healthcheck]\nbackends = disable_by_files_ports\ndisable_by_file_paths = 9999:{flag}\n")
    assert other.get("/healthcheck").status_code == 200
    mine = make(f"[healthcheck]\nbackends = disable_by_files_ports\ndisable_by_file_paths = 80:{flag}\n")
    assert (mine.get("/healthcheck").status_code, mine.get("/healthcheck").text) == (503, "DISABLED BY FILE")


def test_source_ranges_and_proxied_requests_are_ignored(make: App) -> None:
    outside = make("[healthcheck]\nallowed_source_ranges = 10.0.0.0/8\n")
    assert outside.get("/healthcheck").status_code == 404
    inside = make("[healthcheck]\nallowed_source_ranges = 10.0.0.0/8\n", client=("10.1.2.3", 4000))
    assert inside.get("/healthcheck").status_code == 200
    proxied = make("[healthcheck]\nignore_proxied_requests = true\n")
    assert proxied.get("/healthcheck").status_code == 200
    assert proxied.get("/healthcheck", headers={"X-Forwarded-For": "1.2.3.4"}).status_code == 404


def test_detailed_view_is_for_admins_and_checks_database_and_stores(make: App) -> None:
    client = make()
    member = {"X-Project-Id": "p1", "X-Roles": "member", "Accept": "application/json"}
    refused = client.get("/healthcheck?detailed=true", headers=member)
    assert refused.status_code == 403 and "administrators" in refused.json()["message"]
    assert client.get("/healthcheck", headers=member).json() == {"detailed": False, "reasons": ["OK"]}
    body = client.get("/healthcheck?detailed=true", headers={"Accept": "application/json"}).json()
    assert body["detailed"] is True and body["threads"] and "python_version" in body
    components = {c["component"]: c for c in body["glimpse"]["checks"]}
    assert set(components) == {"database", "store file", "store http"}
    assert all(c["available"] for c in components.values())
    assert body["glimpse"]["tasks"] == {"pending": 0, "processing": 0, "oldest_pending_age": 0}
    assert body["glimpse"]["healthy"] is True
    html = client.get("/healthcheck?detailed=true", headers={"Accept": "text/html"}).text
    assert "<H1>Server status</H1>" in html and "database: sqlite answers" in html


def test_a_broken_store_fails_the_detailed_view_only(make: App, tmp_path: Path) -> None:
    images = tmp_path / "images"
    client = make(f"[glance_store]\nfilesystem_store_datadir = {images}\n")
    images.rmdir()
    images.write_text("not a folder")
    assert client.get("/healthcheck").status_code == 200  # the load balancer's view does not look at stores
    detailed = client.get("/healthcheck?detailed=true", headers={"Accept": "application/json"})
    assert detailed.status_code == 503
    failed = [c for c in detailed.json()["glimpse"]["checks"] if not c["available"]]
    assert [(c["component"], c["reason"]) for c in failed] == [("store file", "STORE UNAVAILABLE")]
    assert client.get("/healthcheck?detailed=true").text.splitlines() == ["OK", "OK", "STORE UNAVAILABLE", "OK"]


def test_detailed_for_everyone_when_configured(make: App) -> None:
    client = make("[healthcheck]\ndetailed = true\n")
    body = json.loads(client.get("/healthcheck", headers={"X-Roles": "reader", "X-Project-Id": "p",
                                                           "Accept": "application/json"}).text)  # fmt: skip
    assert body["detailed"] is True and body["glimpse"]["checks"]


@pytest.mark.parametrize(
    "conf",
    [
        "[healthcheck]\nbackends = disable_by_file, enable_by_files\n",
        "[healthcheck]\nbackends = nosuch\n",
        "[healthcheck]\nallowed_source_ranges = 10.0.0.0/33\n",
        "[healthcheck]\nbackends = disable_by_files_ports\ndisable_by_file_paths = /no/port\n",
        "[metrics]\npath = /v2/images\n",
        "[metrics]\nallowed_source_ranges = nonsense\n",
    ],
)
def test_bad_options_stop_the_service(tmp_path: Path, conf: str) -> None:
    path = tmp_path / "glance-api.conf"
    path.write_text(conf)
    with pytest.raises(ConfigError):
        load_settings([str(path)], overrides={"data_dir": str(tmp_path / "data")})


def test_options_are_no_longer_reported_as_without_effect(tmp_path: Path) -> None:
    path = tmp_path / "glance-api.conf"
    path.write_text("[healthcheck]\ndetailed = false\nbackends = disable_by_file\nignore_proxied_requests = false\n")
    settings = load_settings([str(path)], overrides={"data_dir": str(tmp_path / "data")})
    assert not [o for o in settings.no_effect_options if "healthcheck" in o]
    assert not settings.unknown_options


def test_with_keystone_the_simple_view_needs_no_token(make: App) -> None:
    client = make(
        "[paste_deploy]\nflavor = keystone\n[keystone_authtoken]\nauth_url = http://127.0.0.1:9/v3\n"
        "username = glance\npassword = secret\n"
    )
    assert (client.get("/healthcheck").status_code, client.get("/healthcheck").text) == (200, "OK")
    assert client.get("/v2/images").status_code == 401  # everything else still needs one
    assert client.get("/healthcheck?detailed=true").status_code == 403  # no token: not an administrator
