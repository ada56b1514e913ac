"""Glance's own option syntax: bracketed lists, item types and bounds, read with Glance's meaning."""

from __future__ import annotations

from pathlib import Path

import pytest

from glimpse.config import load_settings
from glimpse.errors import ConfigError
from glimpse.option_types import GlanceList

BRACKETED = """\
[DEFAULT]
enabled_import_methods = [glance-direct,copy-image]
enabled_backends = fast:file, slow:file
[glance_store]
default_backend = fast
[fast]
filesystem_store_datadir = {root}/fast
[slow]
filesystem_store_datadir = {root}/slow
[image_format]
disk_formats = raw,qcow2
[import_filtering_opts]
allowed_ports = [80,443]
disallowed_ports = [8080]
allowed_schemes = [https]
allowed_hosts = [images.example.com,10.0.0.1]
[image_import_opts]
image_import_plugins = ['image_conversion']
[glance_download_properties]
extra_properties = [hw_,os_distro]
"""


def test_glances_bracketed_lists_have_glances_meaning(tmp_path: Path) -> None:
    settings = load_settings([_write(tmp_path, BRACKETED.format(root=tmp_path))])
    assert settings.enabled_import_methods == ("glance-direct", "copy-image")
    assert settings.import_filter["allowed_ports"] == [80, 443]
    assert settings.import_filter["disallowed_ports"] == [8080]
    assert settings.import_filter["allowed_schemes"] == ["https"]
    assert settings.import_filter["allowed_hosts"] == ["images.example.com", "10.0.0.1"]
    assert settings.import_plugins == ("image_conversion",)  # Glance's items may be quoted
    assert settings.download_properties == ("hw_", "os_distro")
    assert settings.disk_formats == ("raw", "qcow2")  # Glance declares this list without brackets
    assert [(b.id, b.type) for b in settings.backends] == [("fast", "file"), ("slow", "file")]
    assert settings.unknown_options == () and settings.no_effect_options == ()


def test_lists_without_brackets_read_the_same(tmp_path: Path) -> None:
    text = (
        "[DEFAULT]\nenabled_import_methods = glance-direct, copy-image\n"
        "[import_filtering_opts]\nallowed_ports = 80,443\nallowed_schemes = https\n"
    )
    settings = load_settings([_write(tmp_path, text)])
    assert settings.enabled_import_methods == ("glance-direct", "copy-image")
    assert settings.import_filter["allowed_ports"] == [80, 443]
    assert settings.import_filter["allowed_schemes"] == ["https"]


def test_empty_lists_in_either_form(tmp_path: Path) -> None:
    for empty in ("", "[]"):
        settings = load_settings([_write(tmp_path, f"[import_filtering_opts]\nallowed_ports = {empty}\n")])
        assert settings.import_filter["allowed_ports"] == []


def test_defaults_are_glances(tmp_path: Path) -> None:
    settings = load_settings([_write(tmp_path, "")])
    assert settings.enabled_import_methods == ("glance-direct", "web-download", "copy-image")
    assert settings.import_filter["allowed_ports"] == [80, 443]
    assert settings.import_filter["allowed_schemes"] == ["http", "https"]


@pytest.mark.parametrize(
    ("section", "line", "complaint"),
    [
        ("import_filtering_opts", "allowed_ports = [80,70000]", "allowed_ports"),
        ("import_filtering_opts", "allowed_ports = [80,http]", "allowed_ports"),
        ("import_filtering_opts", "allowed_ports = [80,443", "allowed_ports"),
        ("DEFAULT", "enabled_import_methods = [glance-direct,copy_image]", "enabled_import_methods"),
        ("DEFAULT", "image_size_cap = 0", "image_size_cap"),
    ],
)
def test_values_glance_refuses_are_refused(tmp_path: Path, section: str, line: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        load_settings([_write(tmp_path, f"[{section}]\n{line}\n")])


def test_the_list_type_keeps_glances_bounded_form_for_samples() -> None:
    kind = GlanceList()
    assert kind.bounds is True
    assert kind("[a,b]") == kind("a,b") == ["a", "b"]
    assert kind.format_defaults(["a", "b"]) == ["[a,b]"]  # a generated sample shows Glance's form


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "glance-api.conf"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("flavor", "auth", "no_effect"),
    [
        ("keystone", "keystone", ()),
        ("keystone+cachemanagement", "keystone", ("[paste_deploy] flavor +cachemanagement (no image_cache_dir)",)),
        ("keystone+caching", "keystone", ("[paste_deploy] flavor +caching (no image_cache_dir)",)),
        ("caching", "", ("[paste_deploy] flavor +caching (no image_cache_dir)",)),
        ("trusted-auth", "trusted-auth", ()),  # not a cache part: still refused when the app is built
    ],
)
def test_glances_cache_flavors_keep_their_authentication(
    tmp_path: Path, flavor: str, auth: str, no_effect: tuple[str, ...]
) -> None:
    """Without image_cache_dir Glance's cache pipeline has no cache to use: said once, as accepted without effect."""
    settings = load_settings([_write(tmp_path, f"[paste_deploy]\nflavor = {flavor}\n")])
    assert settings.auth_flavor == auth
    assert settings.no_effect_options == no_effect
    assert settings.image_cache is None


@pytest.mark.parametrize(
    ("flavor", "serves"),
    [("keystone", False), ("keystone+caching", True), ("keystone+cachemanagement", True), ("caching", True)],
)
def test_the_cache_pipeline_with_image_cache_dir_serves_downloads(tmp_path: Path, flavor: str, serves: bool) -> None:
    text = (
        f"[DEFAULT]\nimage_cache_dir = {tmp_path}/cache\nimage_cache_max_size = 1000\nimage_cache_stall_time = 7\n"
        "image_cache_driver = SQLite\nimage_cache_sqlite_db = records.db\ncache_prefetcher_interval = 9\n"
        f"[paste_deploy]\nflavor = {flavor}\n"
    )
    settings = load_settings([_write(tmp_path, text)])
    cache = settings.image_cache
    assert cache is not None and cache.directory == tmp_path / "cache"
    assert (cache.max_size, cache.stall_time, cache.sqlite_db, cache.prefetcher_interval) == (1000, 7, "records.db", 9)
    assert cache.serve_downloads is serves
    assert settings.no_effect_options == ()  # every cache option now has its effect


def test_worker_self_reference_url_names_the_node_in_the_cache_records(tmp_path: Path) -> None:
    text = f"[DEFAULT]\nimage_cache_dir = {tmp_path}/cache\nworker_self_reference_url = http://node-1:9292\n"
    settings = load_settings([_write(tmp_path, text)])
    assert settings.image_cache is not None
    assert (settings.image_cache.driver, settings.image_cache.node_url) == ("centralized_db", "http://node-1:9292")
    assert settings.no_effect_options == ()


def test_an_unknown_cache_driver_is_refused(tmp_path: Path) -> None:
    text = f"[DEFAULT]\nimage_cache_dir = {tmp_path}\nimage_cache_driver = memcached\n"
    with pytest.raises(ConfigError, match="image_cache_driver"):
        load_settings([_write(tmp_path, text)])
