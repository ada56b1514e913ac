"""The store's backend goes away under a running server and comes back (a real S3 server, moto_server, reached
through a TCP proxy the test stops and starts again).

Meanwhile: a download or an upload is a 503 telling the caller to retry, without the backend's endpoint or bucket
(those go to the log); an upload leaves its image queued; a delete is done as asked (the image is gone: telling the
client 503 would have it retry a delete that happened), its data left in the bucket, logged, and recorded as still to
remove. Once the backend is back, the same server uploads and serves again, and `glimpse scrub` removes the data the
delete left (`glimpse store gc` leaves it alone: it is recorded, not unknown).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.contract.fixtures import s3_server  # noqa: F401  (a real server, once per run)
from tests.contract.servers import ACCESS_KEY, SECRET_KEY, S3Server
from tests.functional.server import GlimpseServer
from tests.functional.tcp_proxy import TcpProxy

OCTETS = {"Content-Type": "application/octet-stream"}
JSON = {"Accept": "application/json"}


def _objects(s3: S3Server, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket).get("Contents", []))


@pytest.fixture(params=[300])
def behind_proxy(
    s3_server: S3Server,  # noqa: F811
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[tuple[GlimpseServer, TcpProxy, str]]:
    bucket = f"glimpse-{uuid.uuid4().hex[:12]}"
    proxy = TcpProxy(int(s3_server.url.rsplit(":", 1)[1])).__enter__()
    conf = (
        f"[DEFAULT]\nwakeup_time = {request.param}\n"
        "[glance_store]\nstores = s3\ndefault_store = s3\n"
        f"s3_store_host = http://127.0.0.1:{proxy.port}\ns3_store_access_key = {ACCESS_KEY}\n"
        f"s3_store_secret_key = {SECRET_KEY}\ns3_store_bucket = {bucket}\ns3_store_create_bucket_on_put = true\n"
        "s3_store_bucket_url_format = path\n"
    )
    server = GlimpseServer(tmp_path, extra_conf=conf).start()
    try:
        yield server, proxy, bucket
    finally:
        server.stop()
        proxy.__exit__()


def _new_image(server: GlimpseServer) -> str:
    return str(
        httpx.post(f"{server.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()["id"]
    )


def _uploaded(server: GlimpseServer) -> str:
    image_id = _new_image(server)
    put = httpx.put(f"{server.url}/v2/images/{image_id}/file", content=os.urandom(1 << 20), headers=OCTETS)
    assert put.status_code == 204, put.text
    return image_id


def test_an_s3_outage_is_a_503_without_its_insides_and_a_delete_still_deletes(
    behind_proxy: tuple[GlimpseServer, TcpProxy, str],
    s3_server: S3Server,  # noqa: F811
) -> None:
    server, proxy, bucket = behind_proxy
    first = _uploaded(server)
    assert _objects(s3_server, bucket) == [first]

    proxy.__exit__()  # S3 is away
    download = httpx.get(f"{server.url}/v2/images/{first}/file", headers=JSON)
    second = _new_image(server)
    upload = httpx.put(f"{server.url}/v2/images/{second}/file", content=os.urandom(1 << 20), headers={**OCTETS, **JSON})
    for answer in (download, upload):
        assert answer.status_code == 503, answer.text
        message = answer.json()["message"]
        assert "try again later" in message
        assert str(proxy.port) not in message and bucket not in message  # the backend's insides stay in the log
    assert httpx.get(f"{server.url}/v2/images/{second}").json()["status"] == "queued"
    deleted = httpx.delete(f"{server.url}/v2/images/{first}")
    assert deleted.status_code == 204, deleted.text
    assert httpx.get(f"{server.url}/v2/images/{first}").status_code == 404
    log = server.log.read_text()
    assert f"127.0.0.1:{proxy.port}" in log  # the operator sees where
    assert "it is left in its store: `glimpse scrub` removes it" in log

    proxy = TcpProxy(proxy.target[1], port=proxy.port).__enter__()  # back, at the same address
    try:
        data = os.urandom(1 << 20)
        assert httpx.put(f"{server.url}/v2/images/{second}/file", content=data, headers=OCTETS).status_code == 204
        assert httpx.get(f"{server.url}/v2/images/{second}/file").content == data
        assert _objects(s3_server, bucket) == sorted([first, second])  # the deleted image's data, left behind
        collected = server.command("store", "gc", "--apply")
        assert collected.returncode == 0, collected.stdout + collected.stderr
        assert _objects(s3_server, bucket) == sorted([first, second])  # recorded for the scrubber: not gc's
        scrubbed = server.command("scrub")
        assert scrubbed.returncode == 0, scrubbed.stdout + scrubbed.stderr
        assert "1 cop" in scrubbed.stdout, scrubbed.stdout
        assert _objects(s3_server, bucket) == [second]
        again = server.command("scrub")
        assert again.returncode == 0 and "0 cop" in again.stdout, again.stdout + again.stderr  # nothing left to do
        assert httpx.get(f"{server.url}/v2/images/{first}").status_code == 404
    finally:
        proxy.__exit__()


@pytest.mark.parametrize("behind_proxy", [1], indirect=True)  # the server retries every second
def test_the_server_itself_removes_what_a_delete_left_once_the_store_is_back(
    behind_proxy: tuple[GlimpseServer, TcpProxy, str],
    s3_server: S3Server,  # noqa: F811
) -> None:
    server, proxy, bucket = behind_proxy
    image = _uploaded(server)
    proxy.__exit__()  # S3 is away
    assert httpx.delete(f"{server.url}/v2/images/{image}").status_code == 204
    time.sleep(3)  # a few of the server's retries fail meanwhile: the data stays recorded
    proxy = TcpProxy(proxy.target[1], port=proxy.port).__enter__()  # back
    try:
        deadline = time.monotonic() + 30
        while _objects(s3_server, bucket) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _objects(s3_server, bucket) == []  # removed with no `glimpse scrub` run
        log = server.log.read_text()
        assert "Data earlier deletes left: 1 copies removed" in log
        assert "Data earlier deletes left: 0 copies removed, 1 image(s) still waiting for their store" in log
        assert "Scrub of image" not in log  # while the store was away: a line a pass, not one per image
        again = server.command("scrub")
        assert again.returncode == 0 and "0 cop" in again.stdout, again.stdout  # nothing left for a scrubber
    finally:
        proxy.__exit__()
