"""Dashboard posts are bounded like the API's: forms by max_request_body_size, a form upload by image_size_cap."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from glimpse.app import create_app
from glimpse.config import load_settings

CAP = 256 * 1024


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir = tmp_path_factory.mktemp("dashboard-limits")
    conf = data_dir / "glimpse.conf"
    conf.write_text(f"[DEFAULT]\nimage_size_cap = {CAP}\n[oslo_middleware]\nmax_request_body_size = 4096\n")
    app = create_app(load_settings([str(conf)], overrides={"data_dir": str(data_dir)}))
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as test_client:
        token = _csrf(test_client.get("/dashboard/login").text)
        form = {"csrf_token": token, "project": "prj", "role": "member"}
        assert test_client.post("/dashboard/login", data=form).status_code == 303
        yield test_client


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    return match.group(1)


def _images(client: TestClient) -> int:
    return len(client.get("/v2/images", headers={"X-Project-Id": "prj"}).json()["images"])


def test_a_form_past_max_request_body_size_is_413(client: TestClient) -> None:
    token = _csrf(client.get("/dashboard/images/new").text)
    before = _images(client)
    form = {"csrf_token": token, "name": "n", "disk_format": "raw", "properties": "k=" + "v" * 5000}
    assert client.post("/dashboard/images/new", data=form).status_code == 413
    assert _images(client) == before


def test_a_form_upload_past_image_size_cap_is_413_and_creates_nothing(client: TestClient) -> None:
    token = _csrf(client.get("/dashboard/images/new").text)
    before = _images(client)
    form = {"csrf_token": token, "name": "big", "disk_format": "raw"}
    files = {"file": ("big.img", b"\0" * (CAP + 8192), "application/octet-stream")}
    assert client.post("/dashboard/images/new", data=form, files=files).status_code == 413
    assert _images(client) == before


def test_a_form_upload_under_the_cap_is_stored(client: TestClient) -> None:
    token = _csrf(client.get("/dashboard/images/new").text)
    form = {"csrf_token": token, "name": "small", "disk_format": "raw"}
    files = {"file": ("small.img", b"\0" * 10000, "application/octet-stream")}
    answer = client.post("/dashboard/images/new", data=form, files=files)
    assert answer.status_code == 303
    image_id = answer.headers["location"].rsplit("/", 1)[1]
    assert client.get(f"/v2/images/{image_id}", headers={"X-Project-Id": "prj"}).json()["size"] == 10000
