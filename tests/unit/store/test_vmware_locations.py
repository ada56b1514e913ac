"""The vmware store's configuration and names: vmware_server_host, vmware_datastores, vmware_store_image_dir,
Glance's vsphere:// locations, and a [vmware] section of a glance-api.conf (no server is contacted)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from glimpse.config import load_settings
from glimpse.errors import ConfigError, StoreError
from glimpse.store.vmware_locations import (
    Datastore,
    DatastoreFile,
    Server,
    image_dir,
    parse_datastores,
    parse_location,
    parse_server,
)


@pytest.mark.parametrize(
    ("value", "server", "netloc"),
    [
        ("vcenter.example.org", Server("vcenter.example.org", 443), "vcenter.example.org"),
        ("10.0.0.5:8443", Server("10.0.0.5", 8443), "10.0.0.5:8443"),
        ("fd00::5", Server("fd00::5", 443), "[fd00::5]"),
        ("[fd00::5]:9443", Server("fd00::5", 9443), "[fd00::5]:9443"),
    ],
)
def test_server_host(value: str, server: Server, netloc: str) -> None:
    assert parse_server(value, "ds") == server
    assert server.netloc == netloc


@pytest.mark.parametrize("value", ["", "https://vc", "vc/sdk", "vc:port", "vc:70000"])
def test_bad_server_host(value: str) -> None:
    with pytest.raises(ConfigError, match="vmware_server_host"):
        parse_server(value, "ds")


def test_datastores_as_glance_reads_them() -> None:
    assert parse_datastores(["DC0:ds1:100", "Folder/DC1:ds2", " /DC2 : ds3 : "], "s") == [
        Datastore("DC0", "ds1", 100),
        Datastore("Folder/DC1", "ds2", 0),
        Datastore("DC2", "ds3", 0),
    ]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([], "at least one"),
        (["ds1"], "must be"),
        ([":ds1"], "must be"),
        (["DC0::5"], "must be"),
        (["DC0:ds1:heavy"], "weight"),
        (["DC0:ds1:1", "DC0:ds1:2"], "twice"),
    ],
)
def test_bad_datastores(values: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_datastores(values, "s")


def test_image_dir() -> None:
    assert image_dir("/openstack_glance") == "openstack_glance"
    assert image_dir("images/glance/") == "images/glance"
    assert image_dir("/../x") == "x"  # never above the datastore's root
    for bad in ("/", "..", " "):
        with pytest.raises(ConfigError):
            image_dir(bad)


def test_locations_round_trip_in_glances_form() -> None:
    server = Server("127.0.0.1", 8989)
    f = DatastoreFile("Folder/DC0", "ds 1", "openstack_glance/abc")
    url = f.location(server)
    assert url == "vsphere://127.0.0.1:8989/folder/openstack_glance/abc?dsName=ds+1&dcPath=Folder%2FDC0"
    assert parse_location(url) == f
    assert f.transfer_url(server) == (
        "https://127.0.0.1:8989/folder/openstack_glance/abc?dcPath=Folder%2FDC0&dsName=ds+1"
    )
    assert f.ds_path == "[ds 1] openstack_glance/abc"
    # Glance's own locations: no port, dcPath left out, or before dsName.
    assert parse_location("vsphere://vc/folder/openstack_glance/abc?dsName=ds1") == DatastoreFile(
        None, "ds1", "openstack_glance/abc"
    )
    assert parse_location("vsphere://vc/folder/g/abc?dcPath=DC0&dsName=ds1").datacenter == "DC0"


@pytest.mark.parametrize(
    "url",
    [
        "vsphere://vc/folder/g/abc",  # no datastore
        "vsphere://vc/g/abc?dsName=ds1",  # not a datastore file
        "vsphere://vc/folder/g/../../etc?dsName=ds1",
        "vsphere://vc/folder/g//abc?dsName=ds1",
        "vsphere://vc/folder/?dsName=ds1",
        "file:///folder/g/abc?dsName=ds1",
    ],
)
def test_bad_locations(url: str) -> None:
    with pytest.raises(StoreError):
        parse_location(url)


VMWARE = """\
[DEFAULT]
enabled_backends = local:file, ds:vmware

[glance_store]
default_backend = local

[ds]
store_description = vSphere datastores
vmware_server_host = 127.0.0.1:8989
vmware_server_username = administrator@vsphere.local
vmware_server_password = s3cret
vmware_datastores = DC0:LocalDS_0:100
vmware_datastores = DC0:LocalDS_1
vmware_store_image_dir = /glance/images
vmware_api_insecure = true
vmware_api_retry_count = 3
vmware_task_poll_interval = 2
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "glance-api.conf"
    path.write_text(text)
    return str(path)


def test_vmware_store_section(tmp_path: Path) -> None:
    from glimpse.store.factory import build_registry
    from glimpse.store.vmware import VmwareStore

    settings = load_settings([write(tmp_path, VMWARE)], overrides={"data_dir": str(tmp_path / "d")})
    assert settings.unknown_options == ()
    assert not [o for o in settings.no_effect_options if "vmware" in o]  # every vmware option has its effect
    registry = build_registry(settings.backends, settings.default_backend, multi=True, node="n")
    store = registry.stores["ds"]  # built without contacting the server: it logs in on first use
    assert isinstance(store, VmwareStore)
    assert store.server == Server("127.0.0.1", 8989)
    assert store.datastores == [Datastore("DC0", "LocalDS_0", 100), Datastore("DC0", "LocalDS_1", 0)]
    assert (store.image_dir, store.retries, store.api.poll_interval) == ("glance/images", 3, 2)
    assert store.api._tls.verify_mode == ssl.CERT_NONE  # vmware_api_insecure: Glance's deprecated name
    assert "s3cret" not in str(store.properties())


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("vmware_server_password = s3cret\n", "", "needs vmware_server_password"),
        ("vmware_datastores = DC0:LocalDS_0:100\nvmware_datastores = DC0:LocalDS_1\n", "", "vmware_datastores"),
        ("vmware_datastores = DC0:LocalDS_1\n", "vmware_datastores = LocalDS_1\n", "must be"),
        ("vmware_api_insecure = true\n", "vmware_ca_file = /nonexistent/ca.pem\n", "vmware_ca_file"),
        ("vmware_task_poll_interval = 2\n", "vmware_task_poll_interval = 0\n", "vmware_task_poll_interval"),
    ],
)
def test_invalid_vmware_store_section(tmp_path: Path, old: str, new: str, message: str) -> None:
    from glimpse.store.factory import build_registry

    assert old in VMWARE
    with pytest.raises(Exception, match=message):
        settings = load_settings([write(tmp_path, VMWARE.replace(old, new))])
        build_registry(settings.backends, settings.default_backend, multi=True, node="n")


def test_single_store_mode_takes_glances_vsphere_default_store(tmp_path: Path) -> None:
    text = VMWARE.replace("[ds]\nstore_description = vSphere datastores\n", "").replace(
        "[DEFAULT]\nenabled_backends = local:file, ds:vmware\n\n[glance_store]\ndefault_backend = local\n",
        "[glance_store]\nstores = file, vmware\ndefault_store = vsphere\n",
    )
    settings = load_settings([write(tmp_path, text)], overrides={"data_dir": str(tmp_path / "d")})
    assert not settings.multi_store
    assert [b.id for b in settings.backends] == ["file", "vmware"]
    assert settings.default_store == "vsphere"
    from glimpse.assembly.stores import build_stores

    registry = build_stores(settings, "n")
    assert registry.default == "vmware"
