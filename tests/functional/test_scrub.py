"""Delayed delete and `glimpse scrub` with a real server, the real openstack client and real scrubber
processes: restore, scrub_time, a store that fails, two scrubbers racing, a scrubber killed with -9."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.disk_bytes import raw_disk_bytes
from tests.functional.clients import Clients
from tests.functional.databases import fresh_database
from tests.functional.server import GLIMPSE, GlimpseServer
from tests.functional.waiting import until

CONF = "delayed_delete = true\ntask_stale_after = 2\ntask_heartbeat_interval = 0.5\nscrub_pool_size = 2\n"
OCTETS = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module", params=("sqlite", "postgresql"))
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlimpseServer]:
    with ExitStack() as stack:
        url = None if request.param == "sqlite" else stack.enter_context(fresh_database(request.param))
        srv = GlimpseServer(tmp_path_factory.mktemp(f"scrub-{request.param}"), url, extra_conf=CONF)
        if url is not None:
            assert srv.command("db", "sync").returncode == 0
        srv.start()
        stack.callback(srv.stop)
        yield srv


def _image(server: GlimpseServer, data: bytes | None = None, **props: str) -> str:
    """An image with data of its own (identical data would be shared: deduplication is on by default)."""
    data = raw_disk_bytes(4096) if data is None else data
    body = {"disk_format": "raw", "container_format": "bare", **props}
    image_id: str = httpx.post(f"{server.url}/v2/images", json=body).json()["id"]
    assert httpx.put(f"{server.url}/v2/images/{image_id}/file", content=data, headers=OCTETS).status_code == 204
    return image_id


def _file(server: GlimpseServer, image_id: str) -> Path:
    return server.data_dir / "images" / image_id


def _column(server: GlimpseServer, image_id: str, column: str = "status") -> str | None:
    """The image's row as the scrubber sees it (the API shows a deleted image to nobody)."""
    if server.conf.read_text().count("connection =") == 0:
        url = f"sqlite:///{server.data_dir / 'glimpse.db'}"
    else:
        url = re.search(r"connection = (\S+)", server.conf.read_text()).group(1)  # type: ignore[union-attr]
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(f"SELECT {column} FROM images WHERE id = :i"), {"i": image_id}).scalar()
    finally:
        engine.dispose()


def _status(server: GlimpseServer, image_id: str) -> str | None:
    return _column(server, image_id)


def _scrub(server: GlimpseServer, *args: str, conf: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GLIMPSE, "scrub", *args, "--config-file", str(conf or server.conf), "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _with(server: GlimpseServer, option: str) -> str:
    """The server's configuration with one more [DEFAULT] option (the file may end in [database])."""
    return server.conf.read_text().replace("[DEFAULT]\n", f"[DEFAULT]\n{option}\n", 1)


def _usage(server: GlimpseServer, project: str) -> dict[str, int]:
    usage = httpx.get(f"{server.url}/v2/info/usage", headers={"X-Project-Id": project}).json()["usage"]
    return {k: v["usage"] for k, v in usage.items()}


def test_delete_keeps_data_restore_brings_it_back_scrub_removes_it(server: GlimpseServer, tmp_path: Path) -> None:
    clients = Clients(server.url, tmp_path / "home")
    data = raw_disk_bytes(100_000)
    source = tmp_path / "image.raw"
    source.write_bytes(data)
    image_id = clients.openstack_json(
        "image", "create", "--file", str(source), "--disk-format", "raw", "--container-format", "bare",
        "--property", "os_distro=debian", "--tag", "keep", "kept-image",
    )["id"]  # fmt: skip

    clients.openstack("image", "delete", image_id)
    shown = clients.openstack("image", "show", image_id, check=False)
    assert shown.returncode != 0 and "No Image found" in shown.stderr + shown.stdout
    assert image_id not in clients.openstack("image", "list", "-f", "value", "-c", "ID").stdout
    assert httpx.get(f"{server.url}/v2/images/{image_id}").status_code == 404
    assert _status(server, image_id) == "pending_delete"
    assert _file(server, image_id).read_bytes() == data  # the data stays for the scrubber

    restored = _scrub(server, "--restore", image_id)
    assert restored.returncode == 0, restored.stderr
    image = clients.openstack_json("image", "show", image_id)
    assert (image["status"], image["tags"], image["properties"]["os_distro"]) == ("active", ["keep"], "debian")
    saved = tmp_path / "saved.raw"
    clients.openstack("image", "save", "--file", str(saved), image_id)
    assert saved.read_bytes() == data

    clients.openstack("image", "delete", image_id)
    later = server.workdir / "later.conf"
    later.write_text(_with(server, "scrub_time = 3600"))
    waiting = _scrub(server, conf=later)
    assert waiting.returncode == 0, waiting.stderr
    assert _file(server, image_id).exists() and _status(server, image_id) == "pending_delete"

    scrubbed = _scrub(server)
    assert scrubbed.returncode == 0, scrubbed.stderr
    assert re.search(r"[1-9]\d* image\(s\) deleted", scrubbed.stdout), scrubbed.stdout
    assert not _file(server, image_id).exists()
    assert _status(server, image_id) == "deleted"
    refused = _scrub(server, "--restore", image_id)
    assert refused.returncode == 1 and "from deleted to active" in refused.stdout
    unknown = _scrub(server, "--restore", "00000000-0000-0000-0000-000000000000")
    assert unknown.returncode == 1 and "No image found" in unknown.stdout
    both = _scrub(server, "--restore", image_id, "--daemon")
    assert both.returncode == 2 and "cannot be used together" in both.stdout
    # The id stays reserved.
    again = httpx.post(f"{server.url}/v2/images", json={"id": image_id, "disk_format": "raw"})
    assert again.status_code == 409


def test_quota_usage_as_glance_counts_it(server: GlimpseServer) -> None:
    project = f"p-{os.urandom(4).hex()}"
    headers = {"X-Project-Id": project, "X-Roles": "member"}
    body = {"disk_format": "raw", "container_format": "bare"}
    image_id = httpx.post(f"{server.url}/v2/images", json=body, headers=headers).json()["id"]
    put = httpx.put(f"{server.url}/v2/images/{image_id}/file", content=b"z" * 2_000_000, headers={**OCTETS, **headers})
    assert put.status_code == 204
    assert _usage(server, project)["image_count_total"] == 1
    assert _usage(server, project)["image_size_total"] == 2  # MiB
    assert httpx.delete(f"{server.url}/v2/images/{image_id}", headers=headers).status_code == 204
    # Glance leaves pending_delete images out of every quota count.
    assert _usage(server, project)["image_count_total"] == 0
    assert _usage(server, project)["image_size_total"] == 0
    assert _scrub(server, "--restore", image_id).returncode == 0
    assert _usage(server, project)["image_count_total"] == 1


def test_restore_refused_when_the_data_is_gone(server: GlimpseServer) -> None:
    image_id = _image(server)
    assert httpx.delete(f"{server.url}/v2/images/{image_id}").status_code == 204
    _file(server, image_id).unlink()
    refused = _scrub(server, "--restore", image_id)
    assert refused.returncode == 1 and "is missing" in refused.stdout, refused.stdout
    assert _status(server, image_id) == "pending_delete"


def test_a_failing_store_leaves_the_image_pending_for_the_next_run(server: GlimpseServer) -> None:
    image_id = _image(server)
    assert httpx.delete(f"{server.url}/v2/images/{image_id}").status_code == 204
    path = _file(server, image_id)
    path.unlink()
    path.mkdir()  # the store cannot remove what is there now (unlink of a folder fails, even as root)
    (path / "busy").write_bytes(b"1")
    failed = _scrub(server)
    assert failed.returncode == 1
    assert f"left for the next run {image_id}" in failed.stdout.replace("\n", " ")
    assert _status(server, image_id) == "pending_delete"
    (path / "busy").unlink()
    path.rmdir()
    done = _scrub(server)
    assert done.returncode == 0, done.stdout
    assert _status(server, image_id) == "deleted"


def _counts(output: str) -> tuple[int, int, int]:
    found = re.search(r"(\d+) image\(s\) deleted, (\d+) cop(?:y|ies) of data removed, \d+ left for the next run, "
                      r"(\d+) held", " ".join(output.split()))  # fmt: skip
    assert found, output
    return int(found.group(1)), int(found.group(2)), int(found.group(3))


def test_two_scrubbers_on_two_nodes_share_the_work(server: GlimpseServer) -> None:
    ids = [_image(server) for _ in range(24)]
    for image_id in ids:
        assert httpx.delete(f"{server.url}/v2/images/{image_id}").status_code == 204
    confs = []
    for port in (1, 2):  # two node names (host:port) on one database
        conf = server.workdir / f"node{port}.conf"
        conf.write_text(server.conf.read_text().replace(f"bind_port = {server.port}", f"bind_port = {port}"))
        confs.append(conf)
    argv = [[GLIMPSE, "scrub", "--config-file", str(c), "--data-dir", str(server.data_dir)] for c in confs]
    procs = [subprocess.Popen(a, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for a in argv]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    counts = [_counts(out) for out, _ in outputs]
    # Every image scrubbed once: the copies removed add up to exactly one per image.
    assert sum(c[1] for c in counts) == len(ids), outputs
    assert sum(c[0] for c in counts) == len(ids), outputs
    assert all(_status(server, i) == "deleted" and not _file(server, i).exists() for i in ids)


def test_a_scrubber_killed_half_way_is_taken_over(server: GlimpseServer) -> None:
    ids = [_image(server) for _ in range(60)]
    for image_id in ids:
        assert httpx.delete(f"{server.url}/v2/images/{image_id}").status_code == 204
    one = server.workdir / "one.conf"
    one.write_text(_with(server, "scrub_pool_size = 1"))
    proc = subprocess.Popen(
        [GLIMPSE, "scrub", "--config-file", str(one), "--data-dir", str(server.data_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while all(_file(server, i).exists() for i in ids) and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    left = [i for i in ids if _file(server, i).exists()]
    assert 0 < len(left) < len(ids), "the scrubber was not caught half-way"
    # Right away the image the dead scrubber held is still claimed (its heartbeat is fresh).
    time.sleep(2.5)  # task_stale_after = 2: now it is taken over
    rerun = _scrub(server)
    assert rerun.returncode == 0, rerun.stdout
    assert all(_status(server, i) == "deleted" for i in ids)
    assert not any(_file(server, i).exists() for i in ids)


def test_per_store_delete_is_delayed_too(tmp_path: Path) -> None:
    conf = CONF + "enabled_backends = fast:file, slow:file\n[glance_store]\ndefault_backend = fast\n"
    srv = GlimpseServer(tmp_path / "multi", extra_conf=conf)
    for store in ("fast", "slow"):
        srv.conf.write_text(
            srv.conf.read_text() + f"[{store}]\nfilesystem_store_datadir = {tmp_path / 'multi' / store}\n"
        )
    srv.start()
    try:
        image_id = httpx.post(f"{srv.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()[
            "id"
        ]
        put = httpx.put(f"{srv.url}/v2/images/{image_id}/file", content=b"y" * 1000, headers=OCTETS)
        assert put.status_code == 204
        copied = httpx.post(
            f"{srv.url}/v2/images/{image_id}/import",
            json={"method": {"name": "copy-image"}, "stores": ["slow"]},
        )
        assert copied.status_code == 202, copied.text
        deadline = time.monotonic() + 30
        while httpx.get(f"{srv.url}/v2/images/{image_id}").json()["stores"] != "fast,slow":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert httpx.delete(f"{srv.url}/v2/stores/slow/{image_id}").status_code == 204
        assert httpx.get(f"{srv.url}/v2/images/{image_id}").json()["stores"] == "fast"
        (slow_copy,) = (tmp_path / "multi" / "slow").glob(f"{image_id}*")  # kept for the scrubber
        scrubbed = _scrub(srv)
        assert scrubbed.returncode == 0, scrubbed.stdout
        assert not slow_copy.exists() and (tmp_path / "multi" / "fast" / image_id).exists()
        assert httpx.get(f"{srv.url}/v2/images/{image_id}").json()["status"] == "active"
        # The whole image, in both stores' worth of history, deleted and scrubbed.
        assert httpx.delete(f"{srv.url}/v2/images/{image_id}").status_code == 204
        assert _scrub(srv).returncode == 0
        assert _status(srv, image_id) == "deleted"
        assert not (tmp_path / "multi" / "fast" / image_id).exists()
    finally:
        srv.stop()


def test_the_daemon_scrubs_after_scrub_time_keeps_running_and_stops_cleanly(server: GlimpseServer) -> None:
    conf = server.workdir / "daemon.conf"
    conf.write_text(_with(server, "scrub_time = 3\nwakeup_time = 1\nscrub_pool_size = 1"))
    output = server.workdir / "daemon.out"
    with output.open("w") as sink:
        daemon = subprocess.Popen(
            [GLIMPSE, "scrub", "--daemon", "--config-file", str(conf), "--data-dir", str(server.data_dir)],
            stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        for _ in range(2):  # two images, scrubbed by two different runs of the same daemon
            image_id = _image(server, raw_disk_bytes(5000))
            assert httpx.delete(f"{server.url}/v2/images/{image_id}").status_code == 204
            deleted = time.monotonic()
            time.sleep(1.5)  # the daemon woke up meanwhile: not due before scrub_time
            assert _file(server, image_id).exists() and _status(server, image_id) == "pending_delete"
            until(lambda i=image_id: not _file(server, i).exists(), "the daemon never scrubbed the image")
            assert time.monotonic() - deleted >= 2.0  # scrub_time 3, the database's clock in whole seconds
            until(lambda i=image_id: _status(server, i) == "deleted", "the image was not marked deleted")
            assert daemon.poll() is None, output.read_text()

        # SIGTERM in the middle of a run: the image in hand finishes, no other is claimed, the daemon exits 0.
        ids = [_image(server) for _ in range(60)]
        for image_id in ids:
            assert httpx.delete(f"{server.url}/v2/images/{image_id}").status_code == 204
        until(lambda: not all(_file(server, i).exists() for i in ids), "the daemon never started", 60)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, output.read_text()
        text_out = output.read_text()
        assert "Scrubber running every 1 s" in text_out and text_out.rstrip().endswith("Scrubber stopped."), text_out
        assert "Traceback" not in text_out, text_out
        left = [i for i in ids if _file(server, i).exists()]
        assert 0 < len(left) < len(ids), "SIGTERM did not stop the run half-way"
        assert all(_column(server, i, "upload_claim") is None for i in ids), "a claim is still held"
        assert all(_status(server, i) == "pending_delete" for i in left)  # untouched, for the next run
        assert all(_status(server, i) == "deleted" for i in ids if i not in left)
        rerun = _scrub(server)
        assert rerun.returncode == 0 and f"{len(left)} image(s) deleted" in rerun.stdout, rerun.stdout
        assert not any(_file(server, i).exists() for i in ids)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
