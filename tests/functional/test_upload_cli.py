"""`glimpse image upload` run as a user runs it, against a real server over tus: straight, killed with SIGKILL and
resumed (more than once), through a network that drops the connection, in parallel parts, and with a file that
changed between two attempts."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.functional.server import GLIMPSE, GlimpseServer
from tests.functional.tcp_proxy import TcpProxy
from tests.keystone.server import KeystoneServer
from tests.keystone.setup import authtoken_conf, openstack_env, register_image_service

MIB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlimpseServer]:
    srv = GlimpseServer(tmp_path_factory.mktemp("glimpse-upload-cli")).start()
    yield srv
    srv.stop()


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def _env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    return {**env, "XDG_CACHE_HOME": str(cache), "COLUMNS": "200"}


def _command(url: str, file: Path, *args: str) -> list[str]:
    return [GLIMPSE, "image", "upload", str(file), "--url", url, "--chunk-size", "1MB", *args]


def upload(url: str, file: Path, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_command(url, file, *args), env=_env(cache), capture_output=True, text=True, timeout=300)


def _interruptible() -> None:
    # As in a terminal: a test run started in the background (`nohup ... &`) hands its children SIGINT ignored, and
    # Python then keeps it ignored, so the Ctrl-C the tests send would do nothing.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_upload(url: str, file: Path, cache: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        _command(url, file, *args),
        env=_env(cache),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_interruptible,
    )


def image_file(path: Path, size: int, seed: bytes = b"glimpse") -> Path:
    block = hashlib.sha512(seed).digest() * (MIB // 64)
    with open(path, "wb") as out:
        for at in range(0, size, MIB):
            out.write((hashlib.sha256(seed + at.to_bytes(8, "big")).digest() + block)[: min(MIB, size - at)])
    return path


def digests(path: Path) -> tuple[str, str]:
    data = path.read_bytes()
    return hashlib.md5(data).hexdigest(), hashlib.sha512(data).hexdigest()


def printed(output: str) -> dict[str, str]:
    return dict(re.findall(r"^(id|checksum|os_hash_algo|os_hash_value): (\S+)$", output, re.MULTILINE))


def saved_state(cache: Path) -> dict[str, object]:
    files = list((cache / "glimpse" / "uploads").glob("*.json"))
    assert len(files) == 1, files
    state: dict[str, object] = json.loads(files[0].read_text())
    return state


def server_offset(server: GlimpseServer, cache: Path) -> int:
    """What the server holds of the saved upload (its parts' offsets), asked of the server itself."""
    total = 0
    for part in saved_state(cache)["parts"]:  # type: ignore[attr-defined]
        path = "/" + part["url"].split("/", 3)[3]
        response = httpx.head(f"{server.url}{path}", headers=TUS)
        assert response.status_code == 200, response.text
        total += int(response.headers["upload-offset"])
    return total


def wait_for_offset(server: GlimpseServer, cache: Path, process: subprocess.Popen[str], at_least: int) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        try:
            offset = server_offset(server, cache)
        except (AssertionError, OSError, ValueError):  # the state file is not written yet
            offset = 0
        if offset >= at_least:
            return offset
        time.sleep(0.05)
    raise AssertionError(f"the upload did not reach {at_least} bytes")


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(10)


def show(server: GlimpseServer, image_id: str) -> dict[str, object]:
    response = httpx.get(f"{server.url}/v2/images/{image_id}")
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def assert_uploaded(server: GlimpseServer, result: subprocess.CompletedProcess[str], file: Path) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    md5, sha512 = digests(file)
    shown = printed(result.stdout)
    assert shown["checksum"] == md5 and shown["os_hash_algo"] == "sha512" and shown["os_hash_value"] == sha512
    image = show(server, shown["id"])
    assert (image["status"], image["size"], image["checksum"]) == ("active", file.stat().st_size, md5)
    data = httpx.get(f"{server.url}/v2/images/{shown['id']}/file", timeout=60).content
    assert hashlib.sha512(data).hexdigest() == sha512
    return shown["id"]


def test_a_straight_upload_prints_the_id_and_checksums_and_guesses_the_format(
    server: GlimpseServer, tmp_path: Path, cache: Path
) -> None:
    file = image_file(tmp_path / "disk.qcow2", 3 * MIB + 12345)
    content = tmp_path / "real.img"  # qcow2 by its content, not its name
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(content), "64M"], check=True)
    result = upload(server.url, content, cache, "--name", "guessed")
    assert show(server, assert_uploaded(server, result, content))["disk_format"] == "qcow2"
    result = upload(server.url, file, cache, "--name", "straight", "--property", "os_distro=debian",
                    "--disk-format", "raw", "--visibility", "private")  # fmt: skip
    image = show(server, assert_uploaded(server, result, file))
    assert (image["name"], image["os_distro"], image["visibility"]) == ("straight", "debian", "private")
    assert "Checksums match the file's." in result.stderr
    assert not list((cache / "glimpse" / "uploads").glob("*.json")), "the state of a finished upload is removed"


def test_killed_twice_then_resumed_goes_on_from_the_servers_offset(
    server: GlimpseServer, tmp_path: Path, cache: Path
) -> None:
    size = 24 * MIB
    file = image_file(tmp_path / "big.raw", size, b"killed")
    with TcpProxy(server.port, rate=6 * MIB) as proxy:
        first = start_upload(proxy.url, file, cache, "--name", "resumed")
        reached = wait_for_offset(server, cache, first, 5 * MIB)
        kill(first)
        image_id = saved_state(cache)["image_id"]
        assert show(server, str(image_id))["status"] != "active"

        second = start_upload(proxy.url, file, cache, "--resume")
        reached = wait_for_offset(server, cache, second, reached + 5 * MIB)
        kill(second)
        assert saved_state(cache)["image_id"] == image_id

        third = upload(proxy.url, file, cache, "--resume")
        assert f"Resuming the upload into image {image_id}" in third.stderr
        assert assert_uploaded(server, third, file) == image_id
        # Each run went on from the server's offset: at most the chunk in flight at each kill was sent twice.
        assert proxy.bytes_up < size + 3 * MIB, proxy.bytes_up
    names = httpx.get(f"{server.url}/v2/images", params={"name": "resumed"}).json()["images"]
    assert [i["id"] for i in names] == [image_id]


def test_ctrl_c_leaves_a_resumable_upload_and_says_how_to_resume(
    server: GlimpseServer, tmp_path: Path, cache: Path
) -> None:
    file = image_file(tmp_path / "interrupted.raw", 12 * MIB, b"ctrl-c")
    with TcpProxy(server.port, rate=6 * MIB) as proxy:
        first = start_upload(proxy.url, file, cache, "--name", "interrupted")
        wait_for_offset(server, cache, first, 3 * MIB)
        first.send_signal(signal.SIGINT)
        output = first.communicate(timeout=30)[0]
        assert first.returncode == 130, output
        assert f"glimpse image upload {file} --resume" in output
        image_id = saved_state(cache)["image_id"]
        result = upload(proxy.url, file, cache, "--resume")
        assert assert_uploaded(server, result, file) == image_id


def test_a_dropped_connection_is_retried_from_the_servers_offset(
    server: GlimpseServer, tmp_path: Path, cache: Path
) -> None:
    size = 12 * MIB
    file = image_file(tmp_path / "flaky.raw", size, b"flaky")
    with TcpProxy(server.port) as proxy:
        proxy.cut_after(5 * MIB + 1000)
        result = upload(proxy.url, file, cache, "--name", "flaky")
        assert proxy.cuts == 1
        assert "resuming from the server's offset in" in result.stderr, result.stderr
        assert_uploaded(server, result, file)
        assert proxy.bytes_up < size + 2 * MIB, proxy.bytes_up


def test_a_server_killed_and_restarted_mid_way_is_waited_for(tmp_path: Path, cache: Path) -> None:
    """The client keeps asking while the server is down, then goes on from what the server kept; the upload the
    dead server was writing is taken over once its heartbeat is older than upload_heartbeat_timeout."""
    size = 16 * MIB
    file = image_file(tmp_path / "restart.raw", size, b"restart")
    server = GlimpseServer(tmp_path / "restarting", extra_conf="upload_heartbeat_timeout = 5\n").start()
    try:
        with TcpProxy(server.port, rate=6 * MIB) as proxy:
            process = start_upload(proxy.url, file, cache, "--name", "restarted", "--retries", "12")
            wait_for_offset(server, cache, process, 4 * MIB)
            server.kill()
            server.start()
            output = process.communicate(timeout=300)[0]
            assert process.returncode == 0, output
            assert "trying again in" in output or "resuming from the server's offset in" in output
            md5, _ = digests(file)
            assert printed(output)["checksum"] == md5
            image = show(server, printed(output)["id"])
            assert (image["status"], image["checksum"]) == ("active", md5)
            assert proxy.bytes_up < 2 * size, proxy.bytes_up  # not sent again from zero
    finally:
        server.stop()


def test_parallel_parts_give_the_checksums_of_a_straight_upload(
    server: GlimpseServer, tmp_path: Path, cache: Path
) -> None:
    file = image_file(tmp_path / "parallel.raw", 10 * MIB + 7, b"parallel")
    straight = assert_uploaded(server, upload(server.url, file, cache, "--name", "straight-3"), file)
    result = upload(server.url, file, cache, "--name", "parallel-3", "--parallel", "3")
    assert "on 3 connections" in result.stderr, result.stderr
    parallel = assert_uploaded(server, result, file)
    fields = ("checksum", "os_hash_value", "size")
    assert [show(server, parallel)[f] for f in fields] == [show(server, straight)[f] for f in fields]


def test_parallel_parts_killed_half_way_resume(server: GlimpseServer, tmp_path: Path, cache: Path) -> None:
    size = 18 * MIB
    file = image_file(tmp_path / "parts.raw", size, b"parts")
    with TcpProxy(server.port, rate=6 * MIB) as proxy:
        first = start_upload(proxy.url, file, cache, "--name", "parts", "--parallel", "3")
        wait_for_offset(server, cache, first, 6 * MIB)
        kill(first)
        image_id = saved_state(cache)["image_id"]
        result = upload(proxy.url, file, cache, "--resume")
        assert assert_uploaded(server, result, file) == image_id
        assert proxy.bytes_up < size + 4 * MIB, proxy.bytes_up


def test_a_changed_file_is_not_resumed_into_the_old_image(server: GlimpseServer, tmp_path: Path, cache: Path) -> None:
    file = image_file(tmp_path / "changing.raw", 16 * MIB, b"before")
    with TcpProxy(server.port, rate=6 * MIB) as proxy:
        first = start_upload(proxy.url, file, cache, "--name", "changing")
        wait_for_offset(server, cache, first, 3 * MIB)
        kill(first)
        old_id = str(saved_state(cache)["image_id"])
        image_file(file, 16 * MIB, b"after")  # same size, other bytes, a new modification time
        os.utime(file, ns=(time.time_ns(), time.time_ns() + 10**9))
        result = upload(proxy.url, file, cache, "--resume")
    assert "Not resuming: the file changed" in result.stderr, result.stderr
    new_id = assert_uploaded(server, result, file)
    assert new_id != old_id
    assert show(server, old_id)["status"] in ("queued", "uploading"), "the old image got none of the new bytes"


def test_resume_without_a_saved_upload_starts_afresh_and_bad_input_is_refused(
    server: GlimpseServer, tmp_path: Path, cache: Path
) -> None:
    file = image_file(tmp_path / "fresh.raw", MIB, b"fresh")
    result = upload(server.url, file, cache, "--resume", "--name", "fresh")
    assert "there is no interrupted upload of this file" in result.stderr
    assert_uploaded(server, result, file)
    empty = tmp_path / "empty.raw"
    empty.write_bytes(b"")
    assert_uploaded(server, upload(server.url, empty, cache, "--parallel", "3"), empty)
    missing = upload(server.url, tmp_path / "missing.raw", cache)
    assert missing.returncode == 2 and "is not a file" in missing.stderr
    refused = upload(server.url, file, cache, "--disk-format", "floppy")
    assert refused.returncode == 1 and "the image was not created: 400" in refused.stderr, refused.stderr
    nowhere = subprocess.run([GLIMPSE, "image", "upload", str(file)], env=_env(cache), capture_output=True, text=True)
    assert nowhere.returncode == 2 and "--url" in nowhere.stderr


def test_keystone_credentials_from_os_variables_find_the_endpoint_in_the_catalog(
    keystone_server: KeystoneServer, keystone_projects: dict[str, Any], tmp_path: Path, cache: Path
) -> None:
    conf = "[paste_deploy]\nflavor = keystone\n" + authtoken_conf(keystone_server)
    glimpse = GlimpseServer(tmp_path / "glimpse-ks", extra_conf=conf).start()
    try:
        register_image_service(keystone_server, glimpse.url)
        user = keystone_projects["users"]["Prj1-member"]
        env = {**_env(cache), **openstack_env(keystone_server, "Prj1-member", user["project"], user["password"])}
        file = image_file(tmp_path / "ks.raw", 3 * MIB, b"keystone")
        command = [GLIMPSE, "image", "upload", str(file), "--name", "with-keystone", "--chunk-size", "1MB"]
        result = subprocess.run([*command, "--parallel", "2"], env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        shown = printed(result.stdout)
        assert shown["checksum"] == digests(file)[0]
        token, _ = keystone_projects["token"]("Prj1-member")
        image = httpx.get(f"{glimpse.url}/v2/images/{shown['id']}", headers={"X-Auth-Token": token}).json()
        assert (image["status"], image["owner"]) == ("active", keystone_projects["projects"]["Prj1"])
        # A wrong password is Keystone's refusal, said before anything is created.
        refused = subprocess.run(command, env={**env, "OS_PASSWORD": "wrong"}, capture_output=True, text=True)
        assert refused.returncode == 2 and "Keystone" in refused.stderr, refused.stderr
    finally:
        glimpse.stop()
