"""The vmware store's names: its server address, its datastores, and Glance's `vsphere://` locations.

A location is `vsphere://<server>/folder/<image dir>/<image id>?dsName=<datastore>&dcPath=<datacenter path>`,
the form Glance writes (query in Glance's order; any order is read). The same file is `[<datastore>] <image
dir>/<image id>` to the vSphere API and `https://<server>/folder/<image dir>/<image id>?dcPath=..&dsName=..` to
the datastore's HTTP file interface.
"""

from __future__ import annotations

import ipaddress
import posixpath
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from glimpse.errors import ConfigError, StoreError
from glimpse.logsafe import redact_url

SCHEME = "vsphere"
FOLDER = "/folder/"


@dataclass(frozen=True)
class Server:
    host: str
    port: int

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == 443 else f"{host}:{self.port}"


def parse_server(value: str, store: str) -> Server:
    """vmware_server_host: a host name or address, with an optional port (Glimpse's addition; 443 otherwise)."""
    text = value.strip()
    if "://" in text or "/" in text or not text:
        raise ConfigError(f"Store {store}: vmware_server_host = {value!r} must be a host or host:port.")
    try:  # a bare IPv6 address, as Glance takes it
        return Server(str(ipaddress.IPv6Address(text)), 443)
    except ValueError:
        pass
    parts = urlsplit(f"//{text}")
    try:
        port = parts.port or 443
    except ValueError:
        raise ConfigError(f"Store {store}: vmware_server_host = {value!r} has a bad port.") from None
    if not parts.hostname:
        raise ConfigError(f"Store {store}: vmware_server_host = {value!r} must be a host or host:port.")
    return Server(parts.hostname, port)


@dataclass(frozen=True)
class Datastore:
    """One entry of vmware_datastores: where new images may go."""

    datacenter: str
    name: str
    weight: int = 0


def parse_datastores(values: list[str], store: str) -> list[Datastore]:
    """vmware_datastores entries, `<datacenter path>:<datastore name>[:<weight>]`, read as Glance reads them."""
    found: list[Datastore] = []
    for value in values:
        parts = [p.strip() for p in value.rsplit(":", 2)]
        if len(parts) < 2 or not parts[0].strip("/") or not parts[1]:
            raise ConfigError(
                f"Store {store}: vmware_datastores = {value!r} must be <datacenter path>:<datastore name>[:<weight>]."
            )
        weight = 0
        if len(parts) == 3 and parts[2]:
            try:
                weight = int(parts[2])
            except ValueError:
                raise ConfigError(f"Store {store}: vmware_datastores = {value!r}: its weight is no number.") from None
        found.append(Datastore(parts[0].strip("/"), parts[1], weight))
    if not found:
        raise ConfigError(f"Store {store} (vmware) needs at least one vmware_datastores entry.")
    if len(set((d.datacenter, d.name) for d in found)) != len(found):
        raise ConfigError(f"Store {store}: vmware_datastores names a datastore twice.")
    return found


@dataclass(frozen=True)
class DatastoreFile:
    """A file of a datastore: its datacenter path (None when the location leaves it out), datastore, and
    path inside the datastore (no leading slash)."""

    datacenter: str | None
    datastore: str
    path: str

    @property
    def ds_path(self) -> str:
        """The name the vSphere API gives the file: `[datastore] folder/file`."""
        return f"[{self.datastore}] {self.path}"

    def query(self, *, dc_first: bool) -> str:
        params = {"dsName": self.datastore}
        if self.datacenter:
            params = {"dcPath": self.datacenter, **params} if dc_first else {**params, "dcPath": self.datacenter}
        return urlencode(params)

    def location(self, server: Server) -> str:
        return f"{SCHEME}://{server.netloc}{FOLDER}{quote(self.path)}?{self.query(dc_first=False)}"

    def transfer_url(self, server: Server) -> str:
        """Where the datastore's HTTP file interface serves the file (always https, as Glance)."""
        return f"https://{server.netloc}{FOLDER}{quote(self.path)}?{self.query(dc_first=True)}"

    def with_path(self, path: str) -> DatastoreFile:
        return DatastoreFile(self.datacenter, self.datastore, path)


def image_dir(value: str) -> str:
    """vmware_store_image_dir as a path inside a datastore: no leading or trailing slash, no `..`."""
    path = posixpath.normpath("/" + value.strip()).strip("/")
    if not path or path.startswith(".."):
        raise ConfigError(f"vmware_store_image_dir = {value!r} must name a folder inside the datastores.")
    return path


def parse_location(url: str) -> DatastoreFile:
    """The datastore file of a `vsphere://` location. Its host is not used: the store reads its own server."""
    parts = urlsplit(url)
    if parts.scheme != SCHEME:
        raise StoreError(f"Location {redact_url(url)} is not a vsphere location.")
    raw = parts.path
    query = parts.query
    if not query and "?" in raw:  # as Glance, a query that urlsplit did not separate
        raw, _, query = raw.partition("?")
    if not raw.startswith(FOLDER):
        raise StoreError(f"Location {redact_url(url)} does not name a datastore file (/folder/...).")
    path = unquote(raw[len(FOLDER) :])
    segments = path.split("/")
    if not path or any(s in ("", ".", "..") for s in segments):
        raise StoreError(f"Location {redact_url(url)} has a bad datastore path.")
    params = parse_qs(query)
    datastore = (params.get("dsName") or [""])[0]
    if not datastore:
        raise StoreError(f"Location {redact_url(url)} does not name a datastore (dsName).")
    datacenter = (params.get("dcPath") or [""])[0].strip("/") or None
    return DatastoreFile(datacenter, datastore, path)
