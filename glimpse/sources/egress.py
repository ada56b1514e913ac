"""The one egress policy every server-side fetch obeys: which URLs may be fetched, and to which addresses.

A URL is judged in two steps. `check` parses it and applies the operator's scheme, host and port lists
([import_filtering_opts], Glance's names) without touching DNS. `addresses` resolves the host once and
judges every address it gets: anything not globally routable (loopback, private, CGNAT, link-local,
site-local, ULA, multicast, reserved, benchmarking, IPv4 embedded in IPv6 ...) is refused, unless the
operator allows private addresses or lists the host explicitly in allowed_hosts. The fetcher
(sources/fetch.py) connects to exactly the addresses `addresses` returned, so a name that resolves
differently a second time cannot move the connection elsewhere.

Origins the operator configured himself (a glance-download region endpoint, an internal web server the
http store reads) are trusted: any address and port, but still pinned, bounded and redirect-checked.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from glimpse.errors import BadRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?$")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")
# Special-purpose IPv4 blocks refused whatever this Python's ipaddress thinks of them (its tables vary by version).
_V4_SPECIAL = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
        "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    )
)  # fmt: skip


@dataclass(frozen=True)
class Limits:
    """How long and how slowly a fetch may run (the [egress] options)."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0  # longest wait for any single read
    min_rate: int = 10 * 1024  # bytes per second, averaged over the time spent waiting on the server
    rate_window: float = 30.0  # seconds of waiting after which min_rate is judged
    total_timeout: float = 12 * 3600.0  # wall clock of the whole fetch, redirects included
    max_redirects: int = 5


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str  # lower case; an IPv6 literal without brackets
    port: int


@dataclass(frozen=True)
class EgressPolicy:
    allowed_schemes: tuple[str, ...] = ("http", "https")
    disallowed_schemes: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    disallowed_hosts: tuple[str, ...] = ()
    allowed_ports: tuple[int, ...] = (80, 443)
    disallowed_ports: tuple[int, ...] = ()
    allow_private_addresses: bool = False
    trusted: frozenset[tuple[str, int | None]] = frozenset()  # (host, port or None for any port)
    refused: frozenset[tuple[str, int | None]] = frozenset()  # this service's own endpoints, whatever else says
    limits: Limits = field(default_factory=Limits)

    def trusting(self, *origins: str) -> EgressPolicy:
        """This policy, also trusting the operator's own origins: URLs, `host:port` or bare hosts."""
        return replace(self, trusted=self.trusted | {_origin(o) for o in origins})

    def refusing(self, *origins: str) -> EgressPolicy:
        """This policy, never fetching from these origins (the service's own endpoints), trusted or not."""
        return replace(self, refused=self.refused | {_origin(o) for o in origins})

    def is_trusted(self, host: str, port: int) -> bool:
        return (host, port) in self.trusted or (host, None) in self.trusted

    def check(self, url: str) -> Target:
        """Parse `url` and apply the scheme, host and port lists; raise BadRequest naming the reason."""
        target = parse(url)
        scheme, host, port = target.scheme, target.host, target.port
        if (host, port) in self.refused or (host, None) in self.refused:
            raise BadRequest(f"{host}:{port} is this image service's own endpoint; it never fetches from itself.")
        if self.is_trusted(host, port):
            if scheme not in ("http", "https"):
                raise BadRequest(f"The scheme {scheme} of {url} is not allowed.")
            return target
        if scheme in self.disallowed_schemes or (self.allowed_schemes and scheme not in self.allowed_schemes):
            raise BadRequest(f"The scheme {scheme} of {url} is not allowed.")
        if scheme not in ("http", "https"):
            raise BadRequest(f"The scheme {scheme} of {url} cannot be fetched by this service.")
        if host in self.disallowed_hosts or (self.allowed_hosts and host not in self.allowed_hosts):
            raise BadRequest(f"The host {host} is not allowed.")
        if port in self.disallowed_ports or (self.allowed_ports and port not in self.allowed_ports):
            raise BadRequest(f"The port {port} is not allowed.")
        return target

    def addresses(self, host: str, port: int) -> list[Address]:
        """Resolve `host` once and judge every address; the caller must connect to one of these only."""
        found = resolve(host, port)
        for address in found:  # a disallowed address stays disallowed under another spelling (2130706433...)
            if str(address) in self.disallowed_hosts and not self.is_trusted(host, port):
                raise BadRequest(f"The host {host} resolves to {address}, which is not allowed.")
        if self.allow_private_addresses or host in self.allowed_hosts or self.is_trusted(host, port):
            return found
        for address in found:
            if is_internal(address):
                raise BadRequest(f"The host {host} resolves to {address}, an internal address; refused.")
        return found

    def vet(self, url: str) -> Target:
        """Everything that can be judged before connecting: the lists and the addresses the host has now."""
        target = self.check(url)
        self.addresses(target.host, target.port)
        return target


def parse(url: str) -> Target:
    """Split an http(s) URL; anything malformed is a BadRequest, never an exception of the parser."""
    if not isinstance(url, str) or not url or len(url) > 8192 or not url.isascii() or not url.isprintable():
        raise BadRequest("The URL is missing, too long or not plain ASCII.")
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        port = parts.port
        host = (parts.hostname or "").lower()
    except ValueError as exc:
        raise BadRequest(f"The URL {url} is malformed: {exc}.") from None
    if not scheme or not parts.netloc:
        raise BadRequest(f"The URL {url} names no scheme or host.")
    if not host:
        raise BadRequest(f"The URL {url} names no host.")
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise BadRequest(f"The host of {url} is not a valid IPv6 address.") from None
    elif not _HOSTNAME.match(host) or "\\" in parts.netloc:
        raise BadRequest(f"The host {host} of {url} is not a valid host name.")
    else:
        host = host.rstrip(".")  # "example.com." is example.com, for the lists too
    port = port or DEFAULT_PORTS.get(scheme)
    if not port:
        raise BadRequest(f"The URL {url} has no usable port.")
    return Target(url, scheme, host, port)


def _origin(entry: str) -> tuple[str, int | None]:
    """A URL, or `host`, `host:port`, `[v6]` or `[v6]:port` as the operator writes them."""
    if "://" in entry:
        target = parse(entry.strip())
        return target.host, target.port
    entry = entry.strip().lower().rstrip(".")
    host, sep, port = entry.rpartition(":")
    if not sep or not port.isdigit() or (":" in host and not host.endswith("]")):
        return entry.strip("[]"), None
    return host.strip("[]"), int(port)


def resolve(host: str, port: int) -> list[Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError):
        raise BadRequest(f"The host {host} could not be resolved.") from None
    found: list[Address] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in found:
            found.append(address)
    if not found:
        raise BadRequest(f"The host {host} could not be resolved.")
    return found


def is_internal(address: Address) -> bool:
    """Whether `address` is anything but a globally routable unicast address, directly or embedded."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None or address in _V4_COMPATIBLE or address in _NAT64_LOCAL:
            return True  # IPv4 in IPv6 clothing, or the local-use NAT64 prefix: never a target of ours
        if address.is_site_local or address.teredo is not None:
            return True
        if address in _NAT64:  # the well-known NAT64 prefix: as good as the IPv4 address it carries
            return is_internal(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None:
            return is_internal(address.sixtofour)
    elif any(address in network for network in _V4_SPECIAL):
        return True
    return (
        not address.is_global
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )
