"""The image detail page: tabs, editing every attribute, uploading to a queued image, protected deletes, narrow
screens, and refusals in plain words."""

from __future__ import annotations

import html
import re
import uuid
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.pages import csrf_token, flash, log_in, log_out, open_image
from tests.disk_bytes import raw_disk_bytes
from tests.functional.http_server import FileServer
from tests.functional.server import GlimpseServer

PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
WIDTHS = [1280, 390]
# The elements reaching past the screen's right edge (to say which one when a page is too wide).
WIDER_THAN_SCREEN = """[...document.querySelectorAll('*')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth)
  .map(e => e.tagName + '#' + e.id).slice(0, 8)"""


def _api(server: GlimpseServer, project: str, role: str = "member") -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"X-Project-Id": project, "X-Roles": role}, timeout=30)


def _project(tag: str) -> str:
    return f"prj-{tag}-{uuid.uuid4().hex[:6]}"


def _image(api: httpx.Client, **body: object) -> dict[str, object]:
    created = api.post("/v2/images", json={"disk_format": "raw", "container_format": "bare", **body})
    assert created.status_code == 201, created.text
    return dict(created.json())


def _tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    expect(page.get_by_role("tabpanel", name=name)).to_be_visible()


def test_tabs_switch_in_place_by_mouse_and_keys_and_work_without_javascript(
    page: Page, browser: Browser, glimpse: GlimpseServer
) -> None:
    project = _project("tab")
    with _api(glimpse, project) as api:
        image = _image(api, name="tabbed")
    log_in(page, glimpse.url, project, "member")
    open_image(page, glimpse.url, str(image["id"]))
    expect(page.get_by_role("tab", name="Overview")).to_have_attribute("aria-selected", "true")
    page.evaluate("window.samePage = true")
    _tab(page, "Members")
    assert page.evaluate("window.samePage") is True  # no reload
    expect(page).to_have_url(re.compile(r"\?tab=members$"))
    expect(page.get_by_role("tabpanel", name="Overview")).to_be_hidden()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Locations")).to_be_focused()
    expect(page.get_by_role("tabpanel", name="Locations")).to_be_visible()
    page.keyboard.press("Home")
    expect(page.get_by_role("tab", name="Overview")).to_be_focused()
    expect(page.get_by_role("tab", name="Overview")).to_have_attribute("aria-selected", "true")
    # Timestamps to the second, in the reader's language and zone (UTC here), no microseconds.
    expect(page.locator("#attributes")).to_contain_text(
        re.compile(r"created_at\s*[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d\d:\d\d\s[AP]M UTC")
    )

    # Without JavaScript the tab links load the page with that panel shown.
    cookies = page.context.cookies()
    plain = browser.new_context(java_script_enabled=False)
    plain.add_cookies(cookies)
    try:
        bare = plain.new_page()
        bare.goto(f"{glimpse.url}/dashboard/images/{image['id']}")
        bare.get_by_role("tab", name="Properties").click()
        expect(bare).to_have_url(re.compile(r"\?tab=properties$"))
        expect(bare.get_by_label("Name", exact=True)).to_be_visible()
        expect(bare.locator("#panel-overview")).to_be_hidden()
    finally:
        plain.close()


def test_member_edits_every_attribute_tags_and_formats_of_a_queued_image(page: Page, glimpse: GlimpseServer) -> None:
    project = _project("edit")
    with _api(glimpse, project) as api:
        image = _image(api, name="to-edit", disk_format="qcow2", tags=["old", "keep"])
        log_in(page, glimpse.url, project, "member")
        page.goto(f"{glimpse.url}/dashboard/images/{image['id']}?tab=properties")
        form = page.locator("#edit-form")
        form.get_by_label("Name", exact=True).fill("edited")
        form.get_by_label("Minimum disk (GB)").fill("3")
        form.get_by_label("Minimum RAM (MB)").fill("512")
        form.get_by_label("Protected (cannot be deleted)").check()
        form.get_by_label("Hidden from image lists").check()
        form.get_by_label("Disk format").select_option("raw")
        form.get_by_label("Container format").select_option("ovf")
        form.get_by_label("Remove tag old").check()
        form.get_by_label("Add tags").fill("new, other ,new")
        for key, value in {"architecture": "x86_64", "os_distro": "debian", "os_version": "12"}.items():
            form.get_by_label(key, exact=True).fill(value)
        form.get_by_role("button", name="Save metadata").click()
        flash(page, "Metadata saved.")
        expect(page.get_by_role("tabpanel", name="Properties")).to_be_visible()  # the answer opens on the form's tab
        doc = api.get(f"/v2/images/{image['id']}").json()
    assert (doc["name"], doc["min_disk"], doc["min_ram"], doc["protected"], doc["os_hidden"]) == (
        "edited",
        3,
        512,
        True,
        True,
    )
    assert (doc["disk_format"], doc["container_format"]) == ("raw", "ovf")
    assert doc["tags"] == ["keep", "new", "other"]
    assert (doc["architecture"], doc["os_distro"], doc["os_version"]) == ("x86_64", "debian", "12")

    # A member may not publish: said in plain words, nothing else changed by the refused form.
    form = page.locator("#edit-form")
    form.get_by_label("Visibility").select_option("public")
    form.get_by_label("Name", exact=True).fill("renamed-too")
    form.get_by_role("button", name="Save metadata").click()
    flash(page, "You may not make images public.", error=True)
    with _api(glimpse, project) as api:
        doc = api.get(f"/v2/images/{image['id']}").json()
        assert (doc["visibility"], doc["name"]) == ("shared", "edited")
        api.patch(f"/v2/images/{image['id']}", json=[{"op": "replace", "path": "/protected", "value": False}],
                  headers=PATCH)  # fmt: skip


def test_admin_may_publish_and_an_active_images_formats_are_not_offered(page: Page, glimpse: GlimpseServer) -> None:
    project = _project("adm")
    with _api(glimpse, project) as api:
        image = _image(api, name="publish-me")
        api.put(f"/v2/images/{image['id']}/file", content=b"x" * 4096,
                headers={"Content-Type": "application/octet-stream"})  # fmt: skip
        log_in(page, glimpse.url, project, "admin")
        page.goto(f"{glimpse.url}/dashboard/images/{image['id']}?tab=properties")
        expect(page.locator("#edit-form").get_by_label("Disk format")).to_have_count(0)
        page.locator("#edit-form").get_by_label("Visibility").select_option("public")
        page.get_by_role("button", name="Save metadata").click()
        flash(page, "Metadata saved.")
        assert api.get(f"/v2/images/{image['id']}").json()["visibility"] == "public"


def test_refused_upload_leaves_a_queued_image_that_is_retried_from_its_page(
    page: Page, glimpse: GlimpseServer, tmp_path: Path
) -> None:
    project = _project("up")
    data = tmp_path / "disk.raw"
    data.write_bytes(raw_disk_bytes(256 * 1024))
    with _api(glimpse, project) as api:
        image = _image(api, name="retry-me", disk_format="qcow2")
        log_in(page, glimpse.url, project, "member")
        open_image(page, glimpse.url, str(image["id"]))
        page.get_by_label("Upload image data").set_input_files(str(data))
        page.get_by_role("button", name="Upload", exact=True).click()
        expect(page.get_by_role("alert")).to_contain_text("does not match disk_format qcow2")
        assert api.get(f"/v2/images/{image['id']}").json()["status"] == "queued"
        # The format was wrong: fix it (allowed while queued) and send the same file again.
        _tab(page, "Properties")
        page.locator("#edit-form").get_by_label("Disk format").select_option("raw")
        page.get_by_role("button", name="Save metadata").click()
        flash(page, "Metadata saved.")
        page.get_by_label("Upload image data").set_input_files(str(data))
        page.get_by_role("button", name="Upload", exact=True).click()
        expect(page.locator("#image-status")).to_have_text("active", timeout=30_000)
        assert api.get(f"/v2/images/{image['id']}/file").content == data.read_bytes()
    expect(page.get_by_label("Upload image data")).to_have_count(0)


def test_reader_sees_no_upload_and_refusals_name_the_image(page: Page, glimpse: GlimpseServer) -> None:
    project = _project("rd")
    with _api(glimpse, project) as api:
        image = _image(api, name="cirros-ro")
    log_in(page, glimpse.url, project, "reader")
    open_image(page, glimpse.url, str(image["id"]))
    expect(page.get_by_label("Upload image data")).to_have_count(0)
    _tab(page, "Properties")
    expect(page.locator("#edit-form")).to_have_count(0)
    token = csrf_token(page)
    for action, said in {"edit": "You may not change image 'cirros-ro'.",
                         "delete": "You may not delete image 'cirros-ro'."}.items():  # fmt: skip
        shown = page.request.post(f"{glimpse.url}/dashboard/images/{image['id']}/{action}",
                                  form={"csrf_token": token, "name": "x", "min_disk": "0", "min_ram": "0"})  # fmt: skip
        assert said in html.unescape(shown.text())
        assert "authorized to complete" not in shown.text()


def test_a_protected_images_delete_page_offers_unprotect_not_delete(page: Page, glimpse: GlimpseServer) -> None:
    project = _project("prot")
    with _api(glimpse, project) as api:
        image = _image(api, name="cirros", protected=True)
    image_id = str(image["id"])
    log_in(page, glimpse.url, project, "reader")
    page.goto(f"{glimpse.url}/dashboard/images/{image_id}/delete")
    expect(page.get_by_role("heading", level=1)).to_have_text("Image “cirros” is protected")
    expect(page.get_by_role("button", name="Delete image")).to_have_count(0)
    expect(page.get_by_role("button", name="Unprotect")).to_have_count(0)
    log_out(page)
    log_in(page, glimpse.url, project, "member")
    page.goto(f"{glimpse.url}/dashboard/images/{image_id}/delete")
    expect(page.get_by_role("button", name="Delete image")).to_have_count(0)
    token = csrf_token(page)  # a forged delete is refused with the image's name
    shown = page.request.post(f"{glimpse.url}/dashboard/images/{image_id}/delete", form={"csrf_token": token})
    assert "Image 'cirros' is protected" in html.unescape(shown.text())
    page.get_by_role("button", name="Unprotect").click()
    flash(page, "The image is no longer protected.")
    page.get_by_role("button", name="Delete image").click()
    flash(page, "The image was deleted.")
    with _api(glimpse, project) as api:
        assert api.get(f"/v2/images/{image_id}").status_code == 404


@pytest.mark.parametrize("width", WIDTHS)
def test_detail_page_fits_the_screen(page: Page, glimpse: GlimpseServer, width: int) -> None:
    project = _project("w")
    props = {f"x_property_with_a_long_name_{n}": "value-" + "v" * 60 for n in range(30)}
    with _api(glimpse, project) as api:
        image = _image(api, name="a-very-long-image-name-" + "n" * 120, **props)
        for _ in range(6):
            member = f"project-{uuid.uuid4().hex}{uuid.uuid4().hex}"
            assert api.post(f"/v2/images/{image['id']}/members", json={"member": member}).status_code == 200
    page.set_viewport_size({"width": width, "height": 800})
    log_in(page, glimpse.url, project, "member")
    open_image(page, glimpse.url, str(image["id"]))
    for tab in ("Overview", "Properties", "Members", "Locations"):
        _tab(page, tab)
        wide = page.evaluate(WIDER_THAN_SCREEN)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (tab, wide)
    # The members table scrolls inside its card rather than pushing the page wider.
    _tab(page, "Members")
    card = page.get_by_role("tabpanel", name="Members").bounding_box()
    wrap = page.locator("#members-wrap").bounding_box()
    assert card is not None and wrap is not None
    assert wrap["x"] + wrap["width"] <= card["x"] + card["width"] + 0.5
    # Labels never sit on their values: at 390 px each value starts below its label.
    _tab(page, "Overview")
    row = page.locator("#attributes div").first
    label, value = row.locator("dt").bounding_box(), row.locator("dd").bounding_box()
    assert label is not None and value is not None
    if width == 390:
        assert value["y"] >= label["y"] + label["height"] - 0.5
    else:
        assert value["x"] >= label["x"] + label["width"]


def test_retry_import_from_a_url_on_a_queued_image(page: Page, tmp_path: Path) -> None:
    root = tmp_path / "web"
    root.mkdir()
    data = raw_disk_bytes(512 * 1024)
    (root / "disk.raw").write_bytes(data)
    with FileServer(root) as files:
        conf = f"[import_filtering_opts]\nallow_private_addresses = true\nallowed_ports = {files.port}\n"
        server = GlimpseServer(tmp_path / "srv", extra_conf=conf).start()
        try:
            project = _project("imp")
            with _api(server, project) as api:
                image = _image(api, name="imported")
                log_in(page, server.url, project, "member")
                open_image(page, server.url, str(image["id"]))
                page.get_by_label("Import data from URL").fill(f"{files.url}/files/missing.raw")
                page.get_by_role("button", name="Import").click()
                flash(page, "Import started")
                for _ in range(100):  # the download fails: the image stays queued, the form is offered again
                    tasks = api.get(f"/v2/images/{image['id']}/tasks").json()["tasks"]
                    if tasks and tasks[0]["status"] in ("failure", "success"):
                        break
                    page.wait_for_timeout(200)
                assert api.get(f"/v2/images/{image['id']}").json()["status"] == "queued"
                page.reload()
                page.get_by_label("Import data from URL").fill(f"{files.url}/files/disk.raw")
                page.get_by_role("button", name="Import").click()
                flash(page, "Import started")
                for _ in range(100):
                    if api.get(f"/v2/images/{image['id']}").json()["status"] == "active":
                        break
                    page.wait_for_timeout(200)
                assert api.get(f"/v2/images/{image['id']}/file").content == data
        finally:
            server.stop()
