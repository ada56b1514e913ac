"""glimpse.config: the multi-store sections (enabled_backends) and the single-store [glance_store] mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from glimpse.config import load_settings
from glimpse.errors import ConfigError

MULTI = """\
[DEFAULT]
enabled_backends = fast:s3, reliable:file, web:http

[glance_store]
default_backend = reliable

[fast]
store_description = Fast object storage
weight = 100
s3_store_host = http://127.0.0.1:9000
s3_store_access_key = AK
s3_store_secret_key = SK
s3_store_bucket = images
s3_store_create_bucket_on_put = true
s3_store_bucket_url_format = path
s3_store_region_name = eu-west-1
s3_store_large_object_size = 50
s3_store_large_object_chunk_size = 8

[reliable]
store_description = Reliable disks
weight = 10
filesystem_store_datadir = /srv/images

[web]
https_insecure = false

[os_glance_staging_store]
filesystem_store_datadir = /var/lib/glance/staging

[os_glance_tasks_store]
filesystem_store_datadir = /var/lib/glance/tasks
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "glance-api.conf"
    path.write_text(text)
    return str(path)


def test_multi_store_sections(tmp_path: Path) -> None:
    settings = load_settings([write(tmp_path, MULTI)])
    assert settings.multi_store
    assert settings.default_backend == "reliable"
    assert settings.unknown_options == ()
    by_id = {b.id: b for b in settings.backends}
    assert [b.id for b in settings.backends] == ["fast", "reliable", "web"]
    fast = by_id["fast"]
    assert (fast.type, fast.description, fast.weight) == ("s3", "Fast object storage", 100)
    assert fast.options["s3_store_host"] == "http://127.0.0.1:9000"
    assert fast.options["s3_store_create_bucket_on_put"] is True
    assert fast.options["s3_store_bucket_url_format"] == "path"
    assert fast.options["s3_store_large_object_size"] == 50
    assert fast.options["s3_store_large_object_chunk_size"] == 8
    assert by_id["reliable"].options == {"filesystem_store_datadir": "/srv/images"}
    assert by_id["web"].options["https_insecure"] is False
    assert by_id["web"].weight == 0 and by_id["web"].description == "http store web"


def test_options_of_another_driver_are_unknown(tmp_path: Path) -> None:
    text = MULTI.replace("[web]\n", "[web]\nfilesystem_store_datadir = /x\n") + "\n[nowhere]\nweight = 3\n"
    settings = load_settings([write(tmp_path, text)])
    assert settings.unknown_options == ("[nowhere] weight", "[web] filesystem_store_datadir")


def test_file_store_without_datadir_gets_one_under_data_dir(tmp_path: Path) -> None:
    text = "[DEFAULT]\nenabled_backends = a:file, b:file\n[glance_store]\ndefault_backend = b\n"
    settings = load_settings([write(tmp_path, text)], overrides={"data_dir": str(tmp_path / "d")})
    assert [b.options["filesystem_store_datadir"] for b in settings.backends] == [
        str(tmp_path / "d" / "images" / "a"),
        str(tmp_path / "d" / "images" / "b"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[DEFAULT]\nenabled_backends = a:file\n", "default_backend = (unset)"),
        ("[DEFAULT]\nenabled_backends = a:file\n[glance_store]\ndefault_backend = b\n", "default_backend = b"),
        ("[DEFAULT]\nenabled_backends = a:tape\n[glance_store]\ndefault_backend = a\n", "type 'tape'"),
        ("[DEFAULT]\nenabled_backends = os_glance_x:file\n[glance_store]\ndefault_backend = os_glance_x\n", "reserved"),
        ("[DEFAULT]\nenabled_backends = database:file\n[glance_store]\ndefault_backend = database\n", "reserved"),
        (
            "[DEFAULT]\nenabled_backends = a:s3\n[glance_store]\ndefault_backend = a\n[a]\n"
            "s3_store_large_object_chunk_size = 4\n",
            "s3_store_large_object_chunk_size",
        ),
    ],
)
def test_invalid_multi_store_configuration(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings([write(tmp_path, text)])


def test_single_store_mode_reads_driver_options_from_glance_store(tmp_path: Path) -> None:
    text = (
        "[glance_store]\nstores = file, s3\ndefault_store = s3\nfilesystem_store_datadir = /srv/i\n"
        "s3_store_host = http://h:1\ns3_store_bucket = b\ns3_store_access_key = a\ns3_store_secret_key = s\n"
    )
    settings = load_settings([write(tmp_path, text)])
    assert not settings.multi_store
    assert settings.unknown_options == ()
    assert settings.default_store == "s3"
    by_id = {b.id: b for b in settings.backends}
    assert by_id["file"].options == {"filesystem_store_datadir": "/srv/i"}
    assert by_id["s3"].options["s3_store_bucket"] == "b"


SWIFT = """\
[DEFAULT]
enabled_backends = hot:file, cold:swift

[glance_store]
default_backend = hot

[cold]
store_description = Swift, three replicas
swift_store_auth_address = http://127.0.0.1:8080/auth/v1.0
swift_store_user = test:tester
swift_store_key = testing
swift_store_auth_version = 1
swift_store_container = images
swift_store_create_container_on_put = true
swift_store_large_object_size = 1024
swift_store_large_object_chunk_size = 100
swift_store_region = RegionOne
swift_store_endpoint_type = internalURL
swift_store_service_type = object-store
"""


def test_swift_store_section(tmp_path: Path) -> None:
    from glimpse.store.factory import build_registry
    from glimpse.store.swift import MIB, SwiftStore

    settings = load_settings([write(tmp_path, SWIFT)], overrides={"data_dir": str(tmp_path / "d")})
    assert settings.unknown_options == ()
    cold = {b.id: b for b in settings.backends}["cold"]
    assert cold.type == "swift"
    assert cold.options["swift_store_auth_version"] == "1"
    assert cold.options["swift_store_create_container_on_put"] is True
    registry = build_registry(settings.backends, settings.default_backend, multi=True, node="n")
    store = registry.stores["cold"]
    assert isinstance(store, SwiftStore)
    assert (store.container, store.large_object_size, store.chunk_size) == ("images", 1024 * MIB, 100 * MIB)
    assert (store.region, store.endpoint_type, store.auth_version) == ("RegionOne", "internalURL", "1")
    assert store.url_for("abc") == "swift+http://127.0.0.1:8080/auth/v1.0/images/abc"
    assert "testing" not in str(store.properties())


KEYSTONE_USER_WITHOUT_PROJECT = (
    "swift_store_user = test:tester\nswift_store_key = testing\nswift_store_auth_version = 1\n",
    "swift_store_user = tester\nswift_store_key = testing\n",  # auth version 3 by default
)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("swift_store_key = testing\n", "", "needs swift_store_key"),
        ("swift_store_auth_version = 1\n", "swift_store_auth_version = 4\n", "swift_store_auth_version"),
        (*KEYSTONE_USER_WITHOUT_PROJECT, "project:user"),
    ],
)
def test_invalid_swift_store_section(tmp_path: Path, old: str, new: str, message: str) -> None:
    from glimpse.store.factory import build_registry

    assert old in SWIFT
    with pytest.raises(Exception, match=message):
        settings = load_settings([write(tmp_path, SWIFT.replace(old, new))])
        build_registry(settings.backends, settings.default_backend, multi=True, node="n")


RBD = """\
[DEFAULT]
enabled_backends = fast:rbd, local:file

[glance_store]
default_backend = fast

[fast]
store_description = Ceph
rbd_store_pool = glance-images
rbd_store_user = glance
rbd_store_ceph_conf = /etc/ceph/ceph.conf
rbd_store_chunk_size = 4
rados_connect_timeout = 10
rbd_thin_provisioning = true
"""


def test_rbd_store_section(tmp_path: Path) -> None:
    settings = load_settings([write(tmp_path, RBD)])
    assert settings.unknown_options == ()
    fast = {b.id: b for b in settings.backends}["fast"]
    assert (fast.type, fast.description) == ("rbd", "Ceph")
    assert fast.options == {
        "rbd_store_pool": "glance-images",
        "rbd_store_user": "glance",
        "rbd_store_ceph_conf": "/etc/ceph/ceph.conf",
        "rbd_store_chunk_size": 4,
        "rados_connect_timeout": 10,
        "rbd_thin_provisioning": True,
    }


def test_rbd_store_defaults_are_glances(tmp_path: Path) -> None:
    text = "[DEFAULT]\nenabled_backends = ceph:rbd\n[glance_store]\ndefault_backend = ceph\n"
    ceph = load_settings([write(tmp_path, text)]).backends[0]
    assert ceph.options == {
        "rbd_store_pool": "images",
        "rbd_store_user": None,
        "rbd_store_ceph_conf": "",
        "rbd_store_chunk_size": 8,
        "rados_connect_timeout": -1,
        "rbd_thin_provisioning": False,
    }


def test_rbd_options_in_a_file_store_section_are_unknown(tmp_path: Path) -> None:
    settings = load_settings([write(tmp_path, RBD + "\n[local]\nrbd_store_pool = x\n")])
    assert settings.unknown_options == ("[local] rbd_store_pool",)
