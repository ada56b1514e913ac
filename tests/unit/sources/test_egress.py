"""The egress policy's judgement of URLs and addresses (no network: resolution is faked where needed)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from glimpse.errors import BadRequest
from glimpse.sources.egress import EgressPolicy, is_internal, parse

INTERNAL = [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "100.127.255.254", "0.0.0.0", "0.1.2.3",
    "169.254.169.254", "192.0.0.8", "192.0.2.1", "198.18.0.1", "198.19.255.1", "198.51.100.7", "203.0.113.9",
    "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
    "::", "::1", "::ffff:127.0.0.1", "::ffff:8.8.8.8", "::127.0.0.1", "64:ff9b::7f00:1", "64:ff9b::a00:1",
    "64:ff9b:1::808:808", "2002:7f00:1::1", "2002:a00:1::", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "fec0::1", "fc00::1", "fd12:3456::1", "fe80::1", "ff02::1", "ff0e::1", "2001:db8::1", "100::1",
]  # fmt: skip
GLOBAL = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700::1111", "2001:4860:4860::8888", "64:ff9b::808:808",
          "2002:808:808::1"]  # fmt: skip


@pytest.mark.parametrize("address", INTERNAL)
def test_every_non_global_address_is_internal(address: str) -> None:
    assert is_internal(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", GLOBAL)
def test_global_unicast_addresses_pass(address: str) -> None:
    assert not is_internal(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url",
    ["http://[::1", "http://[::1]x/", "http://host:99999/", "http://host:port/", "http://héllo.example/",
     "http://exa mple/", "http://", "http:///path", "//host/x", "", "http://ex\x00ample/", "http://[zz::1]/",
     "http://-bad-.example/"],
)  # fmt: skip
def test_malformed_urls_are_bad_requests(url: str) -> None:
    with pytest.raises(BadRequest):
        EgressPolicy(allowed_ports=()).vet(url)


def _resolving(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    asked: list[str] = []
    real = socket.getaddrinfo

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in answers:
            return real(host, port, *args, **kwargs)
        asked.append(host)
        answer = answers[host][min(len(asked), len(answers[host])) - 1]
        family = socket.AF_INET6 if ":" in answer else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (answer, port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return asked


def test_a_host_resolving_to_cgnat_or_any_internal_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolving(monkeypatch, {"cgnat.example": ["100.64.0.1"], "mixed.example": ["8.8.8.8", "10.0.0.1"]})
    policy = EgressPolicy()
    for url in ("http://100.64.0.1/x", "http://cgnat.example/x", "http://[::ffff:127.0.0.1]/x", "http://0x7f.1/x"):
        with pytest.raises(BadRequest, match="internal address"):
            policy.vet(url)
    real = socket.getaddrinfo

    def both(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "mixed.example":
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in ("8.8.8.8", "10.0.0.1")]

    monkeypatch.setattr(socket, "getaddrinfo", both)
    with pytest.raises(BadRequest, match=r"10\.0\.0\.1"):  # one internal address among several is enough
        policy.vet("http://mixed.example/x")


def test_lists_of_schemes_hosts_and_ports() -> None:
    policy = EgressPolicy(disallowed_hosts=("evil.example",), disallowed_ports=(8080,), allowed_ports=())
    for url in ("ftp://example.com/x", "file:///etc/passwd", "gopher://example.com/", "http://evil.example/x",
                "http://example.com:8080/x"):  # fmt: skip
        with pytest.raises(BadRequest):
            policy.check(url)
    assert policy.check("https://EXAMPLE.com:8443/x").host == "example.com"
    only = EgressPolicy(allowed_hosts=("images.example",))
    with pytest.raises(BadRequest, match="not allowed"):
        only.check("http://other.example/x")
    with pytest.raises(BadRequest, match="port 22"):
        only.check("http://images.example:22/x")
    no_http = EgressPolicy(allowed_schemes=("https",))
    with pytest.raises(BadRequest, match="scheme http"):
        no_http.check("http://example.com/")


def test_private_addresses_only_where_the_operator_says(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolving(monkeypatch, {"mirror.internal": ["10.0.0.5"], "other.internal": ["10.0.0.6"]})
    with pytest.raises(BadRequest):
        EgressPolicy().vet("http://mirror.internal/x")
    assert EgressPolicy(allow_private_addresses=True).vet("http://mirror.internal/x").host == "mirror.internal"
    listed = EgressPolicy(allowed_hosts=("mirror.internal", "other.example"))
    assert listed.vet("http://mirror.internal/x").port == 80  # explicitly listed: may be internal
    trusted = EgressPolicy().trusting("http://mirror.internal:9292", "[fd00::1]:8080")
    assert trusted.vet("http://mirror.internal:9292/v2/images").port == 9292  # any port, internal allowed
    with pytest.raises(BadRequest):
        trusted.vet("http://mirror.internal:9293/x")  # another port of the same host is not the trusted origin
    with pytest.raises(BadRequest):
        trusted.vet("http://other.internal/x")
    assert trusted.check("http://[fd00::1]:8080/x").host == "fd00::1"
    with pytest.raises(BadRequest):
        trusted.check("ftp://mirror.internal:9292/x")


def test_parse_keeps_ipv6_literals_and_default_ports() -> None:
    assert parse("https://[2001:db8::1]/x").host == "2001:db8::1"
    assert parse("https://[2001:db8::1]/x").port == 443
    assert parse("http://example.com./x").host == "example.com"
    with pytest.raises(BadRequest):
        parse("http://127.0.0.1\\@example.com/")  # one backslash: some parsers end the host there
    with pytest.raises(BadRequest, match="not allowed"):
        EgressPolicy(disallowed_hosts=("evil.example",)).check("http://EVIL.example./x")
