"""Metrics of a real server with two uvicorn workers: a real client's uploads and downloads, counted whichever
worker served them and whichever worker answers the scrape; a worker killed mid-upload leaves no phantom upload
in progress and takes no counts away. Then `glimpse status` on the same node."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.disk_bytes import raw_disk_bytes
from tests.functional.clients import Clients
from tests.functional.dashboard_session import DashboardSession
from tests.functional.http_server import FileServer
from tests.functional.server import GLIMPSE, GlimpseServer
from tests.functional.waiting import until

OCTETS = {"Content-Type": "application/octet-stream"}
UPLOADS = [raw_disk_bytes(300_000 + 7 * i) for i in range(4)]  # N uploads of different sizes
DOWNLOADS = 6  # M downloads, spread over the images

CLIENT = """
import io
ids = []
for i, size in enumerate({sizes!r}):
    data = bytes([65 + i]) * size
    image = conn.image.create_image(name="m%d" % i, data=io.BytesIO(data), disk_format="raw",
                                    container_format="bare", allow_duplicates=True)
    ids.append(image.id)
got = 0
for n in range({downloads}):
    data = conn.image.download_image(ids[n % len(ids)])
    got += len(data if isinstance(data, bytes) else data.content)
print(json.dumps({{"ids": ids, "downloaded": got}}))
"""


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    text = response.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def get(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def workers(server: GlimpseServer) -> list[int]:
    """The uvicorn workers: children of the serving process (read from /proc)."""
    assert server.proc is not None
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == server.proc.pid and b"resource_tracker" not in command:
            children.append(int(stat.parent.name))
    return children


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlimpseServer]:
    server = GlimpseServer(tmp_path_factory.mktemp("metrics"), extra_conf="workers = 2").start()
    yield server
    server.stop()


def test_counts_and_bytes_match_what_a_client_sent(node: GlimpseServer, tmp_path: Path) -> None:
    sizes = [len(d) for d in UPLOADS]
    script = CLIENT.format(sizes=sizes, downloads=DOWNLOADS)
    result = Clients(node.url, tmp_path / "home").sdk(script)
    expected_down = sum(sizes[n % len(sizes)] for n in range(DOWNLOADS))
    assert result["downloaded"] == expected_down
    # More downloads on new connections each, so both workers serve some (each connection goes to one worker).
    extra = 0
    for n in range(8):
        image = result["ids"][n % len(sizes)]
        extra += len(httpx.get(f"{node.url}/v2/images/{image}/file", headers={"Connection": "close"}).content)
    scrapes = [scrape(node.url) for _ in range(6)]  # answered by either worker
    for found in scrapes:
        assert get(found, "glimpse_image_upload_bytes_total", operation="upload") == sum(sizes)
        assert get(found, "glimpse_image_download_bytes_total") == expected_down + extra
        assert get(found, "glimpse_http_requests_total", method="PUT", route="/v2/images/{image_id}/file",
                   status="204") == len(sizes)  # fmt: skip
        assert get(found, "glimpse_http_requests_total", method="GET", route="/v2/images/{image_id}/file",
                   status="200") == DOWNLOADS + 8  # fmt: skip
        assert get(found, "glimpse_store_operation_duration_seconds_count", store="file", operation="add") == 4
    folder = next(Path("/tmp").glob(f"glimpse-metrics-{node.proc.pid if node.proc else 0}-*"))
    pids = {f.stem.rsplit("_", 1)[1] for f in folder.glob("counter_*.db")}
    assert len(pids) == 2, f"both workers counted requests: {pids}"


def test_a_worker_killed_mid_upload_leaves_no_upload_in_progress(node: GlimpseServer) -> None:
    image = httpx.post(f"{node.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()["id"]
    release = threading.Event()

    def slow_body() -> Iterator[bytes]:
        yield b"x" * 65536
        release.wait(30)
        yield b"y"

    def upload() -> None:
        try:
            httpx.put(f"{node.url}/v2/images/{image}/file", content=slow_body(), headers=OCTETS, timeout=60)
        except httpx.HTTPError:
            pass  # its worker is killed

    before = scrape(node.url)
    thread = threading.Thread(target=upload)
    thread.start()
    deadline = time.monotonic() + 20
    while get(scrape(node.url), "glimpse_uploads_in_progress", operation="upload") != 1:
        assert time.monotonic() < deadline, "the upload never showed as in progress"
        time.sleep(0.2)
    for pid in workers(node):  # both: whichever holds the upload
        os.kill(pid, signal.SIGKILL)
    release.set()
    thread.join(60)
    deadline = time.monotonic() + 30
    while True:
        try:
            after = scrape(node.url)
            break
        except httpx.HTTPError:  # uvicorn is starting new workers
            assert time.monotonic() < deadline
            time.sleep(0.3)
    assert get(after, "glimpse_uploads_in_progress", operation="upload") == 0
    for key, value in before.items():
        if key[0].endswith("_total") and key[0].startswith("glimpse_http_requests"):
            assert after.get(key, 0.0) >= value, f"{key} went back from {value}"


def test_glimpse_status_shows_the_node(node: GlimpseServer) -> None:
    status = subprocess.run(
        [GLIMPSE, "status", "--config-file", str(node.conf), "--json"], capture_output=True, text=True, timeout=60
    )
    assert status.returncode == 0, status.stderr
    figures = json.loads(status.stdout)
    assert figures["workers"] == 2 and figures["version"]
    assert figures["uploads_in_progress"] == 0 and figures["tasks"]["pending"] == 0
    assert {c["component"] for c in figures["checks"]} == {"database", "store file", "store http"}
    table = subprocess.run([GLIMPSE, "status", "--url", node.url], capture_output=True, text=True, timeout=60)
    assert table.returncode == 0 and "store file" in table.stdout and "imports in progress" in table.stdout
    away = subprocess.run([GLIMPSE, "status", "--url", "http://127.0.0.1:9"], capture_output=True, text=True)
    assert away.returncode == 2 and "does not answer" in away.stderr
    member = httpx.get(f"{node.url}/healthcheck?detailed=true", headers={"X-Roles": "member", "X-Project-Id": "p"})
    assert member.status_code == 403


def test_bytes_fetched_by_the_node_and_uploaded_through_the_dashboard(tmp_path: Path) -> None:
    root = tmp_path / "web"
    root.mkdir()
    web = raw_disk_bytes(1_000_003)
    (root / "web.raw").write_bytes(web)
    with FileServer(root) as files, ExitStack() as stack:
        remote = GlimpseServer(tmp_path / "region-two").start()  # another region, for glance-download
        stack.callback(remote.stop)
        source = httpx.post(f"{remote.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"})
        source_id = source.json()["id"]
        assert httpx.put(f"{remote.url}/v2/images/{source_id}/file", content=web, headers=OCTETS).status_code == 204
        server = GlimpseServer(tmp_path / "node", extra_conf="workers = 2")
        server.conf.write_text(
            server.conf.read_text().replace("workers = 2", "workers = 2\nenabled_backends = fast:file, slow:file\n"
            "enabled_import_methods = glance-direct,web-download,glance-download,copy-image")
            + f"[glance_store]\ndefault_backend = fast\n[fast]\nfilesystem_store_datadir = {tmp_path / 'fast'}\n"
            f"[slow]\nfilesystem_store_datadir = {tmp_path / 'slow'}\n"
            # loopback is not a global address: the operator lets the node fetch from the test's servers
            f"[import_filtering_opts]\nallow_private_addresses = true\nallowed_ports = {files.port},{remote.port}\n"
            f"[glance_download_opts]\nregion_endpoints = RegionTwo:{remote.url}\n"
        )  # fmt: skip
        server.start()
        try:
            api = httpx.Client(base_url=server.url, timeout=60)
            body = {"disk_format": "raw", "container_format": "bare"}

            def imported(image_id: str, method: dict[str, object], **more: object) -> None:
                started = api.post(f"/v2/images/{image_id}/import", json={"method": method, **more})
                assert started.status_code == 202, started.text

                def done() -> bool:
                    shown = api.get(f"/v2/images/{image_id}").json()
                    return bool(shown["status"] == "active" and shown.get("os_glance_importing_to_stores") == "")

                until(done, f"{method} of {image_id}", timeout=60, every=0.2)

            fetched = api.post("/v2/images", json=body).json()["id"]
            imported(fetched, {"name": "web-download", "uri": f"{files.url}/files/web.raw"})
            imported(fetched, {"name": "copy-image"}, stores=["slow"])
            assert sorted(api.get(f"/v2/images/{fetched}").json()["stores"].split(",")) == ["fast", "slow"]
            pulled = api.post("/v2/images", json={"name": "pulled"}).json()["id"]
            imported(pulled, {"name": "glance-download", "glance_image_id": source_id, "glance_region": "RegionTwo"})
            assert api.get(f"/v2/images/{pulled}").json()["os_hash_value"] == hashlib.sha512(web).hexdigest()

            browser = DashboardSession(server.url)
            browser.login()
            in_form = raw_disk_bytes(300_017)
            form = {"csrf_token": browser.csrf("/dashboard/images/new"), "name": "form", "disk_format": "raw"}
            posted = browser.send("POST", "/dashboard/images/new", data=form,
                                  files={"file": ("disk.raw", in_form, "application/octet-stream")})  # fmt: skip
            # No error message on the page the form lands on (the page's script texts mention failures: not shown).
            assert posted.status_code == 303 and 'class="flash error"' not in browser.send("GET", posted.headers[
                "location"]).text  # fmt: skip
            put = raw_disk_bytes(200_009)
            created = browser.send(
                "POST",
                "/dashboard/images/new",
                headers={"Accept": "application/json"},
                data={"csrf_token": form["csrf_token"], "name": "put", "disk_format": "raw"},
            )
            assert created.status_code == 201, created.text
            sent = browser.send("PUT", created.json()["upload"], content=put,
                                headers={"x-csrf-token": form["csrf_token"], **OCTETS})  # fmt: skip
            assert sent.status_code == 200, sent.text
            sizes = sorted(i["size"] for i in api.get("/v2/images", headers={"X-Project-Id": "prj"}).json()["images"])
            assert sizes == sorted([len(in_form), len(put)])

            for found in [scrape(server.url) for _ in range(6)]:  # answered by either worker
                for operation in ("web-download", "copy-image", "glance-download"):
                    assert get(found, "glimpse_image_upload_bytes_total", operation=operation) == len(web), operation
                assert get(found, "glimpse_image_upload_bytes_total", operation="dashboard") == len(in_form) + len(put)
                # Fetched, not uploaded through the API; and the node sent no image data.
                assert get(found, "glimpse_image_upload_bytes_total", operation="upload") == 0
                assert get(found, "glimpse_image_download_bytes_total") == 0
            # The other side of glance-download: the remote region counts it as a download it served.
            assert get(scrape(remote.url), "glimpse_image_download_bytes_total") == len(web)
        finally:
            server.stop()
