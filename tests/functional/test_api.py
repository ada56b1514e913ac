"""The Images API v2 over plain HTTP: status codes, headers, error bodies, filters and pagination."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import httpx
import pytest

from tests.disk_bytes import raw_disk_bytes
from tests.functional.server import GlimpseServer

PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
PROJECT_A = {"X-Project-Id": "project-a", "X-Roles": "member,reader"}
PROJECT_B = {"X-Project-Id": "project-b", "X-Roles": "member,reader"}


@pytest.fixture
def api(server: GlimpseServer) -> httpx.Client:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def _create(api: httpx.Client, headers: dict[str, str] | None = None, **body: Any) -> dict[str, Any]:
    body.setdefault("disk_format", "raw")
    body.setdefault("container_format", "bare")
    response = api.post("/v2/images", json=body, headers=headers or {})
    assert response.status_code == 201, response.text
    return response.json()


def test_versions_documents(api: httpx.Client) -> None:
    root = api.get("/")
    assert root.status_code == 300
    versions = api.get("/versions")
    assert versions.status_code == 200
    current = [v for v in versions.json()["versions"] if v["status"] == "CURRENT"]
    assert len(current) == 1 and current[0]["id"].startswith("v2.")
    assert current[0]["links"][0]["href"].endswith("/v2/")
    assert root.headers["x-openstack-request-id"].startswith("req-")


def test_create_with_id_and_reserved_attributes(api: httpx.Client) -> None:
    image_id = str(uuid.uuid4())
    image = _create(api, id=image_id, name="given-id", kernel_id=str(uuid.uuid4()))
    assert image["id"] == image_id
    assert api.post("/v2/images", json={"id": image_id}).status_code == 409
    api.delete(f"/v2/images/{image_id}")
    # A deleted image's id is never handed out again.
    assert api.post("/v2/images", json={"id": image_id}).status_code == 409
    assert api.post("/v2/images", json={"status": "active"}).status_code == 403
    assert api.post("/v2/images", json={"os_glance_importing_to_stores": "x"}).status_code == 403
    bad = api.post("/v2/images", json={"disk_format": "floppy"}, headers={"Accept": "application/json"})
    assert bad.status_code == 400
    assert "qcow2" in bad.json()["message"]  # the valid values are named
    assert api.post("/v2/images", json={"foo": 5}).status_code == 400  # extra properties are strings
    assert api.post("/v2/images", content=b"{not json", headers={"Content-Type": "application/json"}).status_code == 400


def test_error_bodies_follow_accept(api: httpx.Client) -> None:
    missing = f"/v2/images/{uuid.uuid4()}"
    as_json = api.get(missing, headers={"Accept": "application/json"})
    assert as_json.status_code == 404
    assert as_json.json()["code"] == "404 Not Found"
    assert "No image found with ID" in as_json.json()["message"]
    as_html = api.get(missing, headers={"Accept": "*/*"})
    assert as_html.headers["content-type"].startswith("text/html")
    assert "<h1>404 Not Found</h1>" in as_html.text
    assert as_html.headers["x-openstack-request-id"].startswith("req-")
    not_allowed = api.put("/v2/images")
    assert not_allowed.status_code == 405
    assert set(not_allowed.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


def test_patch_rules(api: httpx.Client) -> None:
    image = _create(api, name="patch-me", os_distro="ubuntu")
    url = f"/v2/images/{image['id']}"
    wrong_type = api.patch(url, json=[], headers={"Content-Type": "application/json"})
    assert wrong_type.status_code == 415
    assert "openstack-images-v2.1-json-patch" in wrong_type.headers["accept-patch"]
    ok = api.patch(
        url,
        json=[
            {"op": "replace", "path": "/name", "value": "patched"},
            {"op": "add", "path": "/os_version", "value": "24.04"},
            {"op": "add", "path": "/os_distro", "value": "debian"},  # add on an existing key replaces it
            {"op": "replace", "path": "/tags", "value": ["a", "b"]},
            {"op": "replace", "path": "/visibility", "value": "community"},
        ],
        headers=PATCH,
    )
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert (body["name"], body["os_version"], body["os_distro"]) == ("patched", "24.04", "debian")
    assert body["tags"] == ["a", "b"] and body["visibility"] == "community"
    cases = [
        ([{"op": "replace", "path": "/status", "value": "active"}], 403),
        ([{"op": "add", "path": "/os_glance_x", "value": "1"}], 403),
        ([{"op": "add", "path": "/deleted", "value": "1"}], 403),
        ([{"op": "remove", "path": "/name"}], 403),
        ([{"op": "replace", "path": "/nothing_here", "value": "1"}], 409),
        ([{"op": "remove", "path": "/nothing_here"}], 409),
        ([{"op": "move", "path": "/name", "from": "/x"}], 400),
        ([{"op": "add", "path": "name", "value": "x"}], 400),
        ([{"op": "replace", "path": "/min_ram", "value": "lots"}], 400),
        ([{"op": "replace", "path": "/disk_format", "value": "floppy"}], 400),
        ({"op": "replace"}, 400),
    ]
    for ops, status in cases:
        response = api.patch(url, json=ops, headers=PATCH)
        assert response.status_code == status, (ops, response.text)
    # A failed PATCH changes nothing.
    assert api.get(url).json()["name"] == "patched"
    removed = api.patch(url, json=[{"op": "remove", "path": "/os_version"}], headers=PATCH).json()
    assert "os_version" not in removed


def test_upload_download_ranges(api: httpx.Client) -> None:
    image = _create(api, name="ranges")
    url = f"/v2/images/{image['id']}"
    assert api.get(f"{url}/file").status_code == 204  # no data yet
    data = raw_disk_bytes(100_000)
    upload = api.put(f"{url}/file", content=data, headers={"Content-Type": "application/octet-stream"})
    assert upload.status_code == 204, upload.text
    shown = api.get(url).json()
    assert shown["status"] == "active" and shown["size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert (shown["os_hash_algo"], shown["os_hash_value"]) == ("sha512", hashlib.sha512(data).hexdigest())
    full = api.get(f"{url}/file")
    assert full.status_code == 200 and full.content == data
    assert full.headers["content-md5"] == hashlib.md5(data).hexdigest()
    assert full.headers["content-type"] == "application/octet-stream"
    part = api.get(f"{url}/file", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    suffix = api.get(f"{url}/file", headers={"Range": "bytes=-5"})
    assert suffix.status_code == 206 and suffix.content == data[-5:]
    open_ended = api.get(f"{url}/file", headers={"Range": f"bytes={len(data) - 3}-"})
    assert open_ended.content == data[-3:]
    beyond = api.get(f"{url}/file", headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(data)}"
    assert api.get(f"{url}/file", headers={"Range": "bytes=0-1,5-6"}).status_code == 400
    again = api.put(f"{url}/file", content=b"x", headers={"Content-Type": "application/octet-stream"})
    assert again.status_code == 409  # data of an active image never changes
    assert api.get(f"{url}/file").content == data


def test_upload_needs_formats_and_octet_stream(api: httpx.Client) -> None:
    image = api.post("/v2/images", json={"name": "no-formats"}).json()
    url = f"/v2/images/{image['id']}/file"
    assert api.put(url, content=b"abc", headers={"Content-Type": "application/octet-stream"}).status_code == 400
    assert api.get(f"/v2/images/{image['id']}").json()["status"] == "queued"
    formatted = _create(api, name="formats")
    wrong = api.put(f"/v2/images/{formatted['id']}/file", content=b"abc", headers={"Content-Type": "text/plain"})
    assert wrong.status_code == 415


def test_filters_and_pagination(api: httpx.Client) -> None:
    batch = uuid.uuid4().hex[:8]
    made = []
    for i in range(23):
        image = _create(
            api,
            name=f"{batch}-{i:02d}",
            batch=batch,
            disk_format="qcow2" if i % 2 else "raw",
            tags=["even"] if i % 2 == 0 else ["odd", "x"],
            min_disk=i,
        )
        made.append(image)
    seen: list[str] = []
    url: str | None = f"/v2/images?batch={batch}&limit=5&sort=name:asc"
    pages = 0
    while url:
        page = api.get(url).json()
        seen += [i["name"] for i in page["images"]]
        url = page.get("next")
        pages += 1
    assert seen == [f"{batch}-{i:02d}" for i in range(23)]
    assert pages == 5

    def names(query: str) -> list[str]:
        response = api.get(f"/v2/images?batch={batch}&limit=100&{query}")
        assert response.status_code == 200, response.text
        return sorted(i["name"] for i in response.json()["images"])

    assert len(names("disk_format=qcow2")) == 11
    assert len(names("tag=odd&tag=x")) == 11
    assert names("tag=even&tag=x") == []
    assert names(f"name=in:{batch}-01,{batch}-02") == [f"{batch}-01", f"{batch}-02"]
    assert names(f"id=in:{made[3]['id']},{made[4]['id']}") == [f"{batch}-03", f"{batch}-04"]
    assert names(f"created_at=gte:{made[0]['created_at']}") == sorted(i["name"] for i in made)
    assert names("created_at=lt:2000-01-01T00:00:00Z") == []
    assert len(names("protected=false")) == 23 and names("protected=true") == []
    keys = api.get(f"/v2/images?batch={batch}&sort_key=disk_format&sort_dir=asc&sort_key=name&sort_dir=desc&limit=30")
    listed = [(i["disk_format"], i["name"]) for i in keys.json()["images"]]
    assert listed == sorted(listed, key=lambda p: (p[0], [-ord(c) for c in p[1]]))
    for bad in ("limit=-1", "sort_key=owner", "sort=name:up", "protected=maybe", "size_min=big",
                "created_at=gt:yesterday", "changes-since=2020-01-01", "marker=" + str(uuid.uuid4()),
                "visibility=everyone", "sort=name&sort_key=name"):  # fmt: skip
        assert api.get(f"/v2/images?{bad}").status_code == 400, bad


def test_project_visibility_through_headers(api: httpx.Client) -> None:
    private = _create(api, PROJECT_A, name="a-private", visibility="private")
    assert private["owner"] == "project-a"
    url = f"/v2/images/{private['id']}"
    assert api.get(url, headers=PROJECT_A).status_code == 200
    assert api.get(url, headers=PROJECT_B).status_code == 404  # not 403: nothing leaks
    assert api.delete(url, headers=PROJECT_B).status_code == 404
    listing = api.get("/v2/images", headers=PROJECT_B).json()["images"]
    assert private["id"] not in [i["id"] for i in listing]
    public_attempt = api.post("/v2/images", json={"name": "p", "visibility": "public"}, headers=PROJECT_A)
    assert public_attempt.status_code == 403
    public = _create(api, name="admin-public", visibility="public")
    assert api.get(f"/v2/images/{public['id']}", headers=PROJECT_B).status_code == 200
    change = api.patch(
        f"/v2/images/{public['id']}", json=[{"op": "replace", "path": "/name", "value": "x"}],
        headers={**PROJECT_B, **PATCH},
    )  # fmt: skip
    assert change.status_code == 403
    other_owner = api.post("/v2/images", json={"owner": "project-b"}, headers=PROJECT_A)
    assert other_owner.status_code == 403


def test_deactivate_and_tags(api: httpx.Client) -> None:
    image = _create(api, PROJECT_A, name="deact", visibility="public" if False else "shared")
    url = f"/v2/images/{image['id']}"
    assert api.post(f"{url}/actions/deactivate", headers=PROJECT_A).status_code == 403  # queued: not allowed
    api.put(f"{url}/file", content=b"1234", headers={**PROJECT_A, "Content-Type": "application/octet-stream"})
    assert api.post(f"{url}/actions/deactivate", headers=PROJECT_A).status_code == 204
    assert api.get(f"{url}/file", headers=PROJECT_A).status_code == 403
    assert api.get(f"{url}/file").content == b"1234"  # admins may still read it
    assert api.post(f"{url}/actions/reactivate", headers=PROJECT_A).status_code == 204
    assert api.get(f"{url}/file", headers=PROJECT_A).content == b"1234"
    assert api.put(f"{url}/tags/with space", headers=PROJECT_A).status_code == 204
    assert api.put(f"{url}/tags/with space", headers=PROJECT_A).status_code == 204  # idempotent
    assert api.get(url).json()["tags"] == ["with space"]
    assert api.delete(f"{url}/tags/absent", headers=PROJECT_A).status_code == 404
    assert api.delete(f"{url}/tags/with space", headers=PROJECT_A).status_code == 204


def test_schemas_served(api: httpx.Client) -> None:
    image_schema = api.get("/v2/schemas/image").json()
    assert image_schema["name"] == "image"
    assert image_schema["properties"]["visibility"]["enum"] == ["community", "public", "private", "shared"]
    assert api.get("/v2/schemas/images").json()["properties"]["images"]["items"] == image_schema
    assert api.get("/v2/schemas/member").json()["properties"]["status"]["enum"] == ["pending", "accepted", "rejected"]
    assert "members" in api.get("/v2/schemas/members").json()["properties"]
    assert api.post("/v2/schemas/image").status_code == 405
    stores = api.get("/v2/info/stores").json()["stores"]
    assert any(s.get("default") == "true" for s in stores)
    assert api.get("/v2/info/import").json()["import-methods"]["type"] == "array"


def test_task_schemas_served(api: httpx.Client) -> None:
    task = api.get("/v2/schemas/task").json()
    assert task["properties"]["status"]["enum"] == ["pending", "processing", "success", "failure"]
    assert api.get("/v2/schemas/tasks").json()["properties"]["tasks"]["items"] == task


def test_locations_are_for_services_only(api: httpx.Client) -> None:
    image = _create(api, PROJECT_A, name="located", visibility="community")
    url = f"/v2/images/{image['id']}"
    api.put(f"{url}/file", content=b"abc", headers={**PROJECT_A, "Content-Type": "application/octet-stream"})
    assert api.get(f"{url}/locations", headers=PROJECT_A).status_code == 403
    service = {"X-Project-Id": "service", "X-Roles": "service,reader"}
    found = api.get(f"{url}/locations", headers=service)
    assert found.status_code == 200
    assert [loc["metadata"].get("store") for loc in found.json()] == ["file"]
    assert "locations" not in api.get(url).json()  # show_multiple_locations is off
