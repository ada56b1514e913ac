"""Image downloads on every way the bytes can leave, with the same answers on each.

- a file-store image under uvicorn (`glimpse serve`), which offers ASGI's zerocopysend extension: the open file and
  the range (whole or not) are handed to the server, which sends them with the kernel's sendfile (its debug line
  says so: the proof that no byte crossed Python);
- the same under Granian, which offers the ASGI pathsend extension: a whole image is handed to the server as a file
  and never crosses Python (a Range streams, read in large blocks from the open file);
- the node cache's copy: a local file too, on the same paths (the read that fills the cache streams: it must see
  the bytes);
- an image on a non-file store (the http store): streamed through the store's iterator as before.
Each path keeps Range (single, suffix, unsatisfiable 416; several ranges are refused with 400), HEAD, Content-MD5,
204 for no data, the access log's byte counts and the download metric; a client that goes away mid-download leaves
no open file and is logged as such, a slow reader is waited for without the server spinning or stalling.
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from glimpse.logs import DEFAULT_LOG_LEVELS
from tests.contract.fixtures import web_server  # noqa: F401  (a real web server for the http store)
from tests.contract.servers import WebServer
from tests.disk_bytes import raw_disk_bytes
from tests.functional.logfiles import wait_for
from tests.functional.server import GlimpseServer, GranianServer
from tests.functional.test_image_cache import cached_ids
from tests.functional.test_image_cache import wait_for as wait_until
from tests.functional.test_metrics import get, scrape

MIB = 1024 * 1024
SIZE = 5 * MIB + 12345  # several blocks, and a last one that is not whole
OCTETS = {"Content-Type": "application/octet-stream"}
LEVELS = ", ".join([*DEFAULT_LOG_LEVELS, "glimpse.cli.zerocopy=DEBUG"])  # its line tells the path taken


def _conf(workdir: Path) -> str:
    return f"""enabled_backends = local:file, web:http
image_cache_dir = {workdir / "cache"}
image_cache_max_size = 100000000
log_file = {workdir / "glimpse.log"}
default_log_levels = {LEVELS}
[glance_store]
default_backend = local
[egress]
http_store_allowed_hosts = 127.0.0.1
[paste_deploy]
flavor = caching
"""


@pytest.fixture(scope="module", params=["uvicorn", "granian"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlimpseServer]:
    workdir = tmp_path_factory.mktemp(f"data-paths-{request.param}")
    kind = GranianServer if request.param == "granian" else GlimpseServer
    srv = kind(workdir, extra_conf=_conf(workdir))
    if request.param == "uvicorn":
        assert srv.command("db", "sync").returncode == 0
    srv.start()
    yield srv
    srv.stop()


def _create(server: GlimpseServer) -> str:
    body = {"name": "paths", "disk_format": "raw", "container_format": "bare"}
    created = httpx.post(f"{server.url}/v2/images", json=body, timeout=30)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _uploaded(server: GlimpseServer, data: bytes) -> str:
    image_id = _create(server)
    put = httpx.put(f"{server.url}/v2/images/{image_id}/file", content=data, headers=OCTETS, timeout=120)
    assert put.status_code == 204, put.text
    return image_id


def _check_answers(server: GlimpseServer, image_id: str, data: bytes) -> None:
    """Whole, ranges, suffix, 416, Content-MD5: the same on every path."""
    url = f"{server.url}/v2/images/{image_id}/file"
    whole = httpx.get(url, timeout=60)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-md5"] == hashlib.md5(data).hexdigest()
    assert whole.headers["content-length"] == str(len(data))
    part = httpx.get(url, headers={"Range": f"bytes={MIB - 3}-{2 * MIB + 4}"}, timeout=60)
    assert part.status_code == 206 and part.content == data[MIB - 3 : 2 * MIB + 5]
    assert part.headers["content-range"] == f"bytes {MIB - 3}-{2 * MIB + 4}/{len(data)}"
    suffix = httpx.get(url, headers={"Range": "bytes=-1000"}, timeout=60)
    assert suffix.status_code == 206 and suffix.content == data[-1000:]
    open_ended = httpx.get(url, headers={"Range": "bytes=1-"}, timeout=60)
    assert open_ended.status_code == 206 and open_ended.content == data[1:]
    beyond = httpx.get(url, headers={"Range": f"bytes={len(data)}-"}, timeout=60)
    assert beyond.status_code == 416
    assert beyond.headers.get("content-range") == f"bytes */{len(data)}"
    several = httpx.get(url, headers={"Range": "bytes=0-9,20-29"}, timeout=60)
    assert several.status_code == 400  # one range per request, as Glance
    with httpx.Client(timeout=60) as client:  # HEAD: the headers alone, and the connection stays usable
        head = client.head(url)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(data))
        assert head.headers["content-md5"] == whole.headers["content-md5"]
        assert client.get(url, headers={"Range": "bytes=0-9"}).content == data[:10]


def _sendfile_lines(server: GlimpseServer) -> list[str]:
    log = server.workdir / "glimpse.log"
    return [line for line in log.read_text().splitlines() if "glimpse.cli.zerocopy" in line] if log.exists() else []


def _sent_by_the_kernel(server: GlimpseServer, offset: int, count: int) -> None:
    """Under uvicorn, the server's sendfile sent exactly this range (Granian's pathsend logs nothing)."""
    if not isinstance(server, GranianServer):
        wait_for(server.workdir / "glimpse.log", f"sendfile: {count} of {count} bytes from offset {offset},")


def test_file_store_download_answers_and_counts(server: GlimpseServer) -> None:
    data = raw_disk_bytes(SIZE)
    image_id = _uploaded(server, data)
    before = get(scrape(server.url), "glimpse_image_download_bytes_total")
    whole = httpx.get(f"{server.url}/v2/images/{image_id}/file", timeout=60)
    assert whole.content == data
    # every byte counted once, without the server touching them on the pathsend path
    assert get(scrape(server.url), "glimpse_image_download_bytes_total") == before + len(data)
    line = wait_for(server.workdir / "glimpse.log", f"status: 200 len: {len(data)} in: 0")
    assert f'"GET /v2/images/{image_id}/file' in line
    _check_answers(server, image_id, data)
    # the first GET filled the node cache (the app saw its bytes); the next whole one and every Range (never cached)
    _sent_by_the_kernel(server, 0, len(data))
    _sent_by_the_kernel(server, MIB - 3, MIB + 8)
    _sent_by_the_kernel(server, len(data) - 1000, 1000)
    ranged = get(scrape(server.url), "glimpse_image_download_bytes_total")
    httpx.get(f"{server.url}/v2/images/{image_id}/file", headers={"Range": "bytes=10-19"}, timeout=60)
    assert get(scrape(server.url), "glimpse_image_download_bytes_total") == ranged + 10
    wait_for(server.workdir / "glimpse.log", "status: 206 len: 10 in: 0")
    empty = _create(server)
    assert httpx.get(f"{server.url}/v2/images/{empty}/file", timeout=30).status_code == 204


def test_cached_copy_serves_the_same_answers(server: GlimpseServer) -> None:
    data = raw_disk_bytes(SIZE)
    image_id = _uploaded(server, data)
    assert httpx.get(f"{server.url}/v2/images/{image_id}/file", timeout=60).content == data  # fills the cache
    wait_until(lambda: image_id in cached_ids(server), "the node caches the image it served")
    hits = _cache_hits(server, image_id)
    _check_answers(server, image_id, data)
    assert _cache_hits(server, image_id) > hits  # served from the cached copy
    _sent_by_the_kernel(server, MIB - 3, MIB + 8)  # the cache's file goes by sendfile too


def _cache_hits(server: GlimpseServer, image_id: str) -> int:
    listed = httpx.get(f"{server.url}/v2/cache", timeout=30).json()["cached_images"]
    return int(next(entry["hits"] for entry in listed if entry["image_id"] == image_id))


def test_a_non_file_store_streams_as_before(server: GlimpseServer, web_server: WebServer) -> None:  # noqa: F811
    data = raw_disk_bytes(SIZE)
    url = web_server.publish(f"{uuid.uuid4().hex}.img", data)
    image_id = _create(server)
    validation = {"os_hash_algo": "sha512", "os_hash_value": hashlib.sha512(data).hexdigest()}
    added = httpx.post(f"{server.url}/v2/images/{image_id}/locations",
                       json={"url": url, "validation_data": validation}, timeout=60)  # fmt: skip
    assert added.status_code == 202, added.text
    shown = httpx.get(f"{server.url}/v2/images/{image_id}", timeout=30).json()
    assert (shown["status"], shown["stores"]) == ("active", "web")
    httpx.delete(f"{server.url}/v2/cache/{image_id}", timeout=30)
    before = len(_sendfile_lines(server))
    ranged = httpx.get(f"{server.url}/v2/images/{image_id}/file", headers={"Range": "bytes=5-104"}, timeout=60)
    assert ranged.status_code == 206 and ranged.content == data[5:105]
    assert len(_sendfile_lines(server)) == before  # streamed by the app from the store: no file to hand over
    _check_answers(server, image_id, data)  # its first GET fills the node cache, whose copy is a file again


def _open_files(pids: list[int]) -> list[str]:
    found = []
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                found.append(os.readlink(fd))
            except OSError:
                continue
    return found


def _server_pids(server: GlimpseServer) -> list[int]:
    assert server.proc is not None
    pids = [server.proc.pid]
    for task in Path(f"/proc/{server.proc.pid}/task").iterdir():
        pids += [int(c) for c in (task / "children").read_text().split()]
    return pids


def _descriptors(pids: list[int]) -> Counter[str]:
    """What the server's processes hold open, by file and by kind (socket, pipe, ...), but the database: its pool
    may grow by a connection meanwhile."""
    return Counter(p.split(":[")[0] for p in _open_files(pids) if ".db" not in Path(p).name)


@pytest.mark.parametrize("wanted", ["", "bytes=1-"])
def test_a_client_that_goes_away_leaves_no_open_file(server: GlimpseServer, wanted: str) -> None:
    """Whole: streamed (the app fills the node cache with it); a Range: sent by the server from the file."""
    data = raw_disk_bytes(48 * MIB)  # more than the socket buffers hold
    image_id = _uploaded(server, data)
    counted = get(scrape(server.url), "glimpse_image_download_bytes_total")
    descriptors = _descriptors(_server_pids(server))
    ranged = f"range: {wanted}\r\n" if wanted else ""
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(f"GET /v2/images/{image_id}/file HTTP/1.1\r\nhost: x\r\n{ranged}\r\n".encode())
        received = sock.recv(65536)
        assert received.startswith(b"HTTP/1.1 206" if wanted else b"HTTP/1.1 200")
        while len(received) < MIB:  # some of the body, then gone
            received += sock.recv(65536)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # closed with a reset
    deadline = time.monotonic() + 30
    while any(image_id in p for p in _open_files(_server_pids(server))):
        assert time.monotonic() < deadline, "the image file stays open after the client went away"
        time.sleep(0.2)
    # the server stays healthy and holds no more descriptors than before (the file, the socket's duplicate: closed)
    again = httpx.get(f"{server.url}/v2/images/{image_id}/file", headers={"Range": "bytes=0-99"}, timeout=30)
    assert again.content == data[:100]
    while left := _descriptors(_server_pids(server)) - descriptors:
        assert time.monotonic() < deadline, f"descriptors left open after the client went away: {left}"
        time.sleep(0.2)
    if isinstance(server, GranianServer):
        return  # the server sent the file itself or the app streamed it: the log says what was handed over
    line = wait_for(server.workdir / "glimpse.log", "(client disconnected)")
    hung = [x for x in line.splitlines() if f'"GET /v2/images/{image_id}/file' in x and "disconnected" in x]
    assert len(hung) == 1, hung
    sent = int(hung[0].split(" len: ")[1].split()[0])
    assert MIB - 1000 < sent < len(data)  # what really left, not the whole file
    assert get(scrape(server.url), "glimpse_image_download_bytes_total") == counted + sent + 100
    if wanted:
        wait_for(server.workdir / "glimpse.log", f"sendfile: {sent} of {len(data) - 1} bytes from offset 1,")


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def test_a_slow_reader_is_waited_for_without_spinning(server: GlimpseServer) -> None:
    data = raw_disk_bytes(24 * MIB)
    image_id = _uploaded(server, data)
    pids = _server_pids(server)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # the server's socket fills at once
        sock.connect(("127.0.0.1", server.port))
        head = "host: x\r\nrange: bytes=0-\r\nconnection: close\r\n"  # a Range: never teed into the node cache
        sock.sendall(f"GET /v2/images/{image_id}/file HTTP/1.1\r\n{head}\r\n".encode())
        cpu, started = _cpu_seconds(pids), time.monotonic()
        received = bytearray()
        while len(received) < len(data) // 4:  # about 6 MiB/s: the server waits most of the time
            time.sleep(0.02)
            received += sock.recv(128 * 1024)
            if len(received) > MIB and len(received) < MIB + 256 * 1024:  # meanwhile others are served at once
                answered = time.monotonic()
                assert httpx.get(f"{server.url}/v2/images/{image_id}", timeout=10).status_code == 200
                assert time.monotonic() - answered < 5
        waited, spent = time.monotonic() - started, _cpu_seconds(pids) - cpu
        assert waited > 0.5
        assert spent < 0.5 * waited, f"the server spent {spent:.2f} s of CPU in {waited:.2f} s waiting for a reader"
        while chunk := sock.recv(1024 * 1024):
            received += chunk
    status, _, body = bytes(received).partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 206") and body == data
    _sent_by_the_kernel(server, 0, len(data))
