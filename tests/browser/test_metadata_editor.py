"""The image's "Update metadata" editor in a real browser: catalog properties set and removed on an image."""

from __future__ import annotations

import uuid

import httpx
from playwright.sync_api import Page, expect

from tests.browser.pages import flash, log_in, log_out, open_image
from tests.functional.server import GlimpseServer


def test_member_sets_and_removes_catalog_properties(page: Page, glimpse: GlimpseServer) -> None:
    project, tag = f"prj-md-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex[:6]
    admin = {"X-Project-Id": "ops", "X-Roles": "admin"}
    member = {"X-Project-Id": project, "X-Roles": "member"}
    namespace = {
        "namespace": f"OS::Browser::{tag}", "display_name": f"Browser test {tag}", "visibility": "public",
        "description": "Disk settings for the browser test.",
        "resource_type_associations": [{"name": "OS::Glance::Image", "prefix": f"b{tag}_"}],
        "properties": {
            "bus": {"title": f"Disk bus {tag}", "type": "string", "enum": ["scsi", "virtio"],
                    "description": "How the disk is attached."},
            "cores": {"title": f"Cores {tag}", "type": "integer"},
        },
    }  # fmt: skip
    assert httpx.post(f"{glimpse.url}/v2/metadefs/namespaces", json=namespace, headers=admin).status_code == 201
    created = httpx.post(f"{glimpse.url}/v2/images", json={"name": f"md-{tag}"}, headers=member)
    assert created.status_code == 201
    image_id = created.json()["id"]

    log_in(page, glimpse.url, project, "member")
    open_image(page, glimpse.url, image_id)
    page.get_by_role("link", name="Update metadata").click()
    section = page.get_by_role("region", name=f"Browser test {tag}")
    expect(section).to_contain_text("Disk settings for the browser test.")
    bus = section.get_by_label(f"Disk bus {tag}", exact=True)
    expect(bus).to_have_accessible_description("How the disk is attached.")
    bus.select_option("virtio")
    section.get_by_label(f"Cores {tag}", exact=True).fill("4")
    section.get_by_role("button", name=f"Save Browser test {tag}").click()
    flash(page, f"Metadata from Browser test {tag} saved.")
    image = httpx.get(f"{glimpse.url}/v2/images/{image_id}", headers=member).json()
    assert image[f"b{tag}_bus"] == "virtio" and image[f"b{tag}_cores"] == "4"

    section = page.get_by_role("region", name=f"Browser test {tag}")
    expect(section.get_by_label(f"Disk bus {tag}", exact=True)).to_have_value("virtio")
    section.get_by_label(f"Cores {tag}", exact=True).fill("four")
    section.get_by_role("button", name=f"Save Browser test {tag}").click()
    flash(page, f"Cores {tag} must be an integer.", error=True)

    section = page.get_by_role("region", name=f"Browser test {tag}")
    section.get_by_label(f"Remove Disk bus {tag}").check()
    section.get_by_role("button", name=f"Save Browser test {tag}").click()
    flash(page, "saved")
    image = httpx.get(f"{glimpse.url}/v2/images/{image_id}", headers=member).json()
    assert f"b{tag}_bus" not in image and image[f"b{tag}_cores"] == "4"

    # A reader of the project is offered no editor: modify_image decides, as for the API.
    log_out(page)
    log_in(page, glimpse.url, project, "reader")
    open_image(page, glimpse.url, image_id)
    expect(page.locator("#image-status")).to_be_visible()
    expect(page.get_by_role("link", name="Update metadata")).to_have_count(0)
