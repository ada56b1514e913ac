"""Horizon's direct upload: a page of another origin sends an image straight to Glimpse with fetch().

Chromium enforces CORS for real: the preflight must be answered, and the actual responses marked, for the
origin the operator allowed in [cors] allowed_origin; a page of any other origin gets nowhere.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

from tests.functional.server import GlimpseServer

UPLOAD = """async ([api, size]) => {
  try {
    const made = await fetch(api + "/v2/images", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({name: "from-the-browser", disk_format: "raw", container_format: "bare"})});
    const image = await made.json();
    const data = new Uint8Array(size).fill(7);
    const put = await fetch(api + "/v2/images/" + image.id + "/file",
      {method: "PUT", headers: {"Content-Type": "application/octet-stream"}, body: data});
    const shown = await (await fetch(api + "/v2/images/" + image.id)).json();
    return {put: put.status, status: shown.status, size: shown.size, virtual_size: shown.virtual_size,
            request_id: made.headers.get("x-openstack-request-id")};
  } catch (e) { return {error: String(e)}; }
}"""
SIMPLE_POST = """async (api) => {
  await fetch(api + "/v2/images", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
    body: JSON.stringify({name: "no-preflight"})});
  return "sent";
}"""


class Site:
    """A static web site on a port of its own: an origin other than Glimpse's."""

    def __init__(self, root: Path) -> None:
        handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, Site]]:
    root = tmp_path_factory.mktemp("site")
    (root / "index.html").write_text("<!doctype html><title>another site</title><p>upload page</p>")
    allowed, other = Site(root), Site(root)
    yield allowed, other
    allowed.close()
    other.close()


@pytest.fixture(scope="module")
def api(pages: tuple[Site, Site], tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlimpseServer]:
    allowed, _ = pages
    conf = f"[cors]\nallowed_origin = {allowed.url}\n"
    server = GlimpseServer(tmp_path_factory.mktemp("cors"), extra_conf=conf).start()
    yield server
    server.stop()


def _names(api: GlimpseServer) -> list[str]:
    return [i["name"] for i in httpx.get(f"{api.url}/v2/images").json()["images"]]


def test_a_page_of_the_allowed_origin_uploads_an_image(page: Page, pages: tuple[Site, Site],
                                                        api: GlimpseServer) -> None:  # fmt: skip
    allowed, _ = pages
    page.goto(f"{allowed.url}/index.html")
    result = page.evaluate(UPLOAD, [api.url, 70000])
    assert result.get("error") is None, result
    assert result["put"] == 204
    assert result["status"] == "active" and result["size"] == result["virtual_size"] == 70000
    assert result["request_id"].startswith("req-")  # an exposed header the page can read
    assert "from-the-browser" in _names(api)


def test_a_page_of_another_origin_is_refused(page: Page, pages: tuple[Site, Site],
                                             api: GlimpseServer) -> None:  # fmt: skip
    _, other = pages
    before = _names(api)
    page.goto(f"{other.url}/index.html")
    result = page.evaluate(UPLOAD, [api.url, 1000])
    assert "error" in result and "Failed to fetch" in result["error"]  # the preflight gave it no permission
    assert page.evaluate(SIMPLE_POST, api.url) == "sent"  # no preflight: it reaches the server...
    assert _names(api) == before  # ...whose cross-site guard refuses it: nothing was created
