"""The image cache on two `glimpse serve` nodes (one of them with two worker processes) over one PostgreSQL and one
S3 store (moto_server), each node with its own cache folder and Glance's cache pipeline (flavor = caching), and its
own worker_self_reference_url naming it in the database's records of cached copies (centralized_db).

The tests run in order; the last one stops the S3 server and downloads what the nodes cached.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.contract.servers import S3Server
from tests.disk_bytes import raw_disk_bytes
from tests.functional.clients import Clients
from tests.functional.databases import fresh_database
from tests.functional.server import GlimpseServer
from tests.functional.test_scale_out import node_conf as scale_out_conf

OCTETS = {"Content-Type": "application/octet-stream"}
MEMBER = {"X-Roles": "member,reader", "X-Project-Id": "project-a", "X-User-Id": "user-a"}


def node_conf(s3: S3Server, bucket: str, workdir: Path, workers: int) -> str:
    """test_scale_out's S3 node, with its own image cache and Glance's cache pipeline."""
    cache = f"workers = {workers}\nimage_cache_dir = {workdir / 'cache'}\nimage_cache_driver = centralized_db\n"
    cache += "image_cache_max_size = 20000000\ncache_prefetcher_interval = 2\n"
    return cache + scale_out_conf(s3, bucket, workdir / "staging") + "[paste_deploy]\nflavor = caching\n"


class Cluster:
    def __init__(self, s3: S3Server, nodes: list[GlimpseServer], root: Path) -> None:
        self.s3 = s3
        self.a, self.b = nodes
        self.root = root

    def cache_dir(self, node: GlimpseServer) -> Path:
        return node.workdir / "cache"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cache-cluster")
    s3 = S3Server(root).start()  # the module's own: the last test stops it
    bucket = f"cache-{uuid.uuid4().hex[:10]}"
    try:
        with fresh_database("postgresql") as url:
            nodes = [
                GlimpseServer(root / f"node{i}", url, extra_conf=node_conf(s3, bucket, root / f"node{i}", workers))
                for i, workers in ((0, 2), (1, 1))
            ]
            for node in nodes:  # its own URL, known once the node has its port
                own = f"[DEFAULT]\nworker_self_reference_url = {node.url}\n"
                node.conf.write_text(node.conf.read_text().replace("[DEFAULT]\n", own, 1))
            assert nodes[0].command("db", "sync").returncode == 0
            for node in nodes:
                node.start()
            try:
                yield Cluster(s3, nodes, root)
            finally:
                for node in nodes:
                    node.stop()
    finally:
        s3.stop()


def upload(node: GlimpseServer, data: bytes) -> str:
    created = httpx.post(f"{node.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}, timeout=30)
    assert created.status_code == 201, created.text
    image_id = str(created.json()["id"])
    stored = httpx.put(f"{node.url}/v2/images/{image_id}/file", content=data, headers=OCTETS, timeout=60)
    assert stored.status_code == 204, stored.text
    return image_id


def download(node: GlimpseServer, image_id: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.get(f"{node.url}/v2/images/{image_id}/file", headers=headers or {}, timeout=60)


def cached_ids(node: GlimpseServer) -> set[str]:
    listed = httpx.get(f"{node.url}/v2/cache", timeout=30)
    assert listed.status_code == 200, listed.text
    return {entry["image_id"] for entry in listed.json()["cached_images"]}


def wait_for(check: Callable[[], bool], what: str, budget: float = 30) -> None:
    deadline = time.monotonic() + budget
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {budget} s: {what}")
        time.sleep(0.2)


def counters(cluster: Cluster, node: GlimpseServer) -> dict[str, int]:
    db = cluster.cache_dir(node) / "cache.db"
    with sqlite3.connect(db) as conn:
        return {name: value for name, value in conn.execute("SELECT name, value FROM counters")}


def test_the_versions_document_offers_the_cache_api(cluster: Cluster) -> None:
    listed = [(v["id"], v["status"]) for v in httpx.get(f"{cluster.a.url}/versions", timeout=10).json()["versions"]]
    assert listed[:5] == [
        ("v2.18", "CURRENT"),
        ("v2.17", "SUPPORTED"),
        ("v2.16", "SUPPORTED"),
        ("v2.15", "SUPPORTED"),
        ("v2.14", "SUPPORTED"),
    ]
    assert ("v2.13", "SUPPORTED") in listed  # multi-store keeps its versions


def test_downloads_fill_each_nodes_own_cache_and_count(cluster: Cluster) -> None:
    data = raw_disk_bytes(3 * 1024 * 1024 + 5)
    image_id = upload(cluster.a, data)
    before = counters(cluster, cluster.a)
    first = download(cluster.a, image_id)
    assert first.status_code == 200 and first.content == data
    assert first.headers["content-md5"] == hashlib.md5(data).hexdigest()
    wait_for(lambda: image_id in cached_ids(cluster.a), "node A caches the image it served")
    assert image_id not in cached_ids(cluster.b)  # each node has its own cache
    again = download(cluster.a, image_id)
    assert again.status_code == 200 and again.content == data
    part = download(cluster.a, image_id, {"Range": "bytes=1000-2999"})
    assert part.status_code == 206 and part.content == data[1000:3000]
    assert part.headers["content-range"] == f"bytes 1000-2999/{len(data)}"
    after = counters(cluster, cluster.a)
    assert after["misses"] == before["misses"] + 1 and after["hits"] == before["hits"] + 2
    [entry] = [e for e in httpx.get(f"{cluster.a.url}/v2/cache", timeout=10).json()["cached_images"]
               if e["image_id"] == image_id]  # fmt: skip
    assert entry["size"] == len(data) and entry["hits"] == 2
    listing = cluster.a.command("cache", "list")
    assert listing.returncode == 0, listing.stderr
    assert image_id in listing.stdout and f"Downloads served from the cache: {after['hits']}" in listing.stdout


def test_workers_racing_to_fill_one_image_keep_it_whole(cluster: Cluster) -> None:
    data = raw_disk_bytes(2 * 1024 * 1024)
    image_id = upload(cluster.a, data)
    bodies: list[bytes] = []

    def fetch() -> None:
        bodies.append(download(cluster.a, image_id).content)

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(bodies) == 8 and all(body == data for body in bodies)
    wait_for(lambda: image_id in cached_ids(cluster.a), "one of the racing downloads publishes its copy")
    assert (cluster.cache_dir(cluster.a) / image_id).read_bytes() == data
    assert download(cluster.a, image_id).content == data


def test_a_damaged_or_partial_copy_is_never_served(cluster: Cluster) -> None:
    data = raw_disk_bytes(1024 * 1024)
    image_id = upload(cluster.b, data)
    assert download(cluster.b, image_id).content == data
    wait_for(lambda: image_id in cached_ids(cluster.b), "node B caches the image")
    copy = cluster.cache_dir(cluster.b) / image_id
    with open(copy, "r+b") as f:  # one byte flipped, same size
        f.seek(4096)
        f.write(bytes([data[4096] ^ 0x01]))
    served = download(cluster.b, image_id)
    assert served.status_code == 200 and served.content == data  # from the store, not the damaged copy
    # Set aside to invalid/, which the node's periodic clean empties: the node's log says it happened.
    wait_for(
        lambda: f"Image {image_id}: the cached copy is not the one verified; set aside" in cluster.b.log.read_text(),
        "the damaged copy is set aside",
    )
    wait_for(lambda: image_id in cached_ids(cluster.b), "the download from the store cached a good copy again")
    assert copy.read_bytes() == data
    # A partial copy (a download cut short, a writer killed) sits in incomplete/ and is never served.
    other = raw_disk_bytes(100_000)
    partial_id = upload(cluster.b, other)
    (cluster.cache_dir(cluster.b) / "incomplete" / partial_id).write_bytes(other[:50_000])
    (cluster.cache_dir(cluster.b) / partial_id).write_bytes(other[:50_000])  # and a file no record vouches for
    assert download(cluster.b, partial_id).content == other


def test_the_real_glance_client_drives_the_cache_api(cluster: Cluster, tmp_path: Path) -> None:
    glance = Clients(cluster.b.url, tmp_path / "home")
    data = raw_disk_bytes(500_000)
    image_id = upload(cluster.a, data)
    glance.run("glance", "cache-queue", image_id)
    wait_for(lambda: image_id in cached_ids(cluster.b), "the prefetcher caches the queued image at once")
    listed = glance.run("glance", "cache-list").stdout
    assert image_id in listed and "cached" in listed
    assert image_id not in cached_ids(cluster.a)
    glance.run("glance", "cache-delete", image_id)
    assert image_id not in cached_ids(cluster.b)
    refused = glance.run("glance", "cache-queue", str(uuid.uuid4()), check=False)
    assert "404" in refused.stderr or "not found" in refused.stderr.lower()
    glance.run("glance", "cache-queue", image_id)
    wait_for(lambda: image_id in cached_ids(cluster.b), "queued again, cached again")
    glance.run("glance", "cache-clear", "--target", "queue")
    assert image_id in cached_ids(cluster.b)
    glance.run("glance", "cache-clean")
    pruned = glance.run("glance", "cache-prune").stdout
    assert "Pruned 0 file(s), 0 byte(s)." in pruned  # within image_cache_max_size
    nodes = glance.run("glance", "cache-nodes-list", image_id).stdout
    assert cluster.b.url in nodes and cluster.a.url not in nodes
    glance.run("glance", "cache-clear")
    state = httpx.get(f"{cluster.b.url}/v2/cache", timeout=10).json()
    assert state == {"cached_images": [], "queued_images": []}


def test_openstacksdk_cache_calls(cluster: Cluster, tmp_path: Path) -> None:
    data = raw_disk_bytes(200_000)
    image_id = upload(cluster.a, data)
    sdk = Clients(cluster.a.url, tmp_path / "home")
    sdk.sdk(f"conn.image.queue_image({image_id!r})")
    wait_for(lambda: image_id in cached_ids(cluster.a), "queued through openstacksdk, cached")
    result = sdk.sdk(
        f"""
cache = conn.image.get_image_cache()
listed = [c['image_id'] for c in cache.cached_images]
pruned = conn.image.prune_cache()
conn.image.clean_cache()
conn.image.cache_delete_image({image_id!r})
after = [c['image_id'] for c in conn.image.get_image_cache().cached_images]
conn.image.clear_cache('both')
print(json.dumps({{'listed': listed, 'after': after, 'pruned': pruned}}))
"""
    )
    assert image_id in result["listed"] and image_id not in result["after"]
    assert result["pruned"] == {"total_files_pruned": 0, "total_bytes_pruned": 0}


def test_cache_api_statuses_and_policies(cluster: Cluster) -> None:
    url = cluster.a.url
    assert httpx.get(f"{url}/v2/cache", headers=MEMBER, timeout=10).status_code == 403
    assert httpx.request("DELETE", f"{url}/v2/cache", headers=MEMBER, timeout=10).status_code == 403
    assert httpx.post(f"{url}/v2/cache/prune", headers=MEMBER, timeout=10).status_code == 403
    missing = httpx.put(f"{url}/v2/cache/non-existing-image-id", timeout=10)
    assert missing.status_code == 404
    assert httpx.delete(f"{url}/v2/cache/{uuid.uuid4()}", timeout=10).status_code == 404
    queued = httpx.post(f"{url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}, timeout=10)
    not_active = httpx.put(f"{url}/v2/cache/{queued.json()['id']}", timeout=10)
    assert not_active.status_code == 400 and "status active" in not_active.text
    bad = httpx.request("DELETE", f"{url}/v2/cache", headers={"x-image-cache-clear-target": "invalid"}, timeout=10)
    assert bad.status_code == 400 and "x-image-cache-clear-target" in bad.text
    assert httpx.post(f"{url}/v2/cache", timeout=10).status_code == 405
    image_id = upload(cluster.a, raw_disk_bytes(1000))
    # A member who sees the image is refused by policy (403), one who does not sees nothing (404).
    public = httpx.patch(
        f"{url}/v2/images/{image_id}",
        json=[{"op": "replace", "path": "/visibility", "value": "public"}],
        headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
        timeout=10,
    )
    assert public.status_code == 200, public.text
    assert httpx.put(f"{url}/v2/cache/{image_id}", headers=MEMBER, timeout=10).status_code == 403
    assert httpx.put(f"{url}/v2/cache/{image_id}", timeout=10).status_code == 202


def test_deactivated_and_deleted_images_leave_every_cache(cluster: Cluster) -> None:
    data = raw_disk_bytes(400_000)
    kept, deactivated, deleted = (upload(cluster.a, data) for _ in range(3))
    for node in (cluster.a, cluster.b):
        for image_id in (kept, deactivated, deleted):
            assert download(node, image_id).content == data
    for node in (cluster.a, cluster.b):
        wait_for(lambda n=node: {kept, deactivated, deleted} <= cached_ids(n), "both nodes cache all three")
    assert httpx.post(f"{cluster.a.url}/v2/images/{deactivated}/actions/deactivate", timeout=10).status_code == 204
    assert httpx.delete(f"{cluster.a.url}/v2/images/{deleted}", timeout=10).status_code == 204
    assert {deactivated, deleted}.isdisjoint(cached_ids(cluster.a))  # at once on the node that did it
    # Node B is told by nobody: it never serves them, and its sweep (every 2 s here) drops its copies.
    assert download(cluster.b, deleted).status_code == 404
    assert download(cluster.b, deactivated, MEMBER).status_code in (403, 404)
    wait_for(lambda: {deactivated, deleted}.isdisjoint(cached_ids(cluster.b)), "node B's sweep drops them")
    assert kept in cached_ids(cluster.b)
    assert nodes_caching(cluster.b, deactivated) == [] and nodes_caching(cluster.b, kept) == sorted(
        [cluster.a.url, cluster.b.url]
    )


def nodes_caching(node: GlimpseServer, image_id: str) -> list[str]:
    listed = httpx.get(f"{node.url}/v2/cache/nodes/{image_id}", timeout=10)
    assert listed.status_code == 200, listed.text
    return list(listed.json())


def test_the_database_records_which_nodes_cache_an_image(cluster: Cluster, tmp_path: Path) -> None:
    a, b = cluster.a, cluster.b
    data = raw_disk_bytes(300_000)
    image_id = upload(a, data)
    assert nodes_caching(b, image_id) == []
    for node in (a, b):
        assert download(node, image_id).content == data
        wait_for(lambda n=node: image_id in cached_ids(n), "each node caches the image")
    assert nodes_caching(b, image_id) == sorted([a.url, b.url])
    shown = Clients(a.url, tmp_path / "home").run("glance", "cache-nodes-list", image_id).stdout
    assert "Node Reference URL" in shown and a.url in shown and b.url in shown
    # Glance's statuses: policy first, then the image must exist for the caller.
    assert httpx.get(f"{a.url}/v2/cache/nodes/{image_id}", headers=MEMBER, timeout=10).status_code == 403
    assert httpx.get(f"{a.url}/v2/cache/nodes/{uuid.uuid4()}", timeout=10).status_code == 404
    # Node B dies (-9) holding its copy, which is then lost from its disk: its record stays until it is back,
    # and its first sweep after the restart removes it.
    b.kill()
    assert nodes_caching(a, image_id) == sorted([a.url, b.url])
    (cluster.cache_dir(b) / image_id).unlink()
    b.start()
    wait_for(lambda: nodes_caching(a, image_id) == [a.url], "node B's sweep drops the record of the lost copy")
    assert httpx.delete(f"{a.url}/v2/cache/{image_id}", timeout=10).status_code == 204
    assert nodes_caching(b, image_id) == []


def test_cached_images_are_served_with_the_store_stopped(cluster: Cluster) -> None:
    data = raw_disk_bytes(2 * 1024 * 1024 + 1)
    image_id = upload(cluster.a, data)
    uncached = upload(cluster.a, raw_disk_bytes(1000))
    for node in (cluster.a, cluster.b):
        assert download(node, image_id).content == data
        wait_for(lambda n=node: image_id in cached_ids(n), "each node caches the image")
    cluster.s3.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(cluster.s3.url, timeout=2)
    for node in (cluster.a, cluster.b):
        for _ in range(3):
            whole = download(node, image_id)
            assert whole.status_code == 200 and whole.content == data
        part = download(node, image_id, {"Range": "bytes=-100"})
        assert part.status_code == 206 and part.content == data[-100:]
        middle = download(node, image_id, {"Range": "bytes=1048576-1048675"})
        assert middle.status_code == 206 and middle.content == data[1048576:1048676]
    # The store is really away: an image no node cached cannot be downloaded.
    try:
        broken = download(cluster.a, uncached)
    except httpx.HTTPError:
        return  # the response broke off mid-way
    assert broken.status_code in (404, 503), broken.status_code
