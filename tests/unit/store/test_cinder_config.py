"""The cinder store's configuration (Glance's option names) as the factory builds it, and its locations.
What it does with a real Cinder is in tests/contract/test_cinder_store.py and tests/functional/test_cinder.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from glimpse.config import load_settings
from glimpse.errors import ConfigError, StoreError
from glimpse.store.cinder import CinderStore
from glimpse.store.factory import build_registry

CINDER = """\
[DEFAULT]
enabled_backends = vol:cinder, local:file

[glance_store]
default_backend = vol

[vol]
store_description = Volumes
cinder_catalog_info = volumev3:cinderv3:internalURL
cinder_os_region_name = RegionTwo
cinder_ca_certificates_file = /etc/ssl/ca.pem
cinder_http_retries = 5
cinder_state_transition_timeout = 60
cinder_api_insecure = false
cinder_store_auth_address = http://keystone:5000/v3
cinder_store_user_name = glance
cinder_store_user_domain_name = Users
cinder_store_password = s3cret
cinder_store_project_name = service
cinder_store_project_domain_name = Projects
cinder_volume_type = images
cinder_use_multipath = true
cinder_enforce_multipath = true
cinder_mount_point_base = /var/lib/glance/mnt
rootwrap_config = /etc/glance/rootwrap.conf
cinder_do_extend_attached = true
cinder_attachment_retry_attempts = 2
"""
VOLUME = "6f1f0b9e-3a48-4d6b-9a3c-0c43b1d2e7a1"


def _registry(tmp_path: Path, text: str) -> dict[str, object]:
    path = tmp_path / "glance-api.conf"
    path.write_text(text)
    settings = load_settings([str(path)], overrides={"data_dir": str(tmp_path / "d")})
    assert settings.unknown_options == ()
    registry = build_registry(settings.backends, settings.default_backend, multi=settings.multi_store, node="n")
    return dict(registry.stores)


def test_glance_cinder_section(tmp_path: Path) -> None:
    store = _registry(tmp_path, CINDER)["vol"]
    assert isinstance(store, CinderStore)
    access = store.access
    assert (access.auth_url, access.user, access.password, access.project) == (
        "http://keystone:5000/v3", "glance", "s3cret", "service"
    )  # fmt: skip
    assert (access.user_domain, access.project_domain) == ("Users", "Projects")
    assert (access.catalog_info, access.region, access.ca_file, access.retries) == (
        "volumev3:cinderv3:internalURL", "RegionTwo", "/etc/ssl/ca.pem", 5
    )  # fmt: skip
    assert (store.volume_type, store.state_timeout, store.extend_attached, store.attach_tries) == (
        "images",
        60,
        True,
        2,
    )
    assert (store.connector.use_multipath, store.connector.enforce_multipath) == (True, True)
    assert "s3cret" not in str(store.properties())
    assert store.multi and store._url(VOLUME) == f"cinder://vol/{VOLUME}"


def test_single_store_mode_writes_glances_short_locations(tmp_path: Path) -> None:
    options = CINDER[CINDER.index("cinder_catalog_info") :]
    text = f"[glance_store]\nstores = cinder\ndefault_store = cinder\n{options}"
    store = _registry(tmp_path, text)["cinder"]
    assert isinstance(store, CinderStore)
    assert store.access.user == "glance" and store.volume_type == "images"
    assert not store.multi and store._url(VOLUME) == f"cinder://{VOLUME}"


@pytest.mark.parametrize(
    "location", [f"cinder://{VOLUME}", f"cinder://vol/{VOLUME}", f"cinder://other/{VOLUME}", f"cinder://{VOLUME}/"]
)
def test_both_location_forms_name_the_volume(tmp_path: Path, location: str) -> None:
    store = _registry(tmp_path, CINDER)["vol"]
    assert isinstance(store, CinderStore)
    assert store._volume_id(location) == VOLUME


@pytest.mark.parametrize("location", ["cinder://", "cinder://vol/not-a-uuid", f"rbd://{VOLUME}", VOLUME])
def test_bad_locations_are_refused(tmp_path: Path, location: str) -> None:
    store = _registry(tmp_path, CINDER)["vol"]
    assert isinstance(store, CinderStore)
    with pytest.raises(StoreError):
        store._volume_id(location)
    with pytest.raises(StoreError):
        store.url_for("an-image")  # a volume's id is Cinder's, known only once written


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("cinder_store_password = s3cret\n", "", "needs cinder_store_password"),
        ("cinder_store_auth_address = http://keystone:5000/v3\n", "", "needs cinder_store_auth_address"),
        (
            "cinder_catalog_info = volumev3:cinderv3:internalURL",
            "cinder_catalog_info = volumev3",
            "cinder_catalog_info",
        ),
    ],
)
def test_invalid_cinder_section(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in CINDER
    with pytest.raises(ConfigError, match=message):
        _registry(tmp_path, CINDER.replace(old, new))


def test_an_application_credential_needs_no_password(tmp_path: Path) -> None:
    text = CINDER.replace("cinder_store_password = s3cret\n", "cinder_store_application_credential_id = ac\n"
                          "cinder_store_application_credential_secret = acs\n")  # fmt: skip
    store = _registry(tmp_path, text)["vol"]
    assert isinstance(store, CinderStore)
    assert (store.access.app_credential_id, store.access.app_credential_secret) == ("ac", "acs")


def test_the_readmes_cinder_block_is_a_working_configuration(tmp_path: Path) -> None:
    from tests.functional.readme import ini_block_after

    block = ini_block_after("Stores", "[DEFAULT]\nenabled_backends = fast:file, vol:cinder")
    text = block + "\n[glance_store]\ndefault_backend = vol\n"
    store = _registry(tmp_path, text)["vol"]
    assert isinstance(store, CinderStore)
    assert (store.access.project, store.volume_type, store.state_timeout) == ("service", "images", 300)
