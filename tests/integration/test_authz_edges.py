"""Authorization edges over the whole app in-process (real SQLite, default policy, no-auth headers)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from glimpse.app import create_app
from glimpse.config import load_settings

PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
NO_PROJECT_MEMBER = {"X-Roles": "member,reader"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir = tmp_path_factory.mktemp("edges")
    with TestClient(create_app(load_settings(overrides={"data_dir": str(data_dir)}))) as test_client:
        yield test_client


def _ownerless_public(client: TestClient) -> str:
    # The no-auth default caller is an admin without a project: its images have no owner.
    body = {"visibility": "public", "disk_format": "raw", "container_format": "bare", "name": "base"}
    created = client.post("/v2/images", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["owner"] is None
    image_id: str = created.json()["id"]
    assert client.put(f"/v2/images/{image_id}/file", content=b"data").status_code == 204
    return image_id


def test_a_member_without_project_cannot_change_ownerless_images(client: TestClient) -> None:
    image_id = _ownerless_public(client)
    assert client.get(f"/v2/images/{image_id}", headers=NO_PROJECT_MEMBER).status_code == 200
    rename = [{"op": "replace", "path": "/name", "value": "pwned"}]
    renamed = client.patch(f"/v2/images/{image_id}", json=rename, headers={**PATCH, **NO_PROJECT_MEMBER})
    assert renamed.status_code == 403
    deactivate = client.post(f"/v2/images/{image_id}/actions/deactivate", headers=NO_PROJECT_MEMBER)
    assert deactivate.status_code == 403
    assert client.delete(f"/v2/images/{image_id}", headers=NO_PROJECT_MEMBER).status_code == 403
    after = client.get(f"/v2/images/{image_id}").json()
    assert (after["name"], after["status"]) == ("base", "active")


FORM_TYPES = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None]
BODY = b'{"member": "prj-evil", "name": "x", "method": {"name": "web-download"}, "status": "accepted"}'


def _sent_as(content_type: str | None) -> dict[str, str]:
    return {"Content-Type": content_type} if content_type else {}


@pytest.mark.parametrize("content_type", FORM_TYPES)
def test_json_endpoints_refuse_what_a_browser_form_can_send(client: TestClient, content_type: str | None) -> None:
    image_id = _ownerless_public(client)
    shared = client.post("/v2/images", json={"visibility": "shared", "disk_format": "raw", "container_format": "bare"})
    shared_id = shared.json()["id"]
    before = client.get("/v2/images").json()["images"]
    attempts = [
        ("POST", "/v2/images"),
        ("POST", f"/v2/images/{shared_id}/members"),
        ("PUT", f"/v2/images/{shared_id}/members/prj-evil"),
        ("POST", f"/v2/images/{image_id}/import"),
        ("POST", f"/v2/images/{image_id}/locations"),
        ("PUT", "/v2/quotas/prj-evil"),
        ("PATCH", f"/v2/images/{image_id}"),
    ]
    for method, url in attempts:
        response = client.request(method, url, content=BODY, headers=_sent_as(content_type))
        assert response.status_code == 415, (method, url, response.text)
        assert "415" in response.text
    assert client.get("/v2/images").json()["images"] == before
    assert client.get(f"/v2/images/{shared_id}/members").json()["members"] == []


def test_json_endpoints_accept_json(client: TestClient) -> None:
    body = {"visibility": "shared", "disk_format": "raw", "container_format": "bare"}
    created = client.post("/v2/images", json=body, headers={"Content-Type": "application/json; charset=UTF-8"})
    assert created.status_code == 201
    added = client.post(f"/v2/images/{created.json()['id']}/members", json={"member": "prj-ok"})
    assert added.status_code == 200
    url = f"/v2/images/{created.json()['id']}"
    patched = client.patch(url, json=[{"op": "replace", "path": "/name", "value": "n"}], headers=PATCH)
    assert patched.status_code == 200
    v20 = {"Content-Type": "application/openstack-images-v2.0-json-patch"}
    assert client.patch(url, json=[{"replace": "/name", "value": "m"}], headers=v20).status_code == 200
    assert client.get(url).json()["name"] == "m"


@pytest.mark.parametrize(
    "browser",
    [
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://localhost:3000"},
        {"Origin": "https://evil.example"},  # a browser without Fetch metadata
        {"Origin": "null"},
    ],
)
def test_another_sites_page_cannot_change_anything(client: TestClient, browser: dict[str, str]) -> None:
    image_id = _ownerless_public(client)
    assert client.post(f"/v2/images/{image_id}/actions/deactivate", headers=browser).status_code == 403
    assert client.delete(f"/v2/images/{image_id}", headers=browser).status_code == 403
    created = client.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"}, headers=browser)
    assert created.status_code == 403
    assert client.get(f"/v2/images/{image_id}", headers=browser).json()["status"] == "active"


def test_same_origin_and_api_clients_are_not_refused(client: TestClient) -> None:
    image_id = _ownerless_public(client)
    same = {"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"}
    assert client.post(f"/v2/images/{image_id}/actions/deactivate", headers=same).status_code == 204
    assert (
        client.post(f"/v2/images/{image_id}/actions/reactivate", headers={"Origin": "http://testserver"}).status_code
        == 204
    )
