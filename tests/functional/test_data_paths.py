"""Image downloads on every way the bytes can leave, with the same answers on each.

- a file-store image under uvicorn: read in large blocks from its open file, the next one read while this one goes out;
- the same under Granian, which offers the ASGI pathsend extension: a whole image is handed to the server as a file
  and never crosses Python (a Range still streams);
- the node cache's copy: a local file too, on the same paths;
- an image on a non-file store (the http store): streamed through the store's iterator as before.
Each path keeps Range (single, suffix, unsatisfiable 416), Content-MD5, 204 for no data, the access log's byte
counts and the download metric; a client that goes away mid-download leaves no open file and is logged as such.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.contract.fixtures import web_server  # noqa: F401  (a real web server for the http store)
from tests.contract.servers import WebServer
from tests.functional.logfiles import wait_for
from tests.functional.server import GlimpseServer, GranianServer
from tests.functional.test_image_cache import cached_ids
from tests.functional.test_image_cache import wait_for as wait_until
from tests.functional.test_metrics import get, scrape

MIB = 1024 * 1024
SIZE = 5 * MIB + 12345  # several blocks, and a last one that is not whole
OCTETS = {"Content-Type": "application/octet-stream"}


def _conf(workdir: Path) -> str:
    return f"""enabled_backends = local:file, web:http
image_cache_dir = {workdir / "cache"}
image_cache_max_size = 100000000
log_file = {workdir / "glimpse.log"}
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


def test_file_store_download_answers_and_counts(server: GlimpseServer) -> None:
    data = os.urandom(SIZE)
    image_id = _uploaded(server, data)
    before = get(scrape(server.url), "glimpse_image_download_bytes_total")
    whole = httpx.get(f"{server.url}/v2/images/{image_id}/file", timeout=60)
    assert whole.content == data
    # every byte counted once, without the server touching them on the pathsend path
    assert get(scrape(server.url), "glimpse_image_download_bytes_total") == before + len(data)
    line = wait_for(server.workdir / "glimpse.log", f"status: 200 len: {len(data)} in: 0")
    assert f'"GET /v2/images/{image_id}/file' in line
    _check_answers(server, image_id, data)
    empty = _create(server)
    assert httpx.get(f"{server.url}/v2/images/{empty}/file", timeout=30).status_code == 204


def test_cached_copy_serves_the_same_answers(server: GlimpseServer) -> None:
    data = os.urandom(SIZE)
    image_id = _uploaded(server, data)
    assert httpx.get(f"{server.url}/v2/images/{image_id}/file", timeout=60).content == data  # fills the cache
    wait_until(lambda: image_id in cached_ids(server), "the node caches the image it served")
    hits = _cache_hits(server, image_id)
    _check_answers(server, image_id, data)
    assert _cache_hits(server, image_id) > hits  # served from the cached copy


def _cache_hits(server: GlimpseServer, image_id: str) -> int:
    listed = httpx.get(f"{server.url}/v2/cache", timeout=30).json()["cached_images"]
    return int(next(entry["hits"] for entry in listed if entry["image_id"] == image_id))


def test_a_non_file_store_streams_as_before(server: GlimpseServer, web_server: WebServer) -> None:  # noqa: F811
    data = os.urandom(SIZE)
    url = web_server.publish(f"{uuid.uuid4().hex}.img", data)
    image_id = _create(server)
    validation = {"os_hash_algo": "sha512", "os_hash_value": hashlib.sha512(data).hexdigest()}
    added = httpx.post(f"{server.url}/v2/images/{image_id}/locations",
                       json={"url": url, "validation_data": validation}, timeout=60)  # fmt: skip
    assert added.status_code == 202, added.text
    shown = httpx.get(f"{server.url}/v2/images/{image_id}", timeout=30).json()
    assert (shown["status"], shown["stores"]) == ("active", "web")
    httpx.delete(f"{server.url}/v2/cache/{image_id}", timeout=30)
    _check_answers(server, image_id, data)


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


def test_a_client_that_goes_away_leaves_no_open_file(server: GlimpseServer) -> None:
    data = os.urandom(48 * MIB)  # more than the socket buffers hold
    image_id = _uploaded(server, data)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(f"GET /v2/images/{image_id}/file HTTP/1.1\r\nhost: x\r\n\r\n".encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    deadline = time.monotonic() + 30
    while any(image_id in p for p in _open_files(_server_pids(server))):
        assert time.monotonic() < deadline, "the image file stays open after the client went away"
        time.sleep(0.2)
    text = (server.workdir / "glimpse.log").read_text()
    lines = [line for line in text.splitlines() if f'"GET /v2/images/{image_id}/file' in line]
    if isinstance(server, GranianServer):
        # the server sent the file itself: the log says what was handed over, the file is closed all the same
        assert len(lines) == 1, lines
    else:
        line = wait_for(server.workdir / "glimpse.log", "(client disconnected)")
        hung = [x for x in line.splitlines() if f'"GET /v2/images/{image_id}/file' in x]
        assert len(hung) == 1 and "(client disconnected)" in hung[0], hung
