"""The image cache in-process on SQLite and the file store: Glance's answers when the cache is off, the cache API
without the cache pipeline (downloads then bypass the cache, as in Glance), and two nodes over one database where
the node that did not deactivate an image still never serves its copy."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from starlette.testclient import TestClient

from tests.disk_bytes import raw_disk_bytes
from tests.integration.inprocess import app_client, settings_for

MEMBER = {"X-Roles": "member,reader", "X-Project-Id": "p1", "X-User-Id": "u1"}
OCTETS = {"Content-Type": "application/octet-stream"}


def _upload(client: TestClient, data: bytes) -> str:
    created = client.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"})
    image_id = str(created.json()["id"])
    assert client.put(f"/v2/images/{image_id}/file", content=data, headers=OCTETS).status_code == 204
    return image_id


def _wait(check: Callable[[], bool], budget: float = 20) -> None:
    deadline = time.monotonic() + budget
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _cached(client: TestClient) -> set[str]:
    return {e["image_id"] for e in client.get("/v2/cache").json()["cached_images"]}


def test_without_image_cache_dir_the_api_answers_as_glance(tmp_path: Path) -> None:
    with app_client(settings_for(tmp_path, None)) as client:
        refused = client.get("/v2/cache", headers=MEMBER)
        assert refused.status_code == 403
        off = client.get("/v2/cache")
        assert off.status_code == 404 and "Caching via API is not supported at this site." in off.text
        assert client.post("/v2/cache/prune").status_code == 404
        image_id = _upload(client, b"x" * 100)
        assert client.put(f"/v2/cache/{image_id}").status_code == 404
        assert client.delete(f"/v2/cache/{image_id}").status_code == 404
        versions = {v["id"] for v in client.get("/versions").json()["versions"]}
        assert "v2.18" not in versions and "v2.14" not in versions


def test_the_api_and_prefetcher_without_the_cache_pipeline(tmp_path: Path) -> None:
    conf = f"[DEFAULT]\nimage_cache_dir = {tmp_path / 'cache'}\n"
    with app_client(settings_for(tmp_path, None, conf)) as client:
        data = raw_disk_bytes(50_000)
        image_id = _upload(client, data)
        assert client.put(f"/v2/cache/{image_id}").status_code == 202
        _wait(lambda: image_id in _cached(client))
        assert client.get(f"/v2/images/{image_id}/file").content == data
        [entry] = client.get("/v2/cache").json()["cached_images"]
        assert entry["hits"] == 0  # no cache pipeline in the flavor: downloads do not use the cache (Glance)
        unrecorded = client.get(f"/v2/cache/nodes/{image_id}")  # centralized_db, no worker_self_reference_url
        assert unrecorded.status_code == 200 and unrecorded.json() == []
        cleared = client.delete("/v2/cache", headers={"x-image-cache-clear-target": "cache"})
        assert cleared.status_code == 204 and _cached(client) == set()


def test_a_node_never_serves_its_copy_of_an_image_deactivated_elsewhere(tmp_path: Path) -> None:
    def node(name: str) -> str:
        return f"[DEFAULT]\nimage_cache_dir = {tmp_path / name}\ncache_prefetcher_interval = 3600\n" + (
            f"[glance_store]\nfilesystem_store_datadir = {tmp_path / 'images'}\n[paste_deploy]\nflavor = caching\n"
        )

    for name in ("one", "two"):
        (tmp_path / name).mkdir()
    one = settings_for(tmp_path / "one", f"sqlite:///{tmp_path / 'shared.db'}", node("cache-one"))
    two = settings_for(tmp_path / "two", f"sqlite:///{tmp_path / 'shared.db'}", node("cache-two"))
    data = raw_disk_bytes(80_000)
    with app_client(one) as first, app_client(two) as second:
        image_id = _upload(first, data)
        queued = _upload(first, data)
        assert first.get(f"/v2/images/{image_id}/file").content == data
        _wait(lambda: image_id in _cached(first))
        assert first.put(f"/v2/cache/{queued}").status_code == 202
        for path in (tmp_path / "images").iterdir():
            path.unlink()  # the store has lost the data: only the cache can serve it now
        assert first.get(f"/v2/images/{image_id}/file").content == data
        assert second.post(f"/v2/images/{image_id}/actions/deactivate").status_code == 204
        refused = first.get(f"/v2/images/{image_id}/file")  # the admin's download goes to the store, not the cache
        assert refused.status_code != 200 or refused.content != data
        assert first.get(f"/v2/images/{image_id}/file", headers=MEMBER).status_code in (403, 404)
        assert second.post(f"/v2/images/{image_id}/actions/reactivate").status_code == 204
        assert first.get(f"/v2/images/{image_id}/file").content == data  # active again: the copy serves
        assert first.post(f"/v2/images/{image_id}/actions/deactivate").status_code == 204
        assert image_id not in _cached(first)  # the node that deactivated drops its copy at once
        assert first.delete(f"/v2/images/{queued}").status_code == 204
        assert first.get("/v2/cache").json() == {"cached_images": [], "queued_images": []}


def test_the_nodes_call_lists_the_nodes_caching_an_image(tmp_path: Path) -> None:
    def node(name: str, driver: str) -> str:
        return (
            f"[DEFAULT]\nimage_cache_dir = {tmp_path / name}\nimage_cache_driver = {driver}\n"
            f"worker_self_reference_url = http://{name}.example:9292\ncache_prefetcher_interval = 3600\n"
            f"[glance_store]\nfilesystem_store_datadir = {tmp_path / 'images'}\n[paste_deploy]\nflavor = caching\n"
        )

    shared = f"sqlite:///{tmp_path / 'shared.db'}"
    for name in ("one", "two", "three"):
        (tmp_path / name).mkdir()
    one = settings_for(tmp_path / "one", shared, node("one", "centralized_db"))
    two = settings_for(tmp_path / "two", shared, node("two", "centralized_db"))
    three = settings_for(tmp_path / "three", shared, node("three", "sqlite"))
    data = raw_disk_bytes(60_000)
    with app_client(one) as first, app_client(two) as second, app_client(three) as third:
        image_id = _upload(first, data)
        assert first.get(f"/v2/cache/nodes/{image_id}").json() == []
        for client in (first, second, third):
            assert client.get(f"/v2/images/{image_id}/file").content == data
            _wait(lambda c=client: image_id in _cached(c))
        listed = second.get(f"/v2/cache/nodes/{image_id}")
        assert listed.status_code == 200
        assert listed.json() == ["http://one.example:9292", "http://two.example:9292"]  # three keeps no records
        conflict = third.get(f"/v2/cache/nodes/{image_id}")
        assert conflict.status_code == 409 and "Centralized caching is not enabled" in conflict.text
        assert first.get(f"/v2/cache/nodes/{image_id}", headers=MEMBER).status_code == 403
        assert first.get("/v2/cache/nodes/00000000-0000-0000-0000-000000000000").status_code == 404
        assert first.get("/v2/cache/nodes/not-a-uuid-but-long-" + "x" * 300).status_code == 404
        assert first.delete(f"/v2/cache/{image_id}").status_code == 204
        assert second.get(f"/v2/cache/nodes/{image_id}").json() == ["http://two.example:9292"]
        assert second.delete("/v2/cache").status_code == 204
        assert first.get(f"/v2/cache/nodes/{image_id}").json() == []
