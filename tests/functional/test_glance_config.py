"""Glance 33's own glance-api.conf, generated from the Glance in benchmarks/.venv-glance, read by Glimpse.

Every option of Glance's sample is uncommented at its sample value (those without one stay commented); Glimpse
must read each option it shares with Glance as Glance's default, know every other one as Glance's, and serve.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from glimpse.config import SECTIONS, _new_conf, load_settings
from tests.functional.server import GlimpseServer
from tests.glance_install import glance_python

# Glance's etc/oslo-config-generator/glance-api.conf, plus `glance` (the image import options glance-api reads).
NAMESPACES = [
    "castellan.config", "glance.api", "glance.store", "glance.multi_store", "oslo.concurrency", "oslo.messaging",
    "oslo.db", "oslo.policy", "keystonemiddleware.auth_token", "oslo.log", "oslo.middleware.cors",
    "oslo.middleware.healthcheck", "oslo.middleware.http_proxy_to_wsgi", "oslo.reports", "glance",
]  # fmt: skip
# Each option's sample value (its default unless Glance gives a sample_default) as Glance's own type reads it,
# keyed "section name".
GLANCE_VALUES = """
import json, sys
from oslo_config import generator
found = {}
for _ns, groups in generator._list_opts(sys.argv[1:]):
    for group, opts in groups:
        section = getattr(group, "name", group) or "DEFAULT"
        for opt in opts:
            value = opt.default if opt.sample_default is None else opt.sample_default
            if isinstance(value, str) and opt.type is not None:
                try:
                    value = opt.type(value)
                except ValueError:  # a placeholder such as <host>, left commented in the sample
                    continue
            found[f"{section} {opt.dest}"] = value
print(json.dumps(found, default=str))
"""
# Defaults Glimpse chooses differently on purpose (their help says so), or that only run as root.
NOT_GLANCES = {
    *("glance_store filesystem_store_datadir", "DEFAULT node_staging_uri", "keystone_authtoken auth_type"),
    # Glance sets these two in its paste pipeline (glance-api-paste.ini's [app:healthcheck]), which Glimpse has no
    # file for: Glimpse's defaults are those values, so a node drains by the same file as a Glance node.
    *("healthcheck backends", "healthcheck disable_by_file_path"),
}
# Each option's declared type with its bounds, in both interpreters (Glance's and Glimpse's).
DESCRIBE = """
def describe(kind):
    if kind is None or isinstance(kind, type):
        return None if kind is None else kind.__name__
    found = {"type": "List" if hasattr(kind, "bounds") else type(kind).__name__}
    for attribute in ("min", "max", "choices", "bounds", "quotes", "ignore_case"):
        value = getattr(kind, attribute, None)
        if value not in (None, False):
            found[attribute] = sorted(map(str, value)) if attribute == "choices" else value
    if hasattr(kind, "item_type"):
        found["item"] = describe(kind.item_type)
    return found
"""
DECLARED = (
    DESCRIBE
    + """
import json, sys
from oslo_config import generator
found = {}
for _ns, groups in generator._list_opts(sys.argv[1:]):
    for group, opts in groups:
        for opt in opts:
            found[f"{getattr(group, 'name', group) or 'DEFAULT'} {opt.dest}"] = describe(opt.type)
print(json.dumps(found, default=str))
"""
)
# Declarations Glimpse makes differently on purpose; each option's help says why.
DELIBERATE = {
    "glance_store s3_store_bucket_url_format",  # choices checked when the file is read, not when the store starts
    "glance_store s3_store_large_object_chunk_size",  # likewise its minimum of 5
    "glance_store swift_store_auth_version",  # 1 and 2 too, for tempauth clusters
    "glance_store vmware_server_host",  # host:port too, for a vCenter that does not listen on 443
    "keystone_authtoken auth_type",  # a plain string: Glimpse supports only the password plugin
    "oslo_middleware max_request_body_size",  # at least 1
}
OPTION_LINE = re.compile(r"^#([A-Za-z0-9_]+) = (.*)$")


def _glance(*args: str) -> str:
    result = subprocess.run(
        [str(glance_python()), *args], capture_output=True, text=True, timeout=300, cwd=Path(__file__).parent
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Glance's sample glance-api.conf with every option that has a sample value uncommented."""
    folder = tmp_path_factory.mktemp("glance-sample")
    generated = folder / "glance-api.conf.sample"
    _glance("-m", "oslo_config.generator", *(f"--namespace={n}" for n in NAMESPACES), f"--output-file={generated}")
    lines = []
    for line in generated.read_text().splitlines():
        match = OPTION_LINE.match(line)
        if match and not match.group(2).startswith("<"):  # <None>, <host>...: no value to give
            key, value = match.groups()
            if key == "filesystem_store_datadir":
                value = str(folder / "images")
            elif key == "node_staging_uri":
                value = f"file://{folder / 'staging'}"
            line = f"{key} = {value}"
        lines.append(line)
    conf = folder / "glance-api.conf"
    conf.write_text("\n".join(lines) + "\n")
    return conf


@pytest.fixture(scope="module")
def glance_values() -> dict[str, Any]:
    found: dict[str, Any] = json.loads(_glance("-c", GLANCE_VALUES, *NAMESPACES))
    return found


def test_declarations_are_glances() -> None:
    glance: dict[str, Any] = json.loads(_glance("-c", DECLARED, *NAMESPACES))
    scope: dict[str, Any] = {}
    exec(DESCRIBE, scope)
    shared = {
        f"{section} {opt.dest}": opt
        for section, opts in SECTIONS.items()
        for opt in opts
        if f"{section} {opt.dest}" in glance
    }
    assert len(shared) > 60
    differ = {
        key: (scope["describe"](opt.type), glance[key])
        for key, opt in shared.items()
        if key not in DELIBERATE and json.loads(json.dumps(scope["describe"](opt.type))) != glance[key]
    }
    assert differ == {}


def test_the_sample_is_glances_complete_file(sample: Path) -> None:
    text = sample.read_text()
    assert len(re.findall(r"^[a-z_]+ = ", text, re.M)) > 250
    assert "enabled_import_methods = [glance-direct,web-download,copy-image]" in text
    assert "allowed_ports = [80,443]" in text


def test_glimpse_reads_every_shared_option_as_glance_does(sample: Path, glance_values: dict[str, Any]) -> None:
    conf = _new_conf()
    conf(args=[], project="glimpse", default_config_files=[str(sample)], default_config_dirs=[])
    shared = [
        (section, opt.dest)
        for section, opts in SECTIONS.items()
        for opt in opts
        if f"{section} {opt.dest}" in glance_values and f"{section} {opt.dest}" not in NOT_GLANCES
    ]
    assert len(shared) > 60
    differ = {}
    for section, name in shared:
        seen = json.loads(json.dumps(conf[name] if section == "DEFAULT" else conf[section][name], default=str))
        if seen != glance_values[f"{section} {name}"]:
            differ[f"[{section}] {name}"] = (seen, glance_values[f"{section} {name}"])
    assert differ == {}


def test_the_sample_loads_with_nothing_unknown(sample: Path, tmp_path: Path) -> None:
    settings = load_settings([str(sample)], overrides={"data_dir": str(tmp_path / "data")})
    assert settings.unknown_options == ()
    assert "[DEFAULT] log_color" in settings.no_effect_options  # oslo.log's; debug, log_file... take effect
    assert "[DEFAULT] debug" not in settings.no_effect_options and settings.logging.debug is False
    assert "[oslo_messaging_rabbit] heartbeat_rate" in settings.no_effect_options
    assert settings.enabled_import_methods == ("glance-direct", "web-download", "copy-image")
    assert settings.import_filter["allowed_ports"] == [80, 443]
    assert settings.image_size_cap == 1099511627776
    assert settings.stores == ("file", "http") and not settings.multi_store
    assert settings.filesystem_store_datadir == sample.parent / "images"
    assert settings.staging_dir == sample.parent / "staging"
    assert settings.keystone["memcache_security_strategy"] == "None"


@pytest.fixture()
def served(sample: Path, tmp_path: Path) -> Iterator[GlimpseServer]:
    server = GlimpseServer(tmp_path)
    text = sample.read_text().replace("[DEFAULT]\n", f"[DEFAULT]\nbind_port = {server.port}\n", 1)
    # No Keystone here: the sample's flavor = keystone stays commented, so requests are not authenticated.
    server.conf.write_text(text.replace("\nflavor = keystone\n", "\n#flavor = keystone\n"))
    server.start()
    yield server
    server.stop()


def test_glimpse_serves_with_glances_sample(served: GlimpseServer) -> None:
    assert httpx.get(f"{served.url}/").status_code == 300
    assert httpx.get(f"{served.url}/v2/images").json()["images"] == []
    methods = httpx.get(f"{served.url}/v2/info/import").json()["import-methods"]["value"]
    assert methods == ["glance-direct", "web-download", "copy-image"]  # from "[glance-direct,web-download,copy-image]"
    log = served.log.read_text()
    assert log.count("Glance options accepted, no effect in Glimpse: ") == 1
    assert "[oslo_messaging_rabbit] heartbeat_rate" in log
    assert "Options Glimpse does not know" not in log
