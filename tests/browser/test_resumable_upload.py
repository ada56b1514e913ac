"""The Create Image page's upload over tus (tus-js-client) in a real browser: a page reload mid-way and a dropped
connection both go on from the server's offset, into the same image."""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, Request, Route, expect

from tests.browser.pages import fill_create_form, image_id_of, log_in, throttle_uploads
from tests.disk_bytes import raw_disk_bytes
from tests.functional.server import GlimpseServer

MIB = 1024 * 1024
CHUNK = 8 * MIB  # the page's chunk size (glimpse.dashboard.images.UPLOAD_CHUNK_SIZE)
DETAIL = re.compile(r"/dashboard/images/[0-9a-f-]{36}$")  # an image's page (not /dashboard/images/new)


def _api(server: GlimpseServer, project: str) -> httpx.Client:
    headers = {"X-Project-Id": project, "X-Roles": "member", "Tus-Resumable": "1.0.0"}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


class Uploads:
    """The tus requests the page makes, as the browser sent them."""

    def __init__(self, page: Page) -> None:
        self.sent: list[tuple[str, str, int | None]] = []
        page.on("request", self._seen)

    def _seen(self, request: Request) -> None:
        if "/uploads" in request.url:
            offset = request.headers.get("upload-offset")
            self.sent.append((request.method, request.url, int(offset) if offset is not None else None))

    def of(self, method: str) -> list[tuple[str, str, int | None]]:
        return [s for s in self.sent if s[0] == method]


def _server_offset(api: httpx.Client, upload_url: str) -> int:
    path = "/v2/" + upload_url.split("/dashboard/", 1)[1]
    response = api.head(path)
    assert response.status_code == 200, response.status_code
    return int(response.headers["upload-offset"])


def _assert_active(api: httpx.Client, image_id: str, source: Path) -> None:
    image = api.get(f"/v2/images/{image_id}").json()
    assert (image["status"], image["size"]) == ("active", source.stat().st_size)
    assert image["checksum"] == hashlib.md5(source.read_bytes()).hexdigest()
    assert image["os_hash_value"] == hashlib.sha512(source.read_bytes()).hexdigest()


def test_a_reload_mid_way_resumes_from_the_servers_offset(page: Page, glimpse: GlimpseServer, tmp_path: Path) -> None:
    project = f"prj-rl-{uuid.uuid4().hex[:6]}"
    source = tmp_path / "reloaded.img"
    source.write_bytes(raw_disk_bytes(20 * MIB))
    uploads = Uploads(page)
    log_in(page, glimpse.url, project, "member")
    fill_create_form(page, "reloaded", source)
    throttle_uploads(page, 3 * MIB)
    page.get_by_role("button", name="Create image").click()
    expect(page.locator("#upload-text")).to_contain_text("Uploaded")
    with _api(glimpse, project) as api:
        deadline = time.monotonic() + 60
        while not uploads.of("PATCH") or _server_offset(api, uploads.of("PATCH")[0][1]) < CHUNK:
            assert time.monotonic() < deadline, "the first chunk did not arrive"
            page.wait_for_timeout(100)
        upload_url = uploads.of("PATCH")[0][1]
        [image] = api.get("/v2/images", params={"owner": project}).json()["images"]

        page.reload()
        # The file must be chosen again; the page says which upload can go on.
        expect(page.locator("#upload-pending")).to_contain_text(f"reloaded.img into image {image['id']}")
        before = len(uploads.sent)
        fill_create_form(page, "reloaded", source)
        throttle_uploads(page, 64 * MIB)
        page.get_by_role("button", name="Create image").click()
        expect(page.locator("#upload-text")).to_contain_text(f"into image {image['id']}")
        page.wait_for_url(f"{glimpse.url}/dashboard/images/{image['id']}", timeout=60_000)
        assert image_id_of(page) == image["id"]

        after = uploads.sent[before:]
        assert [s for s in after if s[0] == "POST"] == [], "no new upload after the reload"
        resumed = [offset for method, url, offset in after if method == "PATCH" and url == upload_url]
        assert resumed and resumed[0] is not None and resumed[0] >= CHUNK, after  # not from zero
        _assert_active(api, image["id"], source)
        assert [i["id"] for i in api.get("/v2/images", params={"owner": project}).json()["images"]] == [image["id"]]
    expect(page.locator("#image-status")).to_have_text("active")


def test_a_dropped_connection_resumes_by_itself(page: Page, glimpse: GlimpseServer, tmp_path: Path) -> None:
    project = f"prj-dc-{uuid.uuid4().hex[:6]}"
    source = tmp_path / "dropped.img"
    source.write_bytes(raw_disk_bytes(2 * CHUNK + 3 * MIB))
    uploads = Uploads(page)
    patches: list[int] = []

    def drop_the_second_patch(route: Route) -> None:
        if route.request.method == "PATCH":
            patches.append(1)
            if len(patches) == 2:
                route.abort("connectionreset")
                return
        route.continue_()

    page.route("**/dashboard/images/*/uploads/*", drop_the_second_patch)
    log_in(page, glimpse.url, project, "member")
    fill_create_form(page, "dropped", source)
    page.get_by_role("button", name="Create image").click()
    page.wait_for_url(DETAIL, timeout=60_000)
    expect(page.locator("#image-status")).to_have_text("active")
    offsets = [offset for _, _, offset in uploads.of("PATCH")]
    assert offsets == [0, CHUNK, CHUNK, 2 * CHUNK], offsets  # the dropped chunk again, not the whole file
    assert len(uploads.of("POST")) == 1  # one upload, resumed
    assert uploads.of("HEAD"), "the page asked the server's offset before going on"
    with _api(glimpse, project) as api:
        _assert_active(api, image_id_of(page), source)


def test_without_javascript_the_form_still_uploads_the_file(
    browser: Browser, glimpse: GlimpseServer, tmp_path: Path
) -> None:
    project = f"prj-nj-{uuid.uuid4().hex[:6]}"
    source = tmp_path / "plain.img"
    source.write_bytes(raw_disk_bytes(3 * MIB + 5))
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        log_in(page, glimpse.url, project, "member")
        fill_create_form(page, "no-script", source)
        page.get_by_role("button", name="Create image").click()
        page.wait_for_url(DETAIL, timeout=60_000)
        expect(page.locator("#image-status")).to_have_text("active")
        with _api(glimpse, project) as api:
            _assert_active(api, image_id_of(page), source)
    finally:
        context.close()
