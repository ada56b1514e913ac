"""A real `glimpse serve` and Debian's headless Chromium driven by Playwright (no browser download)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.server import GlimpseServer
from tests.keystone.fixtures import keystone_projects, keystone_server  # noqa: F401  (a real Keystone)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not Path(CHROMIUM).exists():  # scripts/test installs Debian's chromium
    pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium", allow_module_level=True)

from playwright.sync_api import Browser, Page, Playwright, sync_playwright  # noqa: E402


# Package scope: Playwright's event loop must be gone before other tests call asyncio.run().
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def glimpse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlimpseServer]:
    server = GlimpseServer(tmp_path_factory.mktemp("glimpse-dashboard")).start()
    yield server
    server.stop()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where tests put screenshots: $GLIMPSE_SCREENSHOTS when set (to look at them), else the test's tmp dir."""
    folder = Path(os.environ.get("GLIMPSE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()
