"""Glance behaviours Tempest's image tests found missing in Glimpse (tests/conformance/), each fixed in place.

The whole app runs in-process on SQLite; the legacy task's web server is a real one on 127.0.0.1.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from tests.conformance.tempest_run import FileServer
from tests.integration.inprocess import app_client, settings_for

OWNER = {"X-Project-Id": "p1", "X-Roles": "member,reader"}
ADMIN = {"X-Project-Id": "admin-project", "X-Roles": "admin,member,reader"}
DATA = b"legacy task data " * 4096


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileServer]:
    folder = tmp_path_factory.mktemp("legacy-task-files")
    (folder / "disk.raw").write_bytes(DATA)
    server = FileServer(folder).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(files: FileServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    conf = "[DEFAULT]\nenabled_import_methods = glance-direct, web-download, copy-image, glance-download\n"
    conf += f"[import_filtering_opts]\nallowed_hosts = 127.0.0.1\nallowed_ports = {files.port}\n"
    with app_client(settings_for(tmp_path_factory.mktemp("tempest-findings"), None, conf)) as test_client:
        yield test_client


def _legacy_task(import_from: str, name: str) -> dict[str, object]:
    properties = {"name": name, "disk_format": "raw", "container_format": "bare", "visibility": "private"}
    return {
        "type": "import",
        "input": {"import_from": import_from, "import_from_format": "raw", "image_properties": properties},
    }


def _names(client: TestClient) -> list[str]:
    return [i.get("name") for i in client.get("/v2/images?limit=1000", headers=ADMIN).json()["images"]]


def test_the_owner_project_may_be_a_member_of_its_shared_image(client: TestClient) -> None:
    """Glance 33 accepts it (pending), as Tempest's member tests do."""
    body = {"name": "shared", "disk_format": "raw", "container_format": "bare", "visibility": "shared"}
    image = client.post("/v2/images", json=body, headers=OWNER).json()
    added = client.post(f"/v2/images/{image['id']}/members", json={"member": "p1"}, headers=OWNER)
    assert added.status_code == 200, added.text
    assert added.json()["member_id"] == "p1" and added.json()["status"] == "pending"
    listed = client.get(f"/v2/images/{image['id']}/members", headers=OWNER).json()["members"]
    assert [m["member_id"] for m in listed] == ["p1"]


def test_an_empty_image_id_is_not_found(client: TestClient) -> None:
    for method in ("GET", "DELETE", "PATCH"):
        answer = client.request(method, "/v2/images/", headers=OWNER)
        assert answer.status_code == 404, (method, answer.status_code)


def test_a_legacy_import_task_fills_a_new_image_from_its_url(client: TestClient, files: FileServer) -> None:
    created = client.post("/v2/tasks", json=_legacy_task(f"{files.url}/disk.raw", "legacy-ok"), headers=ADMIN)
    assert created.status_code == 201, created.text
    task = created.json()
    assert task["status"] in ("pending", "processing", "success") and task["image_id"]
    deadline = time.monotonic() + 30
    image = client.get(f"/v2/images/{task['image_id']}", headers=ADMIN).json()
    while image["status"] != "active" and time.monotonic() < deadline:
        time.sleep(0.1)
        image = client.get(f"/v2/images/{task['image_id']}", headers=ADMIN).json()
    assert image["status"] == "active" and image["size"] == len(DATA) and image["name"] == "legacy-ok"
    # The task records its end just after the image is published (another transaction): wait for it too.
    status = client.get(f"/v2/tasks/{task['id']}", headers=ADMIN).json()["status"]
    while status in ("pending", "processing") and time.monotonic() < deadline:
        time.sleep(0.1)
        status = client.get(f"/v2/tasks/{task['id']}", headers=ADMIN).json()["status"]
    assert status == "success"


@pytest.mark.parametrize(
    "url",
    [
        "http://192.0.2.7/disk.raw",
        "http://tempest-dummy-img-file.qcow2",
        "ftp://127.0.0.1/disk.raw",
        "http://127.0.0.1:1/x",
    ],
)
def test_a_legacy_import_task_from_a_url_the_policy_refuses_is_400(client: TestClient, url: str) -> None:
    """Glance 33 (bug 2152110) refuses such a task when it is created; Tempest accepts that answer. No image is
    left behind."""
    refused = client.post("/v2/tasks", json=_legacy_task(url, "legacy-refused"), headers=ADMIN)
    assert refused.status_code == 400, refused.text
    assert "does not pass filtering" in refused.text
    assert "legacy-refused" not in _names(client)


def test_legacy_tasks_are_for_admins_and_of_type_import(client: TestClient, files: FileServer) -> None:
    body = _legacy_task(f"{files.url}/disk.raw", "legacy-forbidden")
    assert client.post("/v2/tasks", json=body, headers=OWNER).status_code == 403
    assert client.post("/v2/tasks", json={**body, "type": "export"}, headers=ADMIN).status_code == 400
    assert client.post("/v2/tasks", json={"type": "import"}, headers=ADMIN).status_code == 400
    assert client.post("/v2/tasks", json={"type": "import", "input": []}, headers=ADMIN).status_code == 400
    assert "legacy-forbidden" not in _names(client)


def _queued(client: TestClient) -> str:
    body = {"name": "queued", "disk_format": "raw", "container_format": "bare"}
    return str(client.post("/v2/images", json=body, headers=OWNER).json()["id"])


def test_a_location_hash_value_needs_its_algorithm(client: TestClient) -> None:
    """Glance's add-location schema: os_hash_value requires os_hash_algo (no default), checked before reading."""
    image_id = _queued(client)
    body = {"url": "http://127.0.0.1/disk.raw", "validation_data": {"os_hash_value": "ab" * 64}}
    answer = client.post(f"/v2/images/{image_id}/locations", json=body, headers=OWNER)
    assert answer.status_code == 400 and "needs os_hash_algo" in answer.text, answer.text


def test_glance_download_names_a_bad_remote_id_as_glance_does(client: TestClient) -> None:
    image_id = _queued(client)
    method = {"name": "glance-download", "glance_image_id": "foo", "glance_region": "RegionOne"}
    answer = client.post(f"/v2/images/{image_id}/import", json={"method": method}, headers=OWNER)
    assert answer.status_code == 400 and "image id does not look like a UUID" in answer.text, answer.text


def test_an_import_task_shows_the_request_as_glance_does(client: TestClient) -> None:
    """Tempest (with API 2.12 advertised) reads task.input.import_req.method.name and the request id."""
    body = {"name": "staged", "disk_format": "raw", "container_format": "bare"}
    image = client.post("/v2/images", json=body, headers=OWNER).json()
    staged = client.put(
        f"/v2/images/{image['id']}/stage", content=DATA, headers={**OWNER, "Content-Type": "application/octet-stream"}
    )
    assert staged.status_code == 204
    started = client.post(f"/v2/images/{image['id']}/import", json={"method": {"name": "glance-direct"}}, headers=OWNER)
    assert started.status_code == 202, started.text
    tasks = client.get(f"/v2/images/{image['id']}/tasks", headers=OWNER).json()["tasks"]
    assert len(tasks) == 1
    task = tasks[0]
    assert task["input"]["import_req"]["method"] == {"name": "glance-direct"}
    assert task["input"]["image_id"] == image["id"]
    assert task["request_id"] == started.headers["x-openstack-request-id"]
    assert set(task["input"]) == {"image_id", "import_req", "backend"}  # nothing of the service's bookkeeping
