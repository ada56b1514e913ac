"""Per-project quotas through the API and the CLI, and an upload race across two API processes."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import httpx

from tests.functional.databases import fresh_database
from tests.functional.server import GlimpseServer

MIB = 1024 * 1024
OCTETS = {"Content-Type": "application/octet-stream"}


def _as(project: str) -> dict[str, str]:
    return {"X-Project-Id": project, "X-Roles": "member"}


def _new(server: GlimpseServer, project: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}, headers=_as(project)
    )


def test_project_quotas_through_api(server: GlimpseServer) -> None:
    project = f"quota-{uuid.uuid4().hex[:6]}"
    limits = {"image_count_total": 3, "image_size_total": 1, "image_count_uploading": 1}
    assert httpx.put(f"{server.url}/v2/quotas/{project}", json=limits, headers=_as(project)).status_code == 403
    set_quota = httpx.put(f"{server.url}/v2/quotas/{project}", json=limits)
    assert set_quota.status_code == 200, set_quota.text
    assert set_quota.json()["usage"]["image_size_total"] == {"limit": 1, "usage": 0, "binned": 0}

    ids = [_new(server, project).json()["id"] for _ in range(3)]
    over = _new(server, project)
    assert over.status_code == 413
    assert "Maximum number of images" in over.text

    first = httpx.put(
        f"{server.url}/v2/images/{ids[0]}/file", content=b"a" * (700 * 1024), headers={**OCTETS, **_as(project)}
    )
    assert first.status_code == 204
    second = httpx.put(
        f"{server.url}/v2/images/{ids[1]}/file", content=b"b" * (700 * 1024), headers={**OCTETS, **_as(project)}
    )
    assert second.status_code == 413
    assert "quota" in second.text
    assert httpx.get(f"{server.url}/v2/images/{ids[1]}", headers=_as(project)).json()["status"] == "queued"
    # The announced size is checked before any byte is written.
    announced = httpx.put(
        f"{server.url}/v2/images/{ids[1]}/file",
        content=b"c" * 10,
        headers={**OCTETS, **_as(project), "x-openstack-image-size": str(2 * MIB)},
    )
    assert announced.status_code == 413

    usage = httpx.get(f"{server.url}/v2/info/usage", headers=_as(project)).json()["usage"]
    assert usage["image_count_total"] == {"limit": 3, "usage": 3, "binned": 0}
    assert usage["image_size_total"]["limit"] == 1
    assert usage["image_count_uploading"] == {"limit": 1, "usage": 0}
    listed = httpx.get(f"{server.url}/v2/quotas").json()["quotas"]
    assert {"project_id": project, **limits, "image_stage_total": None} in listed

    # Lifting a limit is setting it to null.
    lifted = httpx.put(f"{server.url}/v2/quotas/{project}", json={"image_count_total": None})
    assert lifted.json()["usage"]["image_count_total"]["limit"] == -1
    assert _new(server, project).status_code == 201
    bad = httpx.put(f"{server.url}/v2/quotas/{project}", json={"image_count_total": -5})
    assert bad.status_code == 400


def test_quota_cli(server: GlimpseServer) -> None:
    project = f"cli-{uuid.uuid4().hex[:6]}"
    result = server.command("quota", "set", project, "--images", "7", "--size", "2GB")
    assert result.returncode == 0, result.stderr
    assert "2048 MiB" in result.stdout
    shown = server.command("quota", "show", project)
    assert "image_count_total" in shown.stdout and "7" in shown.stdout
    assert project in server.command("quota", "list").stdout
    usage = httpx.get(f"{server.url}/v2/info/usage", headers=_as(project)).json()["usage"]
    assert usage["image_count_total"]["limit"] == 7
    assert usage["image_size_total"]["limit"] == 2048


def test_uploads_racing_on_two_processes_never_pass_the_quota(tmp_path: Path) -> None:
    """Two API processes over one PostgreSQL and one image folder; the project may store 10 MiB."""
    with fresh_database("postgresql") as url:
        shared = f"filesystem_store_datadir = {tmp_path / 'images'}"
        nodes = []
        for name in ("node-a", "node-b"):
            nodes.append(GlimpseServer(tmp_path / name, url, extra_conf=f"[glance_store]\n{shared}"))
        assert nodes[0].command("db", "sync").returncode == 0
        for node in nodes:
            node.start()
        try:
            project = "racer"
            assert httpx.put(f"{nodes[0].url}/v2/quotas/{project}", json={"image_size_total": 10}).status_code == 200
            ids = [_new(nodes[0], project).json()["id"] for _ in range(4)]
            results: dict[str, int] = {}

            def upload(node: GlimpseServer, image_id: str) -> None:
                def body():  # type: ignore[no-untyped-def]
                    for _ in range(6):
                        yield b"r" * MIB

                response = httpx.put(
                    f"{node.url}/v2/images/{image_id}/file",
                    content=body(),
                    headers={**OCTETS, **_as(project)},
                    timeout=60,
                )
                results[image_id] = response.status_code

            threads = [threading.Thread(target=upload, args=(nodes[i % 2], ids[i])) for i in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(results.values()).count(204) == 1, results  # 4 x 6 MiB against 10 MiB: one fits
            assert sorted(results.values()).count(413) == 3, results
            usage = httpx.get(f"{nodes[1].url}/v2/info/usage", headers=_as(project)).json()["usage"]
            assert usage["image_size_total"] == {"limit": 10, "usage": 6, "binned": 0}
            statuses = [httpx.get(f"{nodes[1].url}/v2/images/{i}", headers=_as(project)).json()["status"] for i in ids]
            assert sorted(statuses) == ["active", "queued", "queued", "queued"]
            assert len(list((tmp_path / "images").iterdir())) == 1  # no partial data left behind
        finally:
            for node in nodes:
                node.stop()


def test_staging_limit(server: GlimpseServer) -> None:
    project = f"stage-{uuid.uuid4().hex[:6]}"
    assert httpx.put(f"{server.url}/v2/quotas/{project}", json={"image_stage_total": 1}).status_code == 200
    big, small = (_new(server, project).json()["id"] for _ in range(2))
    over = httpx.put(
        f"{server.url}/v2/images/{big}/stage", content=b"s" * (2 * MIB), headers={**OCTETS, **_as(project)}
    )
    assert over.status_code == 413
    assert httpx.get(f"{server.url}/v2/images/{big}", headers=_as(project)).json()["status"] == "queued"
    fits = httpx.put(
        f"{server.url}/v2/images/{small}/stage", content=b"s" * (512 * 1024), headers={**OCTETS, **_as(project)}
    )
    assert fits.status_code == 204
    usage = httpx.get(f"{server.url}/v2/info/usage", headers=_as(project)).json()["usage"]
    assert usage["image_stage_total"] == {"limit": 1, "usage": 1}
    started = httpx.post(
        f"{server.url}/v2/images/{small}/import", json={"method": {"name": "glance-direct"}}, headers=_as(project)
    )
    assert started.status_code == 202
    for _ in range(100):
        if httpx.get(f"{server.url}/v2/images/{small}", headers=_as(project)).json()["status"] == "active":
            break
        time.sleep(0.2)
    usage = httpx.get(f"{server.url}/v2/info/usage", headers=_as(project)).json()["usage"]
    assert usage["image_stage_total"]["usage"] == 0  # imported: no longer staged
