"""The dashboard in a real browser: the image lifecycle as a project member, and as a reader who may change nothing."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.browser.pages import (
    csrf_token,
    fill_create_form,
    flash,
    image_id_of,
    log_in,
    log_out,
    open_image,
    throttle_uploads,
)
from tests.disk_bytes import raw_disk_bytes
from tests.functional.http_server import FileServer
from tests.functional.server import GlimpseServer

MIB = 1024 * 1024


def _api(server: GlimpseServer, project: str, role: str = "member") -> httpx.Client:
    headers = {"X-Project-Id": project, "X-Roles": role}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


def test_image_lifecycle_as_member(page: Page, glimpse: GlimpseServer, tmp_path: Path, shots: Path) -> None:
    owner, other = f"prj-a-{uuid.uuid4().hex[:6]}", f"prj-b-{uuid.uuid4().hex[:6]}"
    source = tmp_path / "disk.img"
    source.write_bytes(raw_disk_bytes(6 * MIB))
    name = f"cirros-{uuid.uuid4().hex[:6]}"

    # A browser asking for the service's root is sent to the dashboard; API clients still get versions.
    page.goto(glimpse.url)
    expect(page).to_have_url(f"{glimpse.url}/dashboard/login")
    assert httpx.get(glimpse.url).status_code == 300
    log_in(page, glimpse.url, owner, "member")

    # Upload a real file, watch the progress bar move, and see the image become active.
    fill_create_form(page, name, source)
    page.screenshot(path=shots / "create-form.png", full_page=True)
    throttle_uploads(page, 2 * MIB)
    page.get_by_role("button", name="Create image").click()
    progress = page.locator("#upload-progress")
    expect(progress).to_be_visible()
    expect(page.locator("#upload-text")).to_contain_text(re.compile(r"Uploaded ([1-9]|[1-9][0-9])%"))
    page.screenshot(path=shots / "uploading.png", full_page=True)
    page.wait_for_url(f"{glimpse.url}/dashboard/images/*", timeout=30_000)
    expect(page.locator("#image-status")).to_have_text("active")
    image_id = image_id_of(page)
    attributes = page.locator("#attributes")
    expect(attributes).to_contain_text(f"{6 * MIB} bytes")
    expect(attributes).to_contain_text("sha512")
    expect(page.get_by_label("os_distro", exact=True)).to_have_value("cirros")
    page.screenshot(path=shots / "detail.png", full_page=True)

    # The data that arrived is the file that was sent.
    with page.expect_download() as download:
        page.get_by_role("link", name="Download").click()
    assert Path(download.value.path()).read_bytes() == source.read_bytes()

    # Edit metadata: change a property, add one; a value the schema refuses is explained.
    page.get_by_role("tab", name="Properties").click()
    page.get_by_label("architecture", exact=True).fill("aarch64")
    page.get_by_label("New property name").fill("os_version")
    page.get_by_label("New property value").fill("0.6.2")
    page.get_by_role("button", name="Save metadata").click()
    flash(page, "Metadata saved.")
    expect(page.get_by_label("architecture", exact=True)).to_have_value("aarch64")
    expect(page.get_by_label("os_version", exact=True)).to_have_value("0.6.2")
    page.get_by_label("New property name").fill("kernel_id")
    page.get_by_label("New property value").fill("not-an-image-id")
    page.get_by_role("button", name="Save metadata").click()
    flash(page, "does not match schema", error=True)

    # Share with another project, which sees it as pending and accepts it.
    page.get_by_role("tab", name="Members").click()
    page.get_by_label("Share with project").fill(other)
    page.get_by_role("button", name="Share").click()
    flash(page, f"Shared with project {other}")
    expect(page.locator("#members")).to_contain_text("pending")
    log_out(page)
    log_in(page, glimpse.url, other, "member")
    expect(page.locator("#images")).not_to_contain_text(name)
    page.get_by_label("Shared with my project").select_option("pending")
    page.get_by_role("button", name="Apply").click()
    page.get_by_role("link", name=name).click()
    expect(page.locator("#my-member-status")).to_have_text("pending")
    page.get_by_role("button", name="Accept").click()
    flash(page, "You have accepted the image.")
    expect(page.locator("#my-member-status")).to_have_text("accepted")
    page.get_by_role("link", name="Images", exact=True).first.click()
    expect(page.locator("#images")).to_contain_text(name)
    page.screenshot(path=shots / "shared-list.png", full_page=True)
    log_out(page)

    # Back as the owner: deactivate and reactivate, protect, fail to delete, unprotect, delete.
    log_in(page, glimpse.url, owner, "member")
    open_image(page, glimpse.url, image_id)
    page.get_by_role("button", name="Deactivate").click()
    flash(page, "The image is deactivated.")
    expect(page.locator("#image-status")).to_have_text("deactivated")
    page.get_by_role("button", name="Reactivate").click()
    expect(page.locator("#image-status")).to_have_text("active")
    page.get_by_role("button", name="Protect").click()
    flash(page, "The image is protected")
    page.get_by_role("link", name="Delete…").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Image “{name}” is protected")
    page.screenshot(path=shots / "delete-refused.png", full_page=True)
    page.get_by_role("button", name="Unprotect").click()
    flash(page, "The image is no longer protected.")
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Delete image “{name}”?")
    page.get_by_role("button", name="Delete image").click()
    flash(page, "The image was deleted.")
    expect(page.locator("#images")).not_to_contain_text(name)
    with _api(glimpse, owner) as api:
        assert api.get(f"/v2/images/{image_id}").status_code == 404


def _slow_upload_under_way(page: Page, glimpse: GlimpseServer, tmp_path: Path, name: str) -> str:
    """A new project's member creating image `name` with 16 MiB sent at 1 MiB/s, some of it already sent."""
    project = f"prj-{name[:4]}-{uuid.uuid4().hex[:6]}"
    source = tmp_path / "big.img"
    source.write_bytes(raw_disk_bytes(16 * MIB))
    log_in(page, glimpse.url, project, "member")
    fill_create_form(page, name, source)
    throttle_uploads(page, 1 * MIB)
    page.get_by_role("button", name="Create image").click()
    expect(page.locator("#upload-text")).to_contain_text("Uploaded")
    return project


def test_cancelled_upload_removes_the_unfinished_image(page: Page, glimpse: GlimpseServer, tmp_path: Path) -> None:
    # The message comes once the delete succeeded, so the image is gone when it shows, however loaded the machine:
    # no waiting. (The delete may meet the upload's own clean-up, which puts the image back to queued meanwhile.)
    project = _slow_upload_under_way(page, glimpse, tmp_path, "cancelled")
    page.get_by_role("button", name="Cancel upload").click()
    expect(page.locator("#upload-text")).to_have_text("Upload cancelled; the unfinished image was removed.")
    with _api(glimpse, project) as api:
        assert api.get("/v2/images", params={"owner": project}).json()["images"] == []


def test_cancelled_upload_whose_image_cannot_be_removed_says_so(
    page: Page, glimpse: GlimpseServer, tmp_path: Path
) -> None:
    """The page reports the clean-up's real outcome: protected meanwhile, the image stays, and the reason is shown."""
    project = _slow_upload_under_way(page, glimpse, tmp_path, "protected-meanwhile")
    with _api(glimpse, project) as api:
        [image] = api.get("/v2/images", params={"owner": project}).json()["images"]
        patch = [{"op": "replace", "path": "/protected", "value": True}]
        media = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
        assert api.patch(f"/v2/images/{image['id']}", json=patch, headers=media).status_code == 200
        page.get_by_role("button", name="Cancel upload").click()
        expect(page.locator("#upload-text")).to_have_text(
            f"Upload cancelled; the unfinished image is left queued (Image {image['id']} is protected and cannot be "
            "deleted.)."
        )
        assert api.get(f"/v2/images/{image['id']}").json()["protected"] is True
        patch[0]["value"] = False
        assert api.patch(f"/v2/images/{image['id']}", json=patch, headers=media).status_code == 200
        assert api.delete(f"/v2/images/{image['id']}").status_code == 204


def test_reader_can_look_but_not_change(page: Page, glimpse: GlimpseServer, shots: Path) -> None:
    project = f"prj-r-{uuid.uuid4().hex[:6]}"
    with _api(glimpse, project) as api:
        image = api.post("/v2/images", json={"name": "readonly", "disk_format": "raw", "container_format": "bare"})
        image_id = image.json()["id"]
        octets = {"Content-Type": "application/octet-stream"}
        api.put(f"/v2/images/{image_id}/file", content=b"x" * 4096, headers=octets)
    log_in(page, glimpse.url, project, "reader")
    expect(page.locator("#images")).to_contain_text("readonly")
    open_image(page, glimpse.url, image_id)
    expect(page.locator("#read-only-note")).to_be_visible()
    for name in ("Deactivate", "Protect", "Save metadata", "Share", "Delete image"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)
    expect(page.get_by_role("link", name="Delete…")).to_have_count(0)
    page.screenshot(path=shots / "reader-detail.png", full_page=True)

    # Forged posts (with a valid CSRF token) are refused by the domain's policy, with the reason shown.
    token = csrf_token(page)
    said = {"deactivate": "deactivate", "protect": "change", "delete": "delete", "edit": "change"}
    for action, verb in said.items():
        shown = page.request.post(
            f"{glimpse.url}/dashboard/images/{image_id}/{action}",
            form={"csrf_token": token, "name": "renamed", "visibility": "shared", "min_disk": "0", "min_ram": "0"},
        )  # the answer is the image's page (after the redirect) with the refusal in its alert
        assert f"You may not {verb} image &#39;readonly&#39;." in shown.text()
    with _api(glimpse, project) as api:
        doc = api.get(f"/v2/images/{image_id}").json()
    assert (doc["status"], doc["protected"], doc["name"]) == ("active", False, "readonly")

    # Creating is refused too, in plain words, before any form is offered.
    page.get_by_role("link", name="Create image").first.click()
    expect(page.locator("#create-refused")).to_contain_text("You may not create images.")


def test_forms_need_the_sessions_csrf_token(page: Page, glimpse: GlimpseServer) -> None:
    project = f"prj-x-{uuid.uuid4().hex[:6]}"
    log_in(page, glimpse.url, project, "member")
    response = page.request.post(f"{glimpse.url}/dashboard/images/new", form={"name": "x", "disk_format": "raw"})
    assert response.status == 403
    assert "did not come from this dashboard" in response.text()
    with _api(glimpse, project) as api:
        assert api.get("/v2/images", params={"owner": project}).json()["images"] == []


def test_narrow_screen_has_no_sideways_scrolling(page: Page, glimpse: GlimpseServer, shots: Path) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    log_in(page, glimpse.url, f"prj-n-{uuid.uuid4().hex[:6]}", "member")
    for path in ("/dashboard/images", "/dashboard/images/new"):
        page.goto(glimpse.url + path)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.goto(glimpse.url + "/dashboard/images")
    page.screenshot(path=shots / "narrow.png", full_page=True)
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()


def test_create_from_a_url(page: Page, tmp_path: Path, shots: Path) -> None:
    """With web-download enabled (and loopback allowed for the test), the Create form imports from a URL."""
    root = tmp_path / "web"
    root.mkdir()
    data = raw_disk_bytes(2 * MIB)
    (root / "disk.raw").write_bytes(data)
    with FileServer(root) as files:
        conf = f"[import_filtering_opts]\nallow_private_addresses = true\nallowed_ports = {files.port}\n"
        server = GlimpseServer(tmp_path / "srv", extra_conf=conf).start()
        try:
            project = f"prj-u-{uuid.uuid4().hex[:6]}"
            log_in(page, server.url, project, "member")
            fill_create_form(page, "from-url", None)
            page.get_by_label("Or import from URL").fill(f"{files.url}/files/disk.raw")
            page.get_by_role("button", name="Create image").click()
            flash(page, "Import started")
            image_id = image_id_of(page)
            with _api(server, project) as api:
                for _ in range(100):
                    if api.get(f"/v2/images/{image_id}").json()["status"] == "active":
                        break
                    page.wait_for_timeout(200)
                assert api.get(f"/v2/images/{image_id}/file").content == data
            page.reload()
            expect(page.get_by_text("active").first).to_be_visible()
            page.screenshot(path=shots / "created-from-url.png", full_page=True)
        finally:
            server.stop()
