"""Optional libraries: the default install needs none of them, and a configuration that needs one names its extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from glimpse.app import build_services
from glimpse.assembly.authentication import auth_middleware
from glimpse.auth.policy import Policy
from glimpse.config import load_settings
from glimpse.db.session import make_engine
from glimpse.errors import ConfigError
from glimpse.extras import EXTRAS, SYSTEM_PACKAGES

OPTIONAL = sorted({*EXTRAS, *SYSTEM_PACKAGES, "psycopg2", "botocore", "moto"})


def hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make `import module` fail as it does where the package is not installed."""
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def settings_from(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    conf = tmp_path / "glance-api.conf"
    conf.write_text(textwrap.dedent(text))
    return load_settings([str(conf)], overrides={"data_dir": str(tmp_path / "data")})


STORES = {
    "s3": ("boto3", "glimpse[s3]", "s3_store_bucket = b\ns3_store_access_key = a\ns3_store_secret_key = s\n"),
    "swift": (
        "swiftclient",
        "glimpse[swift]",
        "swift_store_auth_address = http://127.0.0.1:1/v3\nswift_store_user = p:u\nswift_store_key = k\n",
    ),
    "rbd": ("rados", "python3-rados", ""),
}


@pytest.mark.parametrize("kind", sorted(STORES))
def test_a_store_without_its_library_names_what_installs_it(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, named, options = STORES[kind]
    hide(monkeypatch, module)
    conf = (
        f"[DEFAULT]\nenabled_backends = local:file, remote:{kind}\n[glance_store]\ndefault_backend = local\n"
        f"[local]\nfilesystem_store_datadir = {tmp_path / 'images'}\n[remote]\n{options}"
    )
    settings = settings_from(tmp_path, conf)
    with pytest.raises(ConfigError) as caught:
        build_services(settings)
    assert "Store remote" in caught.value.message
    assert named in caught.value.message


KEYSTONE = """\
[paste_deploy]
flavor = keystone
[keystone_authtoken]
auth_url = http://127.0.0.1:1/v3
username = glance
password = secret
"""


@pytest.mark.parametrize(
    ("module", "extra_option", "named"),
    [
        ("keystoneauth1", "", "glimpse[keystone]"),
        ("pymemcache", "memcached_servers = 127.0.0.1:11211\n", "glimpse[keystone]"),
        ("redis", "redis_url = redis://127.0.0.1:6379/0\n", "glimpse[redis]"),
    ],
)
def test_keystone_without_its_libraries_names_the_extra(
    module: str, extra_option: str, named: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide(monkeypatch, module)
    settings = settings_from(tmp_path, KEYSTONE + extra_option)
    with pytest.raises(ConfigError, match=module if module != "keystoneauth1" else "flavor = keystone") as caught:
        auth_middleware(settings, Policy(None))
    assert named in caught.value.message


def test_unified_limits_without_oslo_limit_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hide(monkeypatch, "oslo_limit")
    settings = settings_from(tmp_path, "[DEFAULT]\nuse_keystone_limits = true\n")
    with pytest.raises(ConfigError, match=r"use_keystone_limits.*glimpse\[keystone\]"):
        build_services(settings)


@pytest.mark.parametrize(
    ("url", "module", "named"),
    [
        ("postgresql://glance@127.0.0.1/glance", "psycopg", "glimpse[postgresql]"),
        ("mysql+pymysql://glance:pw@127.0.0.1/glance", "pymysql", "glimpse[mysql]"),
        ("postgresql+psycopg2://glance@127.0.0.1/glance", "psycopg2", "psycopg2-binary"),
    ],
)
def test_a_database_url_without_its_driver_names_the_extra(
    url: str, module: str, named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide(monkeypatch, module)
    with pytest.raises(ConfigError) as caught:
        make_engine(url)
    assert named in caught.value.message
    assert "[database] connection" in caught.value.message


DEFAULT_INSTALL = """
import importlib.abc, sys

OPTIONAL = {optional!r}

class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in OPTIONAL:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Absent())

from starlette.testclient import TestClient
import glimpse.cli.__main__, glimpse.cli.store  # the glimpse command's modules
from glimpse.app import create_app
from glimpse.config import load_settings

with TestClient(create_app(load_settings(overrides={{"data_dir": {data_dir!r}}}))) as client:
    created = client.post("/v2/images", json={{"name": "a", "disk_format": "raw", "container_format": "bare"}})
    assert created.status_code == 201, created.text
    image = created.json()["id"]
    put = client.put(f"/v2/images/{{image}}/file", content=b"x" * 4096,
                     headers={{"Content-Type": "application/octet-stream"}})
    assert put.status_code == 204, put.text
    assert client.get(f"/v2/images/{{image}}/file").content == b"x" * 4096
    assert client.get("/dashboard/login").status_code == 200
loaded = sorted(m for m in sys.modules if m.split(".")[0] in OPTIONAL)
assert not loaded, loaded
print("served without", len(OPTIONAL), "optional modules")
"""


def test_the_embedded_default_needs_no_optional_library(tmp_path: Path) -> None:
    """The README's first command installs no extra: serving, uploading, downloading and the dashboard work."""
    script = DEFAULT_INSTALL.format(optional=OPTIONAL, data_dir=str(tmp_path / "data"))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "served without" in result.stdout
