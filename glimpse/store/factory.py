"""Builds the store drivers the configuration names (called from the composition root, app.py)."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Sequence
from pathlib import Path

from glimpse.errors import ConfigError
from glimpse.extras import require
from glimpse.optvalues import as_dict, as_int
from glimpse.sources.egress import EgressPolicy
from glimpse.store.base import Store
from glimpse.store.filesystem import FilesystemStore
from glimpse.store.options import BackendConfig
from glimpse.store.registry import StoreInfo, StoreRegistry

MIB = 1024 * 1024


def _file(cfg: BackendConfig, node: str) -> Store:
    return FilesystemStore(cfg.id, Path(str(cfg.options["filesystem_store_datadir"])), node)


def _http(cfg: BackendConfig, node: str, egress: EgressPolicy | None = None) -> Store:
    from glimpse.store.http import HttpStore  # httpx is loaded only when an http store is configured

    o = cfg.options
    proxies = as_dict(o.get("http_proxy_information"))
    return HttpStore(
        cfg.id,
        insecure=bool(o.get("https_insecure", True)),
        ca_file=str(o["https_ca_certificates_file"]) if o.get("https_ca_certificates_file") else None,
        proxies={str(k): str(v) for k, v in proxies.items()},
        egress=egress or EgressPolicy(),
    )


def _s3(cfg: BackendConfig, node: str) -> Store:
    require("boto3", f"Store {cfg.id} (s3)")
    from glimpse.store.s3 import S3Store  # boto3 is loaded only when an s3 store is configured

    o = cfg.options
    missing = [k for k in ("s3_store_bucket", "s3_store_access_key", "s3_store_secret_key") if not o.get(k)]
    if missing:
        raise ConfigError(f"Store {cfg.id} (s3) needs {', '.join(missing)}.")

    def text(key: str) -> str | None:
        value = o.get(key)
        return str(value) if value else None

    return S3Store(
        cfg.id,
        host=text("s3_store_host"),
        access_key=text("s3_store_access_key"),
        secret_key=text("s3_store_secret_key"),
        bucket=str(o["s3_store_bucket"]),
        region_name=text("s3_store_region_name"),
        create_bucket_on_put=bool(o.get("s3_store_create_bucket_on_put")),
        bucket_url_format=str(o.get("s3_store_bucket_url_format") or "auto"),
        large_object_size=as_int(o.get("s3_store_large_object_size", 100)) * MIB,  # 0: always multipart, as Glance
        large_object_chunk_size=as_int(o.get("s3_store_large_object_chunk_size") or 10) * MIB,
        cacert=text("s3_store_cacert"),
    )


def _swift(cfg: BackendConfig, node: str) -> Store:
    for module in ("swiftclient", "keystoneclient"):
        require(module, f"Store {cfg.id} (swift)")
    from glimpse.store.swift import SwiftStore  # swiftclient is loaded only when a swift store is configured

    o = cfg.options
    needed = ("swift_store_auth_address", "swift_store_user", "swift_store_key")
    missing = [k for k in needed if not o.get(k)]
    if missing:
        raise ConfigError(f"Store {cfg.id} (swift) needs {', '.join(missing)}.")

    def text(key: str) -> str | None:
        value = o.get(key)
        return str(value) if value else None

    return SwiftStore(
        cfg.id,
        node=node,
        auth_address=str(o["swift_store_auth_address"]),
        user=str(o["swift_store_user"]),
        key=str(o["swift_store_key"]),
        auth_version=str(o.get("swift_store_auth_version") or "3"),
        container=str(o.get("swift_store_container") or "glance"),
        create_container_on_put=bool(o.get("swift_store_create_container_on_put")),
        large_object_size=as_int(o.get("swift_store_large_object_size") or 5120) * MIB,
        large_object_chunk_size=as_int(o.get("swift_store_large_object_chunk_size") or 200) * MIB,
        region=text("swift_store_region"),
        endpoint_type=str(o.get("swift_store_endpoint_type") or "publicURL"),
        service_type=str(o.get("swift_store_service_type") or "object-store"),
        endpoint=text("swift_store_endpoint"),
        insecure=bool(o.get("swift_store_auth_insecure")),
        cacert=text("swift_store_cacert"),
    )


def _rbd(cfg: BackendConfig, node: str) -> Store:
    for module in ("rados", "rbd"):
        require(module, f"Store {cfg.id} (rbd)")
    from glimpse.store.rbd import RbdStore  # Ceph's bindings are loaded only when an rbd store is configured

    o = cfg.options
    chunk = as_int(o.get("rbd_store_chunk_size") or 8)
    if chunk & (chunk - 1):
        raise ConfigError(f"Store {cfg.id} (rbd): rbd_store_chunk_size = {chunk} must be a power of two (MiB).")
    return RbdStore(
        cfg.id,
        pool=str(o.get("rbd_store_pool") or "images"),
        user=str(o["rbd_store_user"]) if o.get("rbd_store_user") else None,
        conf_file=str(o.get("rbd_store_ceph_conf") or ""),
        chunk_size=chunk * MIB,
        connect_timeout=max(as_int(o.get("rados_connect_timeout") or 0), 0),
        thin_provisioning=bool(o.get("rbd_thin_provisioning")),
        node=node,
    )


def _vmware(cfg: BackendConfig, node: str) -> Store:
    require("pyVmomi", f"Store {cfg.id} (vmware)")
    from glimpse.store.vmware import VmwareStore  # pyvmomi is loaded only when a vmware store is configured
    from glimpse.store.vmware_locations import image_dir, parse_datastores, parse_server

    o = cfg.options
    needed = ("vmware_server_host", "vmware_server_username", "vmware_server_password", "vmware_datastores")
    missing = [k for k in needed if not o.get(k)]
    if missing:
        raise ConfigError(f"Store {cfg.id} (vmware) needs {', '.join(missing)}.")
    datastores = o["vmware_datastores"]
    return VmwareStore(
        cfg.id,
        node=node,
        server=parse_server(str(o["vmware_server_host"]), cfg.id),
        username=str(o["vmware_server_username"]),
        password=str(o["vmware_server_password"]),
        datastores=parse_datastores([str(d) for d in datastores] if isinstance(datastores, list) else [], cfg.id),
        image_dir=image_dir(str(o.get("vmware_store_image_dir") or "/openstack_glance")),
        tls=_tls_context(o.get("vmware_ca_file"), bool(o.get("vmware_insecure"))),
        retries=max(as_int(o.get("vmware_api_retry_count") or 10), 1),
        poll_interval=max(as_int(o.get("vmware_task_poll_interval") or 5), 1),
    )


def _tls_context(ca_file: object, insecure: bool) -> ssl.SSLContext:
    """As Glance: a CA file verifies the server with it (vmware_insecure is then ignored)."""
    if ca_file:
        if not Path(str(ca_file)).is_file():
            raise ConfigError(f"vmware_ca_file {ca_file} is not a readable file.")
        return ssl.create_default_context(cafile=str(ca_file))
    context = ssl.create_default_context()
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _cinder(cfg: BackendConfig, node: str, multi: bool = False) -> Store:
    for module in ("cinderclient", "os_brick", "keystoneauth1"):
        require(module, f"Store {cfg.id} (cinder)")
    from glimpse.store.cinder import CinderStore  # cinderclient and os-brick are loaded only for a cinder store
    from glimpse.store.cinder_volumes import CinderAccess, Connector

    o = cfg.options

    def text(key: str, default: str = "") -> str:
        value = o.get(key)
        return str(value) if value else default

    app_credential = bool(text("cinder_store_application_credential_id"))
    needed = ["cinder_store_auth_address"]
    needed += (
        ["cinder_store_application_credential_secret"]
        if app_credential
        else ["cinder_store_user_name", "cinder_store_password", "cinder_store_project_name"]
    )
    missing = [k for k in needed if not o.get(k)]
    if missing:
        raise ConfigError(
            f"Store {cfg.id} (cinder) needs {', '.join(missing)}: Glimpse keeps image volumes in the project of "
            "the store's own user, never in the requesting user's."
        )
    access = CinderAccess(
        auth_url=text("cinder_store_auth_address"),
        user=text("cinder_store_user_name"),
        password=text("cinder_store_password"),
        project=text("cinder_store_project_name"),
        user_domain=text("cinder_store_user_domain_name", "Default"),
        project_domain=text("cinder_store_project_domain_name", "Default"),
        app_credential_id=text("cinder_store_application_credential_id"),
        app_credential_secret=text("cinder_store_application_credential_secret"),
        catalog_info=text("cinder_catalog_info", "volumev3::publicURL"),
        endpoint_template=text("cinder_endpoint_template"),
        region=text("cinder_os_region_name"),
        insecure=bool(o.get("cinder_api_insecure")),
        ca_file=text("cinder_ca_certificates_file"),
        retries=as_int(o.get("cinder_http_retries", 3)),
    )
    if access.catalog_info.count(":") != 2:
        raise ConfigError(
            f"Store {cfg.id} (cinder): cinder_catalog_info = {access.catalog_info} is not "
            "<service_type>:<service_name>:<interface>."
        )
    connector = Connector(
        use_multipath=bool(o.get("cinder_use_multipath")),
        enforce_multipath=bool(o.get("cinder_enforce_multipath")),
        root_helper=f"sudo glance-rootwrap {text('rootwrap_config', '/etc/glance/rootwrap.conf')}",
    )
    return CinderStore(
        cfg.id,
        access,
        volume_type=text("cinder_volume_type") or None,
        connector=connector,
        state_timeout=as_int(o.get("cinder_state_transition_timeout", 300)),
        extend_attached=bool(o.get("cinder_do_extend_attached")),
        attach_tries=max(1, as_int(o.get("cinder_attachment_retry_attempts", 5))),
        multi=multi,
        node=node,
    )


DRIVERS: dict[str, Callable[[BackendConfig, str], Store]] = {
    "file": _file,
    "http": _http,
    "s3": _s3,
    "swift": _swift,
    "rbd": _rbd,
    "vmware": _vmware,
    "cinder": _cinder,
}


def build_registry(
    backends: Sequence[BackendConfig], default: str, *, multi: bool, node: str, egress: EgressPolicy | None = None
) -> StoreRegistry:
    """egress: what the http store may read (default: the strict policy, no internal address)."""
    unknown = [b.type for b in backends if b.type not in DRIVERS]
    if unknown:
        raise ConfigError(f"Store types {', '.join(unknown)} are not available; this build has {', '.join(DRIVERS)}.")

    def build(b: BackendConfig) -> Store:
        if b.type == "http":
            return _http(b, node, egress)
        if b.type == "cinder":
            return _cinder(b, node, multi)  # its locations name the store in the multi-store mode, as Glance's
        return DRIVERS[b.type](b, node)

    stores = {b.id: build(b) for b in backends}
    if default not in stores:
        raise ConfigError(f"The default store '{default}' is not among the enabled stores ({', '.join(stores)}).")
    info = {b.id: StoreInfo(description=b.description, weight=b.weight) for b in backends}
    return StoreRegistry(stores, default, multi=multi, info=info)
