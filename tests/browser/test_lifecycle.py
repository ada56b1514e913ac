"""The recycle bin page and the deprecation badges in Chromium, against a real server with a retention period."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.pages import flash, log_in, open_image
from tests.disk_bytes import raw_disk_bytes
from tests.functional.server import GlimpseServer

PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}


@pytest.fixture(scope="module")
def binning(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlimpseServer]:
    server = GlimpseServer(
        tmp_path_factory.mktemp("glimpse-bin"), extra_conf="[recycle_bin]\nretention_period = 3600\n"
    )
    server.start()
    yield server
    server.stop()


def _image(server: GlimpseServer, headers: dict[str, str], name: str) -> str:
    body = {"name": name, "disk_format": "raw", "container_format": "bare", "os_family": "browser-os"}
    image_id: str = httpx.post(f"{server.url}/v2/images", json=body, headers=headers).json()["id"]
    # Data of its own: identical data is stored once, under the first image's name (deduplication).
    put = httpx.put(f"{server.url}/v2/images/{image_id}/file", content=raw_disk_bytes(70_000),
                    headers={**headers, "Content-Type": "application/octet-stream"})  # fmt: skip
    assert put.status_code == 204
    return image_id


def test_deprecation_badge_links_to_the_replacement(page: Page, binning: GlimpseServer, shots: Path) -> None:
    project = f"prj-{uuid.uuid4().hex[:6]}"
    headers = {"X-Project-Id": project, "X-Roles": "member,reader"}
    old, new = _image(binning, headers, "build-1"), _image(binning, headers, "build-2")
    changes = [{"op": "add", "path": "/deprecation_status", "value": "obsolete"},
               {"op": "add", "path": "/replacement_image", "value": new}]  # fmt: skip
    assert httpx.patch(f"{binning.url}/v2/images/{old}", json=changes, headers={**headers, **PATCH}).status_code == 200

    log_in(page, binning.url, project, "member")
    row = page.locator("#images tr", has_text="build-1")
    badge = row.locator("[data-deprecation]")
    expect(badge).to_have_text("obsolete: use " + new[:8] + "…")
    expect(page.locator("#images tr", has_text="build-2").locator("[data-deprecation]")).to_have_count(0)
    page.screenshot(path=shots / "deprecated-badge.png", full_page=True)
    badge.get_by_role("link").click()
    expect(page).to_have_url(f"{binning.url}/dashboard/images/{new}")

    open_image(page, binning.url, old)
    expect(page.locator("#deprecation-note")).to_contain_text("obsolete: new boots of it are refused")
    page.locator("#replacement-link").click()
    expect(page).to_have_url(f"{binning.url}/dashboard/images/{new}")
    page.get_by_role("link", name="Families").click()
    expect(page.locator("#families tr", has_text="browser-os")).to_contain_text("build-2")


def test_delete_to_the_bin_restore_and_purge(page: Page, binning: GlimpseServer, shots: Path) -> None:
    project = f"prj-{uuid.uuid4().hex[:6]}"
    headers = {"X-Project-Id": project, "X-Roles": "member,reader"}
    kept, gone = _image(binning, headers, "kept-image"), _image(binning, headers, "gone-image")
    assert httpx.post(f"{binning.url}/v2/images/{kept}/members", json={"member": "friend"}, headers=headers).is_success
    log_in(page, binning.url, project, "member")

    for image_id in (kept, gone):
        open_image(page, binning.url, image_id)
        page.locator("#action-delete").click()
        expect(page.locator("#bin-note")).to_contain_text("recycle bin")
        page.locator("#confirm-delete").click()
        flash(page, "The image was deleted.")
    assert httpx.get(f"{binning.url}/v2/images/{kept}", headers=headers).status_code == 404

    page.get_by_role("link", name="Recycle bin").click()
    expect(page.locator(f"#bin-{kept}")).to_contain_text("kept-image")
    expect(page.locator(f"#bin-{gone}")).to_contain_text("active")
    page.screenshot(path=shots / "recycle-bin.png", full_page=True)

    page.get_by_role("button", name="Restore kept-image").click()
    flash(page, "Image restored: it is active again.")
    expect(page.locator("#image-status")).to_have_text("active")
    members = httpx.get(f"{binning.url}/v2/images/{kept}/members", headers=headers).json()["members"]
    assert [m["member_id"] for m in members] == ["friend"]

    page.get_by_role("link", name="Recycle bin").click()
    page.get_by_role("button", name="Remove for good: gone-image").click()
    flash(page, f"Image {gone} removed for good.")
    expect(page.locator(f"#bin-{gone}")).to_have_count(0)
    expect(page.locator("#bin")).to_contain_text("The recycle bin is empty.")
    assert not (binning.data_dir / "images" / gone).exists()
    assert (binning.data_dir / "images" / kept).exists()
