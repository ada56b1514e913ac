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
