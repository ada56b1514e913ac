"""One error table: the API and the dashboard answer a domain error with the same status (glimpse/errors.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from glimpse.app import create_app
from glimpse.auth.context import RequestContext
from glimpse.config import load_settings
from glimpse.domain.entities import Image
from glimpse.domain.service import ImageService
from glimpse.errors import Conflict, GlimpseError, NotFound, StoreError, StoreUnavailable

IMAGE_ID = "2f1c5d0e-7a41-4c2b-9d3e-0c8f6a1b2e3d"
MEMBER = {"X-Project-Id": "prj", "X-Roles": "member,reader"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir = tmp_path_factory.mktemp("error-table")
    app = create_app(load_settings([], overrides={"data_dir": str(data_dir)}))
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        login = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/dashboard/login").text)
        assert login
        form = {"csrf_token": login.group(1), "project": "prj", "role": "member"}
        assert client.post("/dashboard/login", data=form).status_code == 303
        yield client


@pytest.mark.parametrize(
    ("error", "status"),
    [(StoreUnavailable("the store is down"), 503), (StoreError("the store broke"), 500), (Conflict("busy"), 409)],
)
def test_api_and_dashboard_answer_a_domain_error_alike(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, error: GlimpseError, status: int
) -> None:
    def failing_get(self: ImageService, ctx: RequestContext, image_id: str) -> Image:
        raise error

    monkeypatch.setattr(ImageService, "get", failing_get)
    api = client.get(f"/v2/images/{IMAGE_ID}", headers={**MEMBER, "Accept": "application/json"})
    page = client.get(f"/dashboard/images/{IMAGE_ID}")
    assert (api.status_code, page.status_code) == (status, status)
    assert error.public_message in api.json()["message"]
    assert error.public_message in page.text


def test_a_store_outage_tells_the_caller_to_retry_and_keeps_the_stores_insides_for_the_log(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    inside = "S3 could not be reached for s3+http://10.0.0.7:9000/images-bucket/x: Could not connect"

    def failing_get(self: ImageService, ctx: RequestContext, image_id: str) -> Image:
        raise StoreUnavailable(inside)

    monkeypatch.setattr(ImageService, "get", failing_get)
    with caplog.at_level("ERROR"):
        api = client.get(f"/v2/images/{IMAGE_ID}", headers={**MEMBER, "Accept": "application/json"})
        page = client.get(f"/dashboard/images/{IMAGE_ID}")
    assert (api.status_code, page.status_code) == (503, 503)
    for body in (api.text, page.text):
        assert "10.0.0.7" not in body and "images-bucket" not in body
        assert "try again later" in body
    assert inside in caplog.text  # the operator's log has it all


def test_a_missing_image_is_still_404_on_the_api(client: TestClient) -> None:
    assert client.get(f"/v2/images/{IMAGE_ID}", headers=MEMBER).status_code == NotFound.http_status
