"""Resumable uploads (tus 1.0) against a real `glimpse serve`, driven by the real tus client tuspy and by raw HTTP
where a test plays a hostile or broken client."""

from __future__ import annotations

import base64
import hashlib
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from tusclient import client as tus_client

from tests.disk_bytes import raw_disk_bytes
from tests.functional import images
from tests.functional.server import GlimpseServer

TUS = {"Tus-Resumable": "1.0.0"}
CHUNK = {**TUS, "Content-Type": "application/offset+octet-stream"}
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def glimpse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlimpseServer]:
    server = GlimpseServer(tmp_path_factory.mktemp("tus"), extra_conf="upload_heartbeat_timeout = 5\n").start()
    yield server
    server.stop()


def new_image(server: GlimpseServer, disk_format: str = "raw", **headers: str) -> str:
    body = {"disk_format": disk_format, "container_format": "bare", "name": "tus"}
    response = httpx.post(f"{server.url}/v2/images", json=body, headers=headers, timeout=30)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def image(server: GlimpseServer, image_id: str, **headers: str) -> dict[str, object]:
    response = httpx.get(f"{server.url}/v2/images/{image_id}", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    shown: dict[str, object] = response.json()
    return shown


def create(server: GlimpseServer, image_id: str, length: int, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v2/images/{image_id}/uploads",
        headers={**TUS, "Upload-Length": str(length), **headers},
        timeout=30,
    )


def created(server: GlimpseServer, image_id: str, length: int, **headers: str) -> str:
    response = create(server, image_id, length, **headers)
    assert response.status_code == 201, response.text
    return response.headers["location"]


def offset(url: str) -> int:
    response = httpx.head(url, headers=TUS, timeout=30)
    assert response.status_code == 200, response.text
    return int(response.headers["upload-offset"])


def send(url: str, at: int, data: bytes, **headers: str) -> httpx.Response:
    return httpx.patch(url, content=data, headers={**CHUNK, "Upload-Offset": str(at), **headers}, timeout=60)


def published_as(server: GlimpseServer, image_id: str, data: bytes) -> None:
    shown = image(server, image_id)
    assert shown["status"] == "active"
    assert shown["size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert shown["virtual_size"] == len(data)
    assert httpx.get(f"{server.url}/v2/images/{image_id}/file", timeout=60).content == data


def test_discovery_says_what_the_server_speaks(glimpse: GlimpseServer) -> None:
    image_id = new_image(glimpse)
    response = httpx.options(f"{glimpse.url}/v2/images/{image_id}/uploads", timeout=30)
    assert response.status_code == 204
    assert response.headers["tus-resumable"] == "1.0.0"
    assert response.headers["tus-version"] == "1.0.0"
    assert set(response.headers["tus-extension"].split(",")) == {
        "creation", "checksum", "termination", "expiration", "concatenation",
    }  # fmt: skip
    assert "sha1" in response.headers["tus-checksum-algorithm"].split(",")
    assert int(response.headers["tus-max-size"]) > 0


def test_tuspy_uploads_in_chunks_with_checksums_and_the_image_is_published(
    glimpse: GlimpseServer, tmp_path: Path
) -> None:
    image_id = new_image(glimpse)
    data = raw_disk_bytes(3 * MIB + 17)
    path = tmp_path / "disk.raw"
    path.write_bytes(data)
    tus = tus_client.TusClient(f"{glimpse.url}/v2/images/{image_id}/uploads")
    uploader = tus.uploader(file_path=str(path), chunk_size=MIB, upload_checksum=True, metadata={"filename": "d"})
    uploader.upload()
    assert uploader.url.startswith(f"{glimpse.url}/v2/images/{image_id}/uploads/")
    published_as(glimpse, image_id, data)
    # The upload is over: it is no longer there to resume.
    assert httpx.head(uploader.url, headers=TUS, timeout=30).status_code == 404


def test_head_shows_the_offset_and_post_leaves_queued(glimpse: GlimpseServer) -> None:
    image_id = new_image(glimpse)
    response = create(glimpse, image_id, 10, **{"Upload-Metadata": "filename ZGlzay5yYXc="})
    assert response.status_code == 201
    assert response.headers["upload-expires"].endswith("GMT")
    url = response.headers["location"]
    assert image(glimpse, image_id)["status"] == "saving"
    assert send(url, 0, b"0123").status_code == 204
    head = httpx.head(url, headers=TUS, timeout=30)
    assert head.status_code == 200
    assert head.headers["upload-offset"] == "4"
    assert head.headers["upload-length"] == "10"
    assert head.headers["cache-control"] == "no-store"
    assert head.headers["tus-resumable"] == "1.0.0"
    assert "filename ZGlzay5yYXc=" in head.headers["upload-metadata"]


def test_protocol_errors_are_4xx_with_tus_resumable(glimpse: GlimpseServer) -> None:
    image_id = new_image(glimpse)
    url = created(glimpse, image_id, 10)
    wrong_version = httpx.patch(url, content=b"x", headers={**CHUNK, "Tus-Resumable": "0.2.2", "Upload-Offset": "0"})
    assert wrong_version.status_code == 412
    wrong_type = httpx.patch(
        url, content=b"x", headers={**TUS, "Content-Type": "application/octet-stream", "Upload-Offset": "0"}
    )
    assert wrong_type.status_code == 415
    assert send(url, 3, b"x").status_code == 409  # not the upload's offset
    assert send(url, 0, b"x" * 11).status_code == 413  # past Upload-Length
    missing = httpx.head(f"{glimpse.url}/v2/images/{image_id}/uploads/{'0' * 8}-0000-0000-0000-{'0' * 12}", headers=TUS)
    assert missing.status_code == 404
    for response in (wrong_version, wrong_type, missing):
        assert response.headers["tus-resumable"] == "1.0.0"
    assert create(glimpse, image_id, 10).status_code == 409  # one whole upload at a time
    assert create(glimpse, new_image(glimpse), -1).status_code == 400
    assert offset(url) == 0


def test_a_forged_upload_checksum_is_460_and_the_offset_stays(glimpse: GlimpseServer) -> None:
    image_id = new_image(glimpse)
    data = raw_disk_bytes(200_000)
    url = created(glimpse, image_id, len(data))
    forged = base64.b64encode(hashlib.sha1(b"something else").digest()).decode()
    response = send(url, 0, data[:100_000], **{"Upload-Checksum": f"sha1 {forged}"})
    assert response.status_code == 460
    assert offset(url) == 0
    honest = base64.b64encode(hashlib.sha256(data[:100_000]).digest()).decode()
    assert send(url, 0, data[:100_000], **{"Upload-Checksum": f"sha256 {honest}"}).status_code == 204
    assert send(url, 100_000, data[100_000:]).status_code == 204
    published_as(glimpse, image_id, data)


def test_termination_gives_the_image_back_with_nothing_stored(glimpse: GlimpseServer) -> None:
    image_id = new_image(glimpse)
    url = created(glimpse, image_id, MIB)
    assert send(url, 0, b"x" * 1000).status_code == 204
    response = httpx.delete(url, headers=TUS, timeout=30)
    assert response.status_code == 204
    assert image(glimpse, image_id)["status"] == "queued"
    assert not list((glimpse.data_dir / "images").glob(f"{image_id}*"))
    assert httpx.head(url, headers=TUS, timeout=30).status_code == 404
    # The image takes a new upload, or a plain PUT.
    put = httpx.put(
        f"{glimpse.url}/v2/images/{image_id}/file",
        content=b"y" * 10,
        headers={"Content-Type": "application/octet-stream"},
        timeout=30,
    )
    assert put.status_code == 204


def _raw_patch(server: GlimpseServer, url: str, at: int, total: int, sent: bytes) -> None:
    """A PATCH announcing `total` bytes whose client sends `sent` of them, then drops the connection."""
    path = url[len(server.url) :]
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        head = (
            f"PATCH {path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: {at}\r\n"
            f"Content-Type: application/offset+octet-stream\r\nContent-Length: {total}\r\n\r\n"
        )
        sock.sendall(head.encode() + sent)


def _offset_settled(url: str, at_least: int) -> int:
    """The offset once the server saw the client go (the cut PATCH commits what arrived)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = offset(url)
        if now >= at_least:
            return now
        time.sleep(0.1)
    return offset(url)


def test_a_connection_dropped_mid_patch_several_times_then_tuspy_resumes(
    glimpse: GlimpseServer, tmp_path: Path
) -> None:
    image_id = new_image(glimpse)
    data = raw_disk_bytes(8 * MIB + 3)
    url = created(glimpse, image_id, len(data))
    at = 0
    for cut in (MIB, 2 * MIB + 7, 3 * MIB):  # three cuts, each after part of a PATCH of everything left
        _raw_patch(glimpse, url, at, len(data) - at, data[at : at + cut])
        at = _offset_settled(url, at + cut)
        assert at == sum((MIB, 2 * MIB + 7, 3 * MIB)[: (MIB, 2 * MIB + 7, 3 * MIB).index(cut) + 1])
    path = tmp_path / "disk.raw"
    path.write_bytes(data)
    uploader = tus_client.TusClient(url).uploader(file_path=str(path), url=url)
    assert uploader.offset == at  # tuspy asked the server (HEAD)
    uploader.upload()
    published_as(glimpse, image_id, data)


CLIENT = """
import sys, time
from tusclient import client

url, path = sys.argv[1], sys.argv[2]
uploader = client.TusClient(url).uploader(file_path=path, url=url, chunk_size=256 * 1024)
print("resuming at", uploader.offset, flush=True)
start = uploader.offset
while uploader.offset < uploader.get_file_size():
    uploader.upload_chunk()
    if uploader.offset - start >= 1024 * 1024:
        print("sent a MiB", flush=True)
        start = 1 << 62
    time.sleep(0.05)
print("done", flush=True)
"""


def test_the_client_process_killed_mid_upload_resumes_in_a_new_process(glimpse: GlimpseServer, tmp_path: Path) -> None:
    image_id = new_image(glimpse)
    data = raw_disk_bytes(24 * MIB)  # room for three runs of a few MiB each, however late each kill comes
    path = tmp_path / "disk.raw"
    path.write_bytes(data)
    url = created(glimpse, image_id, len(data))
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    offsets = []
    for _ in range(3):  # killed three times, each part-way through (the client sends about 5 MiB/s)
        before = offset(url)
        proc = subprocess.Popen([sys.executable, str(script), url, str(path)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        while line and "sent a MiB" not in line:
            line = proc.stdout.readline()
        assert line, f"the client ended before it sent a MiB (exit status {proc.wait(10)})"
        time.sleep(0.3)
        proc.kill()
        proc.wait(10)
        offsets.append(_offset_settled(url, before + 1))
    assert 0 < offsets[0] < offsets[1] < offsets[2] < len(data)  # each run kept what it had sent
    finish = subprocess.run([sys.executable, str(script), url, str(path)], capture_output=True, text=True, timeout=120)
    assert finish.returncode == 0, finish.stderr
    assert f"resuming at {offsets[-1]}" in finish.stdout
    published_as(glimpse, image_id, data)


def test_racing_patches_one_wins_the_other_is_409(glimpse: GlimpseServer) -> None:
    image_id = new_image(glimpse)
    data = raw_disk_bytes(4 * MIB)
    url = created(glimpse, image_id, len(data))
    path = url[len(glimpse.url) :]
    # The first PATCH sends part of its body and keeps its connection open: it holds the upload.
    sock = socket.create_connection(("127.0.0.1", glimpse.port), timeout=30)
    head = (
        f"PATCH {path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
        f"Content-Type: application/offset+octet-stream\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    sock.sendall(head.encode() + data[:MIB])
    time.sleep(1)
    second = send(url, 0, b"Z" * MIB)
    assert second.status_code == 409
    sock.sendall(data[MIB:])
    answer = sock.recv(4096).decode()
    sock.close()
    assert answer.startswith("HTTP/1.1 204")
    published_as(glimpse, image_id, data)  # never a Z among them


def test_concatenation_of_three_partial_uploads_sent_in_parallel(glimpse: GlimpseServer) -> None:
    image_id = new_image(glimpse)
    parts = [raw_disk_bytes(n) for n in (3 * MIB, 2 * MIB + 5, 1000)]
    with ThreadPoolExecutor(3) as pool:  # created at once: one takes the image out of queued, the others join it
        urls = list(pool.map(lambda p: created(glimpse, image_id, len(p), **{"Upload-Concat": "partial"}), parts))
    assert httpx.head(urls[0], headers=TUS).headers["upload-concat"] == "partial"
    with ThreadPoolExecutor(3) as pool:
        statuses = list(pool.map(lambda pair: send(pair[0], 0, pair[1]).status_code, zip(urls, parts, strict=True)))
    assert statuses == [204, 204, 204]
    assert image(glimpse, image_id)["status"] == "saving"
    final = httpx.post(
        f"{glimpse.url}/v2/images/{image_id}/uploads",
        headers={**TUS, "Upload-Concat": "final;" + " ".join(urls)},
        timeout=60,
    )
    assert final.status_code == 201, final.text
    published_as(glimpse, image_id, b"".join(parts))


def test_a_qcow2_with_a_backing_file_is_refused_at_the_end(glimpse: GlimpseServer, tmp_path: Path) -> None:
    image_id = new_image(glimpse, disk_format="qcow2")
    data = images.qcow2_with_backing_file(tmp_path).read_bytes()
    url = created(glimpse, image_id, len(data))
    half = len(data) // 2
    assert send(url, 0, data[:half]).status_code == 204
    refused = send(url, half, data[half:])
    assert refused.status_code == 400
    assert "backing" in refused.text.lower() or "safe" in refused.text.lower()
    shown = image(glimpse, image_id)
    assert shown["status"] == "queued"
    assert shown["checksum"] is None
    assert not list((glimpse.data_dir / "images").glob(f"{image_id}*"))


def _repr_digest(data: bytes) -> str:
    return f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"


def test_repr_digest_on_the_post_or_the_last_patch_is_honoured(glimpse: GlimpseServer) -> None:
    data = raw_disk_bytes(300_000)
    lying = new_image(glimpse)
    url = created(glimpse, lying, len(data), **{"Repr-Digest": _repr_digest(b"other data")})
    assert send(url, 0, data[:1000]).status_code == 204
    refused = send(url, 1000, data[1000:])
    assert refused.status_code == 400
    assert "Repr-Digest" in refused.text
    assert image(glimpse, lying)["status"] == "queued"
    assert not list((glimpse.data_dir / "images").glob(f"{lying}*"))

    honest = new_image(glimpse)
    url = created(glimpse, honest, len(data))
    assert send(url, 0, data[:1000]).status_code == 204
    wrong = send(url, 1000, data[1000:], **{"Repr-Digest": _repr_digest(data[:-1])})
    assert wrong.status_code == 400
    assert image(glimpse, honest)["status"] == "queued"
    url = created(glimpse, honest, len(data), **{"Repr-Digest": _repr_digest(data)})
    assert send(url, 0, data, **{"Repr-Digest": _repr_digest(data)}).status_code == 204
    published_as(glimpse, honest, data)
    assert create(glimpse, new_image(glimpse), 10, **{"Repr-Digest": "sha-256=not-bytes"}).status_code == 400


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlimpseServer]:
    conf = f"image_size_cap = {4 * MIB}\nuser_storage_quota = {6 * MIB}B\n"
    server = GlimpseServer(tmp_path_factory.mktemp("tus-limited"), extra_conf=conf).start()
    yield server
    server.stop()


def test_the_size_cap_and_the_quota_refuse_early_and_release_on_every_end(limited: GlimpseServer) -> None:
    project = {"X-Project-Id": uuid.uuid4().hex, "X-Roles": "member,reader"}
    image_id = new_image(limited, **project)
    discovered = httpx.options(f"{limited.url}/v2/images/{image_id}/uploads", headers=project)
    assert int(discovered.headers["tus-max-size"]) == 4 * MIB  # the cap, below the quota left
    assert create(limited, image_id, 4 * MIB + 1, **project).status_code == 413
    assert image(limited, image_id, **project)["status"] == "queued"
    # Two partial uploads of 3 MiB each fit the quota of 6 MiB; a third one, mid-way, does not.
    first = created(limited, image_id, 3 * MIB, **{"Upload-Concat": "partial"}, **project)
    second = created(limited, image_id, 3 * MIB, **{"Upload-Concat": "partial"}, **project)
    assert create(limited, image_id, 1, **{"Upload-Concat": "partial"}, **project).status_code == 413
    other = new_image(limited, **project)
    assert create(limited, other, MIB, **project).status_code == 413  # the 6 MiB are reserved already
    assert httpx.patch(first, content=b"a" * MIB, headers={**CHUNK, "Upload-Offset": "0", **project}).status_code == 204
    # The joined parts would pass image_size_cap: refused, and everything released.
    assert httpx.patch(second, content=b"b" * 3 * MIB, headers={**CHUNK, "Upload-Offset": "0", **project}).is_success
    assert httpx.patch(
        first, content=b"a" * 2 * MIB, headers={**CHUNK, "Upload-Offset": str(MIB), **project}
    ).is_success
    final = httpx.post(
        f"{limited.url}/v2/images/{image_id}/uploads",
        headers={**TUS, "Upload-Concat": f"final;{first} {second}", **project},
    )
    assert final.status_code == 413
    assert image(limited, image_id, **project)["status"] == "queued"
    assert not list((limited.data_dir / "images").glob(f"{image_id}*"))
    # Nothing is held any more: the other image takes its upload now.
    url = created(limited, other, MIB, **project)
    assert httpx.patch(url, content=b"c" * MIB, headers={**CHUNK, "Upload-Offset": "0", **project}).status_code == 204
    assert image(limited, other, **project)["status"] == "active"
