"""Downloading an image from a URL for web-download, without letting the URL reach what it must not.

Every URL, and every redirect target, is checked before any connection: its scheme, host and port
against the operator's allow and deny lists ([import_filtering_opts], as Glance names them), and the
addresses its host resolves to: loopback, private, link-local, multicast and reserved addresses are
refused unless the operator allows private addresses. Numeric tricks (decimal, hex or octal hosts) end
up as addresses and are judged as such.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from glimpse.errors import BadRequest

MAX_REDIRECTS = 5
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class UrlFilter:
    allowed_schemes: tuple[str, ...] = ("http", "https")
    disallowed_schemes: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    disallowed_hosts: tuple[str, ...] = ()
    allowed_ports: tuple[int, ...] = (80, 443)
    disallowed_ports: tuple[int, ...] = ()
    allow_private_addresses: bool = False

    def check(self, url: str) -> None:
        """Raise BadRequest naming why `url` may not be fetched."""
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
        try:
            port = parts.port or {"http": 80, "https": 443, "ftp": 21}.get(scheme)
        except ValueError:
            raise BadRequest(f"URL {url} has an invalid port.") from None
        if not host:
            raise BadRequest(f"URL {url} names no host.")
        if scheme in self.disallowed_schemes or (self.allowed_schemes and scheme not in self.allowed_schemes):
            raise BadRequest(f"The scheme {scheme or 'none'} of {url} is not allowed for web-download.")
        if host in self.disallowed_hosts or (self.allowed_hosts and host not in self.allowed_hosts):
            raise BadRequest(f"The host {host} is not allowed for web-download.")
        if port in self.disallowed_ports or (self.allowed_ports and port not in self.allowed_ports):
            raise BadRequest(f"The port {port} is not allowed for web-download.")
        if not self.allow_private_addresses:
            for address in _addresses(host, port or 0):
                if _is_internal(address):
                    raise BadRequest(f"The host {host} resolves to {address}, an internal address; refused.")


def _addresses(host: str, port: int) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        raise BadRequest(f"The host {host} could not be resolved.") from None
    return {ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}


def _is_internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def download(url: str, url_filter: UrlFilter, timeout: float = 30.0) -> Iterator[bytes]:
    """Stream the body of `url`, following redirects only to URLs the filter accepts."""
    import httpx  # loaded when an import first downloads, not by every API process

    with httpx.Client(follow_redirects=False, timeout=timeout) as client:
        for _ in range(MAX_REDIRECTS + 1):
            url_filter.check(url)
            with client.stream("GET", url) as response:
                if response.is_redirect:
                    url = urljoin(url, response.headers.get("location", ""))
                    continue
                if response.status_code != 200:
                    raise BadRequest(f"Downloading {url} failed: the server answered {response.status_code}.")
                yield from response.iter_bytes(CHUNK)
                return
        raise BadRequest(f"Too many redirects downloading {url}.")
