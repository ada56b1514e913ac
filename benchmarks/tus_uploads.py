"""What resumable (tus) uploads cost and gain, on the file store: a straight PUT against one tus PATCH, an upload cut
N times (the connection dropped mid-PATCH, the offset asked with HEAD, resumed) against a straight one, the read-back
that publishes a tus upload (its hashes and format inspection, done over the stored data rather than with hash state
carried between requests), and parallel uploads (concatenation) with 1, 2 and 4 connections. Run by
`benchmarks/run.py --only tus`; nothing asserts a time."""

from __future__ import annotations

import hashlib
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType

import httpx

from tests.functional.server import GlimpseServer

TUS = {"Tus-Resumable": "1.0.0"}
CHUNK = {**TUS, "Content-Type": "application/offset+octet-stream"}
MIB = 1024 * 1024


def _image(client: httpx.Client) -> str:
    return str(client.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()["id"])


def _created(client: httpx.Client, image_id: str, length: int, **headers: str) -> str:
    response = client.post(f"/v2/images/{image_id}/uploads", headers={**TUS, "Upload-Length": str(length), **headers})
    assert response.status_code == 201, response.text
    return response.headers["location"]


def _offset(client: httpx.Client, url: str) -> int:
    return int(client.head(url, headers=TUS).headers["upload-offset"])


def _cut(server: GlimpseServer, url: str, at: int, data: memoryview, upto: int) -> None:
    """A PATCH of everything left whose connection drops once `upto` bytes are sent."""
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        path = url[url.index("/v2/") :]
        sock.sendall(
            f"PATCH {path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: {at}\r\n"
            f"Content-Type: application/offset+octet-stream\r\nContent-Length: {len(data) - at}\r\n\r\n".encode()
        )
        sock.sendall(data[at:upto])


def _tus_upload(client: httpx.Client, server: GlimpseServer, data: bytes, cuts: int) -> float:
    image_id = _image(client)
    view = memoryview(data)
    t = time.perf_counter()
    url = _created(client, image_id, len(data))
    at = 0
    for n in range(1, cuts + 1):
        upto = len(data) * n // (cuts + 1)
        _cut(server, url, at, view, upto)
        while (at := _offset(client, url)) < upto:  # the server commits what arrived once it sees the client go
            time.sleep(0.005)
    response = client.patch(url, content=view[at:].tobytes(), headers={**CHUNK, "Upload-Offset": str(at)})
    assert response.status_code == 204, response.text
    elapsed = time.perf_counter() - t
    assert client.get(f"/v2/images/{image_id}").json()["checksum"] == hashlib.md5(data).hexdigest()
    return elapsed


def _parallel(client: httpx.Client, data: bytes, connections: int) -> float:
    image_id = _image(client)
    size = len(data)
    bounds = [(size * i // connections, size * (i + 1) // connections) for i in range(connections)]
    t = time.perf_counter()

    def part(bound: tuple[int, int]) -> str:
        start, end = bound
        with httpx.Client(base_url=str(client.base_url), timeout=600) as own:
            url = _created(own, image_id, end - start, **{"Upload-Concat": "partial"})
            sent = own.patch(url, content=data[start:end], headers={**CHUNK, "Upload-Offset": "0"})
            assert sent.status_code == 204, sent.text
            return url

    with ThreadPoolExecutor(connections) as pool:
        urls = list(pool.map(part, bounds))
    final = client.post(f"/v2/images/{image_id}/uploads", headers={**TUS, "Upload-Concat": "final;" + " ".join(urls)})
    assert final.status_code == 201, final.text
    return time.perf_counter() - t


def bench_tus(run: ModuleType, server: GlimpseServer, size: int, cuts: int = 4) -> None:
    print(f"\nResumable uploads (tus): {size // MIB} MiB image, file store", flush=True)
    data = b"".join(run.data_chunks(size))
    with httpx.Client(base_url=server.url, timeout=600) as client:
        image_id = _image(client)
        t = time.perf_counter()
        put = client.put(
            f"/v2/images/{image_id}/file", content=data, headers={"Content-Type": "application/octet-stream"}
        )
        put_time = time.perf_counter() - t
        assert put.status_code == 204, put.text
        straight = _tus_upload(client, server, data, 0)
        cut = _tus_upload(client, server, data, cuts)
        t = time.perf_counter()
        md5, sha = hashlib.md5(), hashlib.sha512()
        for start in range(0, size, 4 * MIB):
            md5.update(data[start : start + 4 * MIB])
            sha.update(data[start : start + 4 * MIB])
        hashing = time.perf_counter() - t
        rates = {n: size / MIB / _parallel(client, data, n) for n in (1, 2, 4)}
    rate = size / MIB
    run.report("PUT /v2/images/{id}/file (hashes while it streams)", rate / put_time, "MB/s")
    run.report("tus, one PATCH (stored, then read back and hashed)", rate / straight, "MB/s", rate / put_time, "PUT")
    run.report(f"tus, cut {cuts} times and resumed (HEAD + PATCH each)", rate / cut, "MB/s", rate / straight, "uncut")
    run.report("md5+sha512 of the bytes in memory (machine)", rate / hashing, "MB/s")
    print(
        f"  publishing by reading the stored data back (hashes, format) costs {straight - put_time:+.2f} s over PUT, "
        f"which hashes as the bytes stream; hashing {size // MIB} MiB alone takes {hashing:.2f} s here. Hash state "
        "carried between PATCHes would cost about PUT's time, but hashlib cannot save it for another node.",
        flush=True,
    )
    for n, value in rates.items():
        run.report(f"tus concatenation, {n} connection(s) in parallel", value, "MB/s", rates[1], "1 connection")
