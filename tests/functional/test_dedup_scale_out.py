"""Deduplicated storage on two `glimpse serve` nodes over one PostgreSQL and one S3 store (moto_server): twins
published at once on both nodes are stored once, a delete racing a twin's publish neither loses nor leaks data,
and `glimpse store gc --apply` run again and again on both nodes while uploads stream in takes nothing but the
unreferenced objects planted before."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.contract.fixtures import s3_server  # noqa: F401  (a real S3-compatible server)
from tests.contract.servers import S3Server
from tests.disk_bytes import raw_disk_bytes
from tests.functional.databases import fresh_database
from tests.functional.server import GlimpseServer
from tests.functional.test_scale_out import node_conf

OCTETS = {"Content-Type": "application/octet-stream"}
ADMIN = {"X-Project-Id": "admins", "X-Roles": "admin,member,reader"}


class Cluster:
    def __init__(self, nodes: list[GlimpseServer], s3: S3Server, bucket: str) -> None:
        self.nodes = nodes
        self.s3 = s3
        self.bucket = bucket

    def keys(self) -> set[str]:
        client = self.s3.client()
        found: set[str] = set()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            found.update(item["Key"] for item in page.get("Contents", []))
        return found


@pytest.fixture(scope="module")
def cluster(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:  # noqa: F811
    bucket = f"dedup-{uuid.uuid4().hex[:10]}"
    root = tmp_path_factory.mktemp("dedup-cluster")
    with fresh_database("postgresql") as url:
        shown = "\n[DEFAULT]\nshow_image_direct_url = true\ndeduplicate_image_data = true\n"
        conf = node_conf(s3_server, bucket, root / "staging") + shown
        nodes = [GlimpseServer(root / f"node{i}", url, extra_conf=conf) for i in range(2)]
        assert nodes[0].command("db", "sync").returncode == 0
        for node in nodes:
            node.start()
        try:
            yield Cluster(nodes, s3_server, bucket)
        finally:
            for node in nodes:
                node.stop()


def project(name: str) -> dict[str, str]:
    return {"X-Project-Id": name, "X-Roles": "member,reader"}


def create(node: GlimpseServer, who: dict[str, str]) -> str:
    body = {"disk_format": "raw", "container_format": "bare"}
    response = httpx.post(f"{node.url}/v2/images", json=body, headers=who, timeout=60)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def put(node: GlimpseServer, image_id: str, who: dict[str, str], data: bytes | Iterator[bytes]) -> httpx.Response:
    return httpx.put(f"{node.url}/v2/images/{image_id}/file", content=data, headers={**OCTETS, **who}, timeout=120)


def key_of(node: GlimpseServer, image_id: str) -> str:
    url = httpx.get(f"{node.url}/v2/images/{image_id}", headers=ADMIN, timeout=60).json()["direct_url"]
    return str(url).rsplit("/", 1)[1]


def downloads(node: GlimpseServer, image_id: str, who: dict[str, str], data: bytes) -> bool:
    got = httpx.get(f"{node.url}/v2/images/{image_id}/file", headers=who, timeout=120)
    return got.status_code == 200 and hashlib.sha512(got.content).digest() == hashlib.sha512(data).digest()


def together(*steps: Callable[[], Any]) -> list[BaseException]:
    start = threading.Barrier(len(steps))
    errors: list[BaseException] = []

    def run(step: Callable[[], Any]) -> None:
        start.wait()
        try:
            step()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(step,)) for step in steps]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return errors


def test_twins_published_at_once_on_two_nodes_are_stored_once(cluster: Cluster) -> None:
    for _ in range(4):
        data = raw_disk_bytes(1024 * 1024 + 17)
        owners = [project(f"twin-{uuid.uuid4().hex[:6]}") for _ in range(4)]
        nodes = [cluster.nodes[i % 2] for i in range(4)]
        images = [create(node, who) for node, who in zip(nodes, owners, strict=True)]
        answers: list[int] = []

        uploads = [
            lambda node=node, image_id=image_id, who=who, data=data, answers=answers: answers.append(
                put(node, image_id, who, data).status_code
            )
            for node, image_id, who in zip(nodes, images, owners, strict=True)
        ]
        assert together(*uploads) == []
        assert answers == [204] * 4
        keys = {key_of(cluster.nodes[0], image_id) for image_id in images}
        assert len(keys) == 1 and keys <= set(images)  # one object, named after one of the images
        assert cluster.keys() & set(images) == keys  # the other copies were removed
        assert all(downloads(nodes[i], images[i], owners[i], data) for i in range(4))


def test_a_delete_racing_a_twin_publish_keeps_the_data_once(cluster: Cluster) -> None:
    for _ in range(5):
        data = raw_disk_bytes(300_000)
        first_owner, second_owner = project(f"a-{uuid.uuid4().hex[:6]}"), project(f"b-{uuid.uuid4().hex[:6]}")
        first = create(cluster.nodes[0], first_owner)
        assert put(cluster.nodes[0], first, first_owner, data).status_code == 204
        second = create(cluster.nodes[1], second_owner)
        results: dict[str, int] = {}

        def delete(
            first: str = first, results: dict[str, int] = results, first_owner: dict[str, str] = first_owner
        ) -> None:
            url = f"{cluster.nodes[0].url}/v2/images/{first}"
            results["delete"] = httpx.delete(url, headers=first_owner, timeout=60).status_code

        def publish(
            second: str = second,
            results: dict[str, int] = results,
            data: bytes = data,
            who: dict[str, str] = second_owner,
        ) -> None:
            results["publish"] = put(cluster.nodes[1], second, who, data).status_code

        assert together(delete, publish) == []
        assert results == {"delete": 204, "publish": 204}
        assert downloads(cluster.nodes[0], second, second_owner, data)
        key = key_of(cluster.nodes[1], second)
        assert cluster.keys() & {first, second} == {key}  # exactly one copy left: none lost, none leaked


def test_gc_racing_uploads_on_two_nodes(cluster: Cluster, tmp_path: Path) -> None:
    client = cluster.s3.client()
    orphans = [str(uuid.uuid4()) for _ in range(3)]
    for key in orphans:
        client.put_object(Bucket=cluster.bucket, Key=key, Body=b"nobody's data")
    shared = raw_disk_bytes(256 * 1024)
    uploaded: list[tuple[GlimpseServer, str, dict[str, str], bytes]] = []
    failures: list[str] = []
    lock = threading.Lock()
    done = threading.Event()

    def slowly(data: bytes) -> Iterator[bytes]:
        step = 32 * 1024
        for offset in range(0, len(data), step):
            yield data[offset : offset + step]
            time.sleep(0.05)  # long enough for gc runs to meet uploads in flight

    def uploader(node: GlimpseServer, n: int) -> None:
        who = project(f"up-{uuid.uuid4().hex[:6]}")
        for i in range(n):
            data = shared if i % 2 else raw_disk_bytes(256 * 1024)  # twins and unique data
            image_id = create(node, who)
            response = put(node, image_id, who, slowly(data))
            with lock:
                if response.status_code == 204:
                    uploaded.append((node, image_id, who, data))
                else:
                    failures.append(f"{image_id}: {response.status_code} {response.text}")

    def collector() -> None:
        runs = 0
        while not done.is_set() or runs < 2:
            node = cluster.nodes[runs % 2]
            run = node.command("store", "gc", "--apply")
            with lock:
                if run.returncode != 0:
                    failures.append(f"gc: {run.stderr}")
            runs += 1

    collecting = threading.Thread(target=collector)
    collecting.start()
    errors = together(*[lambda node=node: uploader(node, 6) for node in cluster.nodes for _ in range(2)])
    done.set()
    collecting.join(600)
    assert errors == [] and failures == []
    assert len(uploaded) == 24
    for node, image_id, who, data in uploaded:
        assert downloads(node, image_id, who, data), f"image {image_id} lost its data"
    keys = cluster.keys()
    assert not keys & set(orphans)
    referenced = {key_of(cluster.nodes[0], image_id) for _, image_id, _, _ in uploaded}
    assert referenced <= keys
    ours = {image_id for _, image_id, _, _ in uploaded}
    assert keys & ours == referenced  # copies made redundant were removed, nothing else of ours is left
