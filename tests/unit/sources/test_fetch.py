"""Fetching under the egress policy against real servers on loopback: pinning, redirects, slowness, size."""

from __future__ import annotations

import datetime
import os
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from glimpse.errors import BadRequest, StoreError, StoreUnavailable, TooLarge
from glimpse.sources import fetch, remote_glance, web
from glimpse.sources.egress import EgressPolicy, Limits
from glimpse.store.http import HttpStore
from tests.functional.http_server import FileServer

DATA = os.urandom(200_000)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileServer]:
    root = tmp_path_factory.mktemp("egress")
    (root / "data").write_bytes(DATA)
    (root / "small").write_bytes(b"0123456789" * 10)
    with FileServer(root, drip_every=0.2) as server:
        yield server


def _open_to(port: int, **kwargs: Any) -> EgressPolicy:
    """A policy that trusts loopback only in the ways a test names; any port."""
    return EgressPolicy(allowed_ports=(), **kwargs)


def _rebinding(monkeypatch: pytest.MonkeyPatch, host: str, answers: list[str]) -> list[str]:
    """getaddrinfo answers `answers` in turn for `host` (the last one forever); everything else is real."""
    asked: list[str] = []
    real = socket.getaddrinfo

    def fake(name: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if name != host:
            return real(name, port, *args, **kwargs)
        asked.append(name)
        answer = answers[min(len(asked), len(answers)) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer, port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return asked


def test_loopback_is_refused_by_default_and_never_contacted(files: FileServer) -> None:
    before = len(files.hits)
    for url in (f"{files.url}/files/data", f"http://localhost:{files.port}/files/data",
                f"http://[::ffff:127.0.0.1]:{files.port}/files/data"):  # fmt: skip
        with pytest.raises(BadRequest, match="internal address"):
            web.download(url, _open_to(files.port))
    assert len(files.hits) == before


def test_dns_rebinding_cannot_move_a_checked_connection(files: FileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # The API's check sees a public address; the fetch resolves again and gets loopback: refused, not fetched.
    asked = _rebinding(monkeypatch, "rebind.test", ["93.184.216.34", "127.0.0.1"])
    policy = _open_to(files.port)
    url = f"http://rebind.test:{files.port}/files/data"
    policy.vet(url)
    before = len(files.hits)
    with pytest.raises(BadRequest, match="internal address"):
        web.download(url, policy)
    assert len(files.hits) == before and asked == ["rebind.test", "rebind.test"]


def test_the_connection_goes_to_the_address_that_was_judged(files: FileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # Resolved once, judged, connected to: a second answer (a black hole) is never used.
    asked = _rebinding(monkeypatch, "pinned.test", ["127.0.0.1", "10.255.255.1"])
    policy = _open_to(files.port, allowed_hosts=("pinned.test",), limits=Limits(connect_timeout=2))
    assert b"".join(web.download(f"http://pinned.test:{files.port}/files/data", policy)) == DATA
    assert asked == ["pinned.test"]
    assert files.hits[-1] == "/files/data"


def test_every_redirect_is_judged_by_the_whole_policy(files: FileServer) -> None:
    target = f"{files.url}/files/data"
    # An explicitly allowed host redirecting to another (internal) host: refused.
    allowed = _open_to(files.port, allowed_hosts=("localhost",))
    with pytest.raises(BadRequest, match="not allowed"):
        web.download(f"http://localhost:{files.port}/redirect?to={target}", allowed)
    # A trusted origin (as a glance-download endpoint is) redirecting to loopback elsewhere: internal, refused.
    trusted = EgressPolicy().trusting(f"http://localhost:{files.port}")
    for elsewhere in (target, f"http://[::ffff:127.0.0.1]:{files.port}/files/data", "http://100.64.0.1/x",
                      "file:///etc/passwd", "http://[::1"):  # fmt: skip
        with pytest.raises(BadRequest):
            web.download(f"http://localhost:{files.port}/redirect?to={elsewhere}", trusted)
    # Within the trusted origin, redirects are fine.
    same = f"http://localhost:{files.port}/files/data"
    assert b"".join(web.download(f"http://localhost:{files.port}/redirect?to={same}", trusted)) == DATA


def test_redirect_loops_end(files: FileServer) -> None:
    policy = _open_to(files.port, allow_private_addresses=True)
    url = f"{files.url}/files/data"
    for _ in range(6):
        url = f"{files.url}/redirect?to={url.replace('?', '%3F').replace('=', '%3D')}"
    with pytest.raises(BadRequest, match="redirects"):
        web.download(url, policy)


def test_a_dripping_server_is_cut_off_by_the_minimum_rate(files: FileServer) -> None:
    limits = Limits(min_rate=1000, rate_window=1.0, read_timeout=5)
    policy = _open_to(files.port, allow_private_addresses=True, limits=limits)
    started = time.monotonic()
    with pytest.raises(fetch.TransferTooSlow, match="bytes/s"):
        for _ in web.download(f"{files.url}/drip/small", policy):
            pass
    assert time.monotonic() - started < 60  # it ends (the drip alone would take 20 s)


def test_the_total_deadline_ends_any_transfer(files: FileServer) -> None:
    limits = Limits(min_rate=0, total_timeout=1.0)
    policy = _open_to(files.port, allow_private_addresses=True, limits=limits)
    with pytest.raises(fetch.TransferTooSlow, match="within 1 seconds"):
        for _ in web.download(f"{files.url}/drip/small", policy):
            pass


def test_the_body_is_bounded_while_it_streams(files: FileServer) -> None:
    policy = _open_to(files.port, allow_private_addresses=True)
    with pytest.raises(TooLarge):
        for _ in web.download(f"{files.url}/files/data", policy, max_bytes=len(DATA) - 1):
            pass
    assert b"".join(web.download(f"{files.url}/files/data", policy, max_bytes=len(DATA))) == DATA


def test_http_store_reads_under_the_policy(files: FileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"{files.url}/files/data"
    with pytest.raises(StoreError, match="port"):
        HttpStore("web").size(url)
    with pytest.raises(StoreError, match="internal address"):
        HttpStore("web", egress=EgressPolicy(allowed_ports=())).size(url)
    trusted = HttpStore("web", egress=EgressPolicy().trusting(f"127.0.0.1:{files.port}"))
    assert trusted.size(url) == len(DATA)
    assert b"".join(trusted.get(url, 10, 20)) == DATA[10:30]
    with pytest.raises(StoreError, match="does not pass filtering"):  # a trusted server cannot redirect elsewhere
        trusted.size(f"{files.url}/redirect?to=http://localhost:{files.port}/files/data")
    slow = EgressPolicy(limits=Limits(min_rate=1000, rate_window=1.0)).trusting(f"127.0.0.1:{files.port}")
    with pytest.raises(StoreUnavailable, match="bytes/s"):
        b"".join(HttpStore("web", egress=slow).get(f"{files.url}/drip/small"))
    _rebinding(monkeypatch, "rebind.test", ["127.0.0.1"])
    with pytest.raises(StoreError, match="internal address"):
        HttpStore("web", egress=EgressPolicy(allowed_ports=())).size(f"http://rebind.test:{files.port}/files/data")


def test_glance_download_trusts_its_endpoint_but_bounds_it(files: FileServer) -> None:
    endpoint = f"http://127.0.0.1:{files.port}"
    with pytest.raises(BadRequest, match="image id"):
        remote_glance.download(endpoint, "../../files/data", None, EgressPolicy())
    with pytest.raises(BadRequest, match="404"):  # reached (trusted), though loopback and on an odd port
        remote_glance.download(endpoint, "abc", None, EgressPolicy())


def test_an_unreachable_server_is_a_bad_request(tmp_path: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(fetch.Unreachable):
        web.download(f"http://127.0.0.1:{port}/x", _open_to(port, allow_private_addresses=True))


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def test_pinned_tls_still_checks_the_certificate_against_the_host_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = _self_signed(tmp_path, "pinned.test")
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "data").write_bytes(DATA)
    server = FileServer(tmp_path / "root")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.httpd.socket = context.wrap_socket(server.httpd.socket, server_side=True)
    with server:
        asked = _rebinding(monkeypatch, "pinned.test", ["127.0.0.1", "10.255.255.1"])
        policy = _open_to(server.port, allowed_hosts=("pinned.test",), limits=Limits(connect_timeout=2))
        with fetch.open_url(policy, f"https://pinned.test:{server.port}/files/data", verify=str(cert)) as transfer:
            assert transfer.read(len(DATA)) == DATA
        assert asked == ["pinned.test"]  # connected to the address judged, not to a second answer
        assert server.hosts[-1] == f"pinned.test:{server.port}"  # the name, not the address, in Host
        # The same server by its address: the certificate names pinned.test, so TLS refuses it.
        by_address = _open_to(server.port, allow_private_addresses=True)
        with pytest.raises(fetch.Unreachable, match=r"(?i)certificate"):
            fetch.open_url(by_address, f"https://127.0.0.1:{server.port}/files/data", verify=str(cert))


def test_credentials_never_follow_a_redirect_to_another_origin(files: FileServer) -> None:
    policy = _open_to(files.port, allow_private_addresses=True)
    token = {"X-Auth-Token": "caller-token"}
    same = f"http://127.0.0.1:{files.port}/files/data"
    with fetch.open_url(policy, f"{files.url}/redirect?to={same}", headers=token) as transfer:
        assert transfer.status_code == 200
    assert files.tokens[-2:] == ["caller-token", "caller-token"]
    other = f"http://localhost:{files.port}/files/data"
    with fetch.open_url(policy, f"{files.url}/redirect?to={other}", headers=token) as transfer:
        assert transfer.status_code == 200
    assert files.tokens[-2:] == ["caller-token", None]


def test_through_a_proxy_the_destination_is_still_judged(files: FileServer) -> None:
    store = HttpStore("web", egress=EgressPolicy(allowed_ports=()), proxies={"http": "http://127.0.0.1:9"})
    with pytest.raises(StoreError, match="internal address"):
        store.size(f"http://localhost:{files.port}/files/data")
