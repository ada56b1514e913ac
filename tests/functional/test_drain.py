"""Draining a node: HAProxy probes /healthcheck; the operator's disable file takes a node out of rotation and its
removal puts it back, while a real client (openstacksdk) downloads through the balancer without one failure."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.disk_bytes import raw_disk_bytes
from tests.functional.clients import Clients
from tests.functional.databases import fresh_database
from tests.functional.loadbalancer import HAProxy
from tests.functional.server import GlimpseServer

OCTETS = {"Content-Type": "application/octet-stream"}

DOWNLOADER = """
import hashlib, os, time
ok, failures = 0, []
deadline = time.monotonic() + 100
while not os.path.exists({stop!r}) and time.monotonic() < deadline:
    try:
        data = conn.image.download_image({image!r})
        data = data if isinstance(data, bytes) else data.content
        if hashlib.md5(data).hexdigest() == {md5!r}:
            ok += 1
        else:
            failures.append("wrong data: %d bytes" % len(data))
    except Exception as exc:
        failures.append(repr(exc))
print(json.dumps({{"ok": ok, "failures": failures}}))
"""


def served(node: GlimpseServer) -> float:
    """API requests the node answered (not the balancer's probes, not the scrapes). The client's requests
    alternate (image, then its data) as round-robin does: counting both kinds sees every one."""
    text = httpx.get(f"{node.url}/metrics", timeout=10).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "glimpse_http_requests_total" and s.labels["route"].startswith("/v2/images")
    )


def wait_for(condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[GlimpseServer], HAProxy, list[Path]]]:
    root = tmp_path_factory.mktemp("drain")
    flags = [root / f"disable-{i}" for i in range(2)]
    with fresh_database("postgresql") as url:
        shared = f"[glance_store]\nfilesystem_store_datadir = {root / 'images'}\n"
        conf = [f"{shared}[healthcheck]\ndisable_by_file_path = {flag}\n" for flag in flags]
        nodes = [GlimpseServer(root / f"node{i}", url, extra_conf=conf[i]) for i in range(2)]
        assert nodes[0].command("db", "sync").returncode == 0
        for node in nodes:
            node.start()
        lb = HAProxy(root, [n.url for n in nodes], check_path="/healthcheck").start()
        try:
            yield nodes, lb, flags
        finally:
            lb.stop()
            for node in nodes:
                node.stop()


def test_disable_file_drains_a_node_and_its_removal_restores_it(
    pair: tuple[list[GlimpseServer], HAProxy, list[Path]], tmp_path: Path
) -> None:
    nodes, lb, flags = pair
    data = raw_disk_bytes(2 * 1024 * 1024)
    image = httpx.post(f"{lb.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()["id"]
    assert httpx.put(f"{lb.url}/v2/images/{image}/file", content=data, headers=OCTETS, timeout=60).status_code == 204
    stop = tmp_path / "stop"
    script = DOWNLOADER.format(stop=str(stop), image=image, md5=hashlib.md5(data).hexdigest())
    outcome: dict[str, Any] = {}
    client = threading.Thread(target=lambda: outcome.update(Clients(lb.url, tmp_path / "home").sdk(script)))
    client.start()
    try:
        wait_for(lambda: served(nodes[0]) >= 2 and served(nodes[1]) >= 2, "both nodes serve")

        flags[0].write_text("maintenance")
        assert httpx.get(f"{nodes[0].url}/healthcheck").text == "DISABLED BY FILE"
        time.sleep(2.5)  # HAProxy: two failed checks 0.5 s apart, plus the downloads it had under way
        drained, other = served(nodes[0]), served(nodes[1])
        wait_for(lambda: served(nodes[1]) >= other + 4, "the other node takes the traffic")
        assert served(nodes[0]) == drained, "the disabled node still got new downloads"

        flags[0].unlink()
        wait_for(lambda: served(nodes[0]) >= drained + 2, "the node comes back into rotation")
    finally:
        stop.write_text("")
        client.join(120)
    assert outcome["failures"] == [] and outcome["ok"] >= 10, outcome
