"""Create Image in a real browser: the disk format detected from the chosen file (its content by the server's
inspector, else its name) and overridable; a refused upload pointing at the image's page; the Cancel button gone
once it cannot do anything; a reader told plainly they may not create images; the favicon; policy in words."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.pages import api, csrf_token, flash, log_in, throttle_uploads
from tests.disk_bytes import raw_disk_bytes
from tests.functional.server import GlimpseServer

MIB = 1024 * 1024
WIDTHS = [pytest.param(1280, id="desktop"), pytest.param(390, id="phone")]


def _member(page: Page, glimpse: GlimpseServer, width: int = 1280, role: str = "member") -> str:
    page.set_viewport_size({"width": width, "height": 900})
    project = f"prj-c-{uuid.uuid4().hex[:6]}"
    log_in(page, glimpse.url, project, role)
    return project


def _choose(page: Page, file: Path) -> None:
    page.get_by_label("Image file").set_input_files(str(file))


def _qcow2(folder: Path, name: str = "cloud.img") -> Path:
    disk = folder / name  # a qcow2 named .img, as Ubuntu's cloud images are: the content decides
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    return disk


def _no_sideways_scrolling(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("width", WIDTHS)
def test_the_format_is_detected_from_the_file(
    page: Page, glimpse: GlimpseServer, tmp_path: Path, shots: Path, width: int
) -> None:
    _member(page, glimpse, width)
    page.goto(f"{glimpse.url}/dashboard/images/new")
    disk_format, container = page.get_by_label("Format", exact=True), page.get_by_label("Container format")
    note = page.locator("#format-detected")
    expect(disk_format).to_have_value("")  # no longer qcow2 whatever the file

    _choose(page, _qcow2(tmp_path))
    expect(note).to_have_text("Detected qcow2 from the file's content. You can choose another format.")
    expect(disk_format).to_have_value("qcow2")
    page.screenshot(path=shots / f"create-detected-{width}.png", full_page=True)
    _no_sideways_scrolling(page)

    (tmp_path / "cd").mkdir()
    (tmp_path / "cd" / "README").write_text("hello")
    iso = tmp_path / "installer.bin"
    subprocess.run(["genisoimage", "-quiet", "-o", str(iso), str(tmp_path / "cd")], check=True)
    _choose(page, iso)
    expect(note).to_have_text("Detected iso from the file's content. You can choose another format.")
    expect(disk_format).to_have_value("iso")

    plain = tmp_path / "disk.raw"
    plain.write_bytes(raw_disk_bytes(MIB))
    _choose(page, plain)
    expect(note).to_have_text("Detected raw from the file's name. You can choose another format.")
    expect(disk_format).to_have_value("raw")

    # A name the content contradicts loses: no qcow2 header, so not qcow2.
    fake = tmp_path / "fake.qcow2"
    fake.write_bytes(raw_disk_bytes(MIB))
    _choose(page, fake)
    expect(note).to_have_text("Detected raw from the file's content. You can choose another format.")
    expect(disk_format).to_have_value("raw")

    # An appliance sets its container; the next file puts it back.
    appliance = tmp_path / "appliance.ova"
    appliance.write_bytes(raw_disk_bytes(4096))
    _choose(page, appliance)
    expect(container).to_have_value("ova")
    ploop = tmp_path / "disk.ploop"
    ploop.write_bytes(raw_disk_bytes(4096))
    _choose(page, ploop)
    expect(note).to_have_text("Detected ploop from the file's name. You can choose another format.")
    expect(container).to_have_value("bare")

    disk_format.select_option("vmdk")  # the person's choice stands, and the detection stays in view
    expect(note).to_have_text("Detected ploop; you chose vmdk.")
    expect(disk_format).to_have_value("vmdk")


def test_an_overridden_format_is_refused_and_the_message_leads_to_the_image(
    page: Page, glimpse: GlimpseServer, tmp_path: Path, shots: Path
) -> None:
    project = _member(page, glimpse)
    page.goto(f"{glimpse.url}/dashboard/images/new")
    name = f"wrong-{uuid.uuid4().hex[:6]}"
    page.get_by_label("Name").fill(name)
    _choose(page, _qcow2(tmp_path))
    expect(page.get_by_label("Format", exact=True)).to_have_value("qcow2")
    page.get_by_label("Format", exact=True).select_option("raw")  # overridden, wrongly: the server refuses
    page.get_by_role("button", name="Create image").click()
    text = page.locator("#upload-text")
    expect(text).to_contain_text(f"Image “{name}” was created but has no data.")
    expect(text).to_contain_text("qcow2")  # the inspector's reason
    expect(text).to_have_attribute("role", "alert")
    expect(page.get_by_role("button", name="Cancel upload")).to_be_hidden()
    page.screenshot(path=shots / "create-refused-upload.png", full_page=True)
    link = text.get_by_role("link", name="Upload its data again on its page.")
    href = link.get_attribute("href") or ""
    assert href.startswith("/dashboard/images/") and href.endswith("#upload")
    link.click()
    image_id = page.url.split("/dashboard/images/")[1].split("#")[0]
    assert page.url.endswith(f"/dashboard/images/{image_id}#upload")
    expect(page.locator("#image-status")).to_have_text("queued")
    with api(glimpse, project) as client:
        assert client.get(f"/v2/images/{image_id}").json()["name"] == name


def test_cancel_goes_once_the_upload_is_cancelled(page: Page, glimpse: GlimpseServer, tmp_path: Path) -> None:
    _member(page, glimpse)
    page.goto(f"{glimpse.url}/dashboard/images/new")
    page.get_by_label("Name").fill("cancelled")
    source = tmp_path / "big.img"
    source.write_bytes(raw_disk_bytes(16 * MIB))
    _choose(page, source)
    expect(page.get_by_label("Format", exact=True)).to_have_value("raw")
    throttle_uploads(page, 1 * MIB)
    page.get_by_role("button", name="Create image").click()
    expect(page.locator("#upload-text")).to_contain_text("Uploaded")
    cancel = page.get_by_role("button", name="Cancel upload")
    expect(cancel).to_be_visible()
    cancel.click()
    expect(page.locator("#upload-text")).to_have_text("Upload cancelled; the unfinished image was removed.")
    expect(cancel).to_be_hidden()


@pytest.mark.parametrize("width", WIDTHS)
def test_a_reader_is_told_they_may_not_create_images(
    page: Page, glimpse: GlimpseServer, shots: Path, width: int
) -> None:
    _member(page, glimpse, width, role="reader")
    page.get_by_role("link", name="Create image").first.click()
    expect(page.locator("#create-refused")).to_contain_text("You may not create images.")
    expect(page.locator("#create-form")).to_have_count(0)
    expect(page.get_by_label("Image file")).to_have_count(0)
    page.screenshot(path=shots / f"create-reader-{width}.png", full_page=True)
    _no_sideways_scrolling(page)
    assert page.request.get(f"{glimpse.url}/dashboard/images/new").status == 403


def test_a_policy_refusal_is_said_in_words(page: Page, glimpse: GlimpseServer) -> None:
    project = _member(page, glimpse)
    page.goto(f"{glimpse.url}/dashboard/images/new")
    page.get_by_label("Name").fill("for everyone")
    page.get_by_label("Format", exact=True).select_option("raw")
    page.get_by_label("Visibility").select_option("public")  # publicize_image is the administrators'
    page.get_by_role("button", name="Create image").click()
    flash(page, "You may not make images public.", error=True)
    expect(page.get_by_role("alert")).not_to_contain_text("publicize_image")
    with api(glimpse, project) as client:
        assert client.get("/v2/images", params={"owner": project}).json()["images"] == []


def test_the_probe_wants_a_session_its_token_and_only_a_head(page: Page, glimpse: GlimpseServer) -> None:
    probe = f"{glimpse.url}/dashboard/probe?filename=x.qcow2"
    octets = {"Content-Type": "application/octet-stream"}
    assert page.request.post(probe, data=b"x", headers=octets).status == 401
    _member(page, glimpse)
    refused = page.request.post(probe, data=b"x", headers=octets)
    assert refused.status == 403 and "did not come from this dashboard" in refused.json()["error"]
    signed = {**octets, "X-CSRF-Token": csrf_token(page)}
    too_long = page.request.post(probe, data=raw_disk_bytes(64 * 1024 + 1), headers=signed)
    assert too_long.status == 413
    answer = page.request.post(probe, data=b"QFI\xfb" + bytes(508), headers=signed)  # qcow2's magic and header
    assert answer.status == 200
    assert answer.json() == {"disk_format": "qcow2", "container_format": None, "source": "content"}


def test_the_favicon_is_a_real_icon(page: Page, glimpse: GlimpseServer) -> None:
    for path in ("/favicon.ico", "/dashboard/favicon.ico", "/dashboard/static/favicon.svg"):
        answer = page.request.get(glimpse.url + path)
        assert answer.status == 200, path
        assert answer.headers["content-type"].startswith("image/svg+xml"), path
        assert b"<svg" in answer.body()
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    _member(page, glimpse)
    page.goto(f"{glimpse.url}/dashboard/images/new")
    icon = page.locator("link[rel=icon]")
    expect(icon).to_have_attribute("href", "/dashboard/static/favicon.svg")
    assert missing == []


def test_without_the_script_a_refused_upload_lands_on_the_images_upload_form(
    browser: Browser, glimpse: GlimpseServer, tmp_path: Path
) -> None:
    """The form's own post streams the file: a refusal leads to the image's page, at its upload form."""
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        _member(page, glimpse)
        page.goto(f"{glimpse.url}/dashboard/images/new")
        name = f"plain-{uuid.uuid4().hex[:6]}"
        page.get_by_label("Name").fill(name)
        page.get_by_label("Format", exact=True).select_option("raw")
        _choose(page, _qcow2(tmp_path))
        page.get_by_role("button", name="Create image").click()
        page.wait_for_url("**/dashboard/images/*#upload")
        flash(page, f"Image “{name}” was created but its data was refused: Image content is qcow2", error=True)
        expect(page.locator("#image-status")).to_have_text("queued")
    finally:
        context.close()
