"""Each input that used to answer 500 (or be stored) now answers a 4xx in Glance's format.

The whole app runs in-process on SQLite and PostgreSQL; tests/integration/test_fuzz.py looks for more.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.integration.inprocess import app_client, database, settings_for

PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
JSON = {"Content-Type": "application/json", "Accept": "application/json"}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """On PostgreSQL too: it refuses NUL in text and values longer than a VARCHAR, where SQLite keeps them."""
    with database(request.param) as url:
        with app_client(settings_for(tmp_path_factory.mktemp(f"bad-input-{request.param}"), url)) as test_client:
            yield test_client


@pytest.fixture()
def image(client: TestClient) -> str:
    body = {"name": "kept", "disk_format": "raw", "container_format": "bare", "min_disk": 1, "tags": ["t"]}
    created = client.post("/v2/images", json=body)
    assert created.status_code == 201
    return str(created.json()["id"])


def _images(client: TestClient) -> list[str]:
    return [i["id"] for i in client.get("/v2/images?limit=1000").json()["images"]]


CREATE_BODIES = [
    '{"name": "\\ud800"}',
    '{"name": "a\\u0000b"}',
    '{"x\\u0000": "v"}',
    '{"prop": "v\\u0000"}',
    '{"tags": ["a\\u0000"]}',
    '{"tags": ["\\udfff"]}',
    '{"min_disk": 18446744073709551616}',
    '{"min_ram": 2147483648}',
    '{"min_ram": -1}',
    '{"prop": "' + "x" * 70000 + '"}',
    "[" * 100 + "]" * 100,
    "[" * 5000 + "]" * 5000,
    '{"a": ' + "[" * 40 + "]" * 40 + "}",
    '{"name": "x"',
    "\xff\xfe",
]


@pytest.mark.parametrize("body", CREATE_BODIES)
def test_bad_create_bodies_are_400_and_leave_no_image(client: TestClient, body: str) -> None:
    before = _images(client)
    got = client.post("/v2/images", content=body.encode("utf-8", "surrogatepass"), headers=JSON)
    assert got.status_code == 400, got.text
    assert set(got.json()) == {"message", "code", "title"}
    assert _images(client) == before


PATCHES: list[Any] = [
    [{"op": "replace", "path": "/min_disk", "value": None}],
    [{"op": "replace", "path": "/min_ram", "value": 2**70}],
    [{"op": "add", "path": "/foo", "value": None}],
    [{"op": "add", "path": "/foo", "value": "a\x00"}],
    [{"op": "add", "path": "/foo\x00", "value": "a"}],
    [{"op": "add", "path": "/tags/²", "value": "x"}],
    [{"op": "add", "path": "/tags/" + "9" * 5000, "value": "x"}],
    [{"op": "add", "path": "/tags/-", "value": None}],
    [{"op": "replace", "path": "/name", "value": "\ud800"}],
    [{"op": "add", "path": "/foo", "value": "x" * 70000}],
]


@pytest.mark.parametrize("changes", PATCHES)
def test_bad_patches_are_4xx_and_change_nothing(client: TestClient, image: str, changes: Any) -> None:
    before = client.get(f"/v2/images/{image}").json()
    body = json.dumps(changes).encode()
    got = client.patch(f"/v2/images/{image}", content=body, headers=PATCH)
    assert 400 <= got.status_code < 500, got.text
    after = client.get(f"/v2/images/{image}").json()
    assert after == before


QUERIES = [
    "min_disk=" + str(2**70),
    "size_min=²",
    "size_max=\u0663",
    "limit=\u0663",
    "limit=" + "9" * 5000,
    "created_at=9999-12-31T23:59:59-05:00",
    "updated_at=gt:10000-01-01T00:00:00",
    "created_at=lt:99999999999999",
    "&".join(f"p{i}=v" for i in range(60)),
    "tag=a%00",
    "name=%00",
]


@pytest.mark.parametrize("query", QUERIES)
def test_bad_list_queries_are_400(client: TestClient, query: str) -> None:
    got = client.get(f"/v2/images?{query}")
    assert got.status_code == 400, got.text


@pytest.mark.parametrize("limit", ["²", "\u0663", "99999999999999999999999", "-1", "x"])
def test_bad_task_limits_are_400(client: TestClient, limit: str) -> None:
    assert client.get(f"/v2/tasks?limit={limit}").status_code == 400


def test_task_pages_are_capped(client: TestClient) -> None:
    assert client.get("/v2/tasks?limit=1000000").status_code == 200


@pytest.mark.parametrize("url", ["http://[::1", "http://[::1/x", "http://h:99999/", "http://h\x00/"])
def test_malformed_urls_are_400(client: TestClient, image: str, url: str) -> None:
    started = client.post(f"/v2/images/{image}/import", json={"method": {"name": "web-download", "uri": url}})
    assert started.status_code == 400, started.text
    added = client.post(f"/v2/images/{image}/locations", json={"url": url, "validation_data": {}})
    assert added.status_code == 400, added.text
    assert client.get(f"/v2/images/{image}").json()["status"] == "queued"


def test_quotas_past_the_column_are_400(client: TestClient) -> None:
    for value in (2**70, 2**63, -1, True, "1"):
        assert client.put("/v2/quotas/p1", json={"image_count_total": value}).status_code == 400
    assert client.put("/v2/quotas/p1", json={"image_size_total": 2**62}).status_code == 400


def test_members_and_tags_with_nul_are_400(client: TestClient, image: str) -> None:
    assert client.post(f"/v2/images/{image}/members", json={"member": "p\x00"}).status_code == 400
    assert client.put(f"/v2/images/{image}/tags/a%00b").status_code == 400
    assert client.get(f"/v2/images/{image}").json()["tags"] == ["t"]


def test_an_oversized_json_body_is_413(client: TestClient, image: str) -> None:
    got = client.patch(f"/v2/images/{image}", content=b"[" + b" " * 200_000 + b"]", headers=PATCH)
    assert got.status_code == 413


def test_property_values_up_to_the_cap_are_kept(client: TestClient, image: str) -> None:
    changes = [{"op": "add", "path": "/long", "value": "v" * 65535}]
    got = client.patch(f"/v2/images/{image}", content=json.dumps(changes), headers=PATCH)
    assert got.status_code == 200
    assert len(client.get(f"/v2/images/{image}").json()["long"]) == 65535


def test_null_kernel_id_is_no_property(client: TestClient, image: str) -> None:
    changes = [{"op": "add", "path": "/kernel_id", "value": None}]
    got = client.patch(f"/v2/images/{image}", content=json.dumps(changes), headers=PATCH)
    assert got.status_code == 200
    assert "kernel_id" not in got.json()


@pytest.mark.parametrize(
    "header", [b"bytes=" + b"9" * 5000 + b"-", b"bytes=\xd9\xa3-", b"bytes=-" + b"1" * 30, b"bytes=\xb2-"]
)
def test_bad_ranges_are_400(client: TestClient, image: str, header: bytes) -> None:
    data = {"Content-Type": "application/octet-stream"}
    assert client.put(f"/v2/images/{image}/file", content=b"0123456789", headers=data).status_code == 204
    got = client.get(f"/v2/images/{image}/file", headers=[(b"range", header)])
    assert got.status_code == 400, got.text
    legacy = client.get(f"/v2/images/{image}/file", headers=[(b"content-range", b"bytes 0-" + b"9" * 5000 + b"/*")])
    assert legacy.status_code == 400


@pytest.mark.parametrize("size", [b"\xb2", b"\xd9\xa3", b"9" * 5000, b"-1"])
def test_bad_image_sizes_are_400_and_the_image_stays_queued(client: TestClient, image: str, size: bytes) -> None:
    headers = [(b"content-type", b"application/octet-stream"), (b"x-openstack-image-size", size)]
    assert client.put(f"/v2/images/{image}/file", content=b"x", headers=headers).status_code == 400
    assert client.get(f"/v2/images/{image}").json()["status"] == "queued"


def test_identifiers_longer_than_their_columns_are_400(client: TestClient, image: str) -> None:
    long = "p" * 256
    assert client.put(f"/v2/quotas/{long}", json={"image_count_total": 1}).status_code == 400
    assert client.post("/v2/images", json={"name": "n"}, headers={"X-Project-Id": long}).status_code == 400
    assert client.get("/v2/images", headers={"X-User-Id": long}).status_code == 400
    assert client.post(f"/v2/images/{image}/members", json={"member": long}).status_code == 400
