"""tus-js-client, the tus project's own JavaScript client, under Node against the API's tus endpoint, unchanged:
an upload stopped half-way is found again in its URL storage and resumed into the same image."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from tests.disk_bytes import raw_disk_bytes
from tests.functional.server import GlimpseServer

REPO = Path(__file__).resolve().parents[2]
MODULES = REPO / ".cache" / "tus-js-client" / "node_modules"
SCRIPT = Path(__file__).with_name("tus_js_upload.js")
MIB = 1024 * 1024

if shutil.which("node") is None:  # scripts/test installs Debian's nodejs
    pytest.skip("node is missing: apt-get install nodejs", allow_module_level=True)


@pytest.fixture(scope="module")
def tus_js_client() -> Path:
    if not (MODULES / "tus-js-client").is_dir():
        subprocess.run(["bash", str(REPO / "scripts" / "install-tus-js-client")], check=True, timeout=300)
    return MODULES


def _node(modules: Path, project: str, *args: str) -> dict[str, object]:
    env = {**os.environ, "NODE_PATH": str(modules), "PROJECT": project}
    done = subprocess.run(["node", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    answer: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def test_tus_js_client_stops_and_resumes_into_the_same_image(
    sqlite_server: GlimpseServer, tus_js_client: Path, tmp_path: Path
) -> None:
    project = f"prj-js-{uuid.uuid4().hex[:6]}"
    api = httpx.Client(base_url=sqlite_server.url, headers={"X-Project-Id": project, "X-Roles": "member"})
    image = api.post("/v2/images", json={"name": "tus-js", "disk_format": "raw", "container_format": "bare"}).json()
    source = tmp_path / "disk.raw"
    source.write_bytes(raw_disk_bytes(5 * MIB + 4321))
    endpoint = f"{sqlite_server.url}/v2/images/{image['id']}/uploads"
    storage = str(tmp_path / "tus-urls.json")

    stopped = _node(tus_js_client, project, str(source), endpoint, storage, str(2 * MIB))
    head = api.head(str(stopped["url"]), headers={"Tus-Resumable": "1.0.0"})
    assert int(head.headers["upload-offset"]) >= 2 * MIB
    assert api.get(f"/v2/images/{image['id']}").json()["status"] != "active"

    finished = _node(tus_js_client, project, str(source), endpoint, storage)
    assert finished["resumed"] == stopped["url"] == finished["url"]
    shown = api.get(f"/v2/images/{image['id']}").json()
    assert (shown["status"], shown["size"]) == ("active", source.stat().st_size)
    assert shown["checksum"] == hashlib.md5(source.read_bytes()).hexdigest()
    assert api.get(f"/v2/images/{image['id']}/file").content == source.read_bytes()
