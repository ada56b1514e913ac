# ruff: noqa: RUF001  (the catalog writes Italian with the typographic apostrophe)
"""The main flows in Italian, in Chromium: log in, the list, create with a file, the detail's tabs, edit, the delete
confirmation and the recycle bin. Each page shows Italian, and none of the catalog's English sentences is left on
it (visible text and the aria-labels, titles, placeholders and data-labels a screen reader or a phone shows)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from playwright.sync_api import Browser, Page, expect

from glimpse.dashboard.i18n import LOCALE_DIR
from tests.browser.pages import api, image_id_of, log_in
from tests.disk_bytes import raw_disk_bytes
from tests.functional.server import GlimpseServer

# API values and attribute names a page shows as they are (the overview's keys), though the catalog has the
# same word as a sentence of its own.
KEPT_AS_IS = frozenset({"name", "size", "status", "protected"})
TEXTS = """() => {
  const seen = [];
  for (const e of document.body.querySelectorAll('*')) {
    if (e.matches('script, style, code, .mono')) continue;
    seen.push((e.innerText || e.textContent || '').replace(/\\s+/g, ' ').trim());
    for (const name of ['aria-label', 'title', 'placeholder', 'data-label']) {
      if (e.hasAttribute(name)) seen.push(e.getAttribute(name).trim());
    }
  }
  return seen.filter(Boolean);
}"""


@cache
def english_sentences() -> list[re.Pattern[str]]:
    """Every msgid whose Italian differs, as a pattern of its whole text (a placeholder matches anything)."""
    with open(LOCALE_DIR / "it" / "LC_MESSAGES" / "glimpse.po", "rb") as po:
        catalog = read_po(po)
    patterns = []
    for message in catalog:
        for english, italian in zip(
            message.id if isinstance(message.id, tuple) else (message.id,),
            message.string if isinstance(message.string, tuple) else (message.string,),
            strict=False,
        ):
            text = re.sub(r"<[^>]+>", "", english)
            if not text or english == italian or text in KEPT_AS_IS:
                continue
            parts = re.split(r"%\(\w+\)s|\{\w+\}", text)
            patterns.append(re.compile(".+".join(re.escape(part) for part in parts)))
    return patterns


def assert_no_english(page: Page) -> None:
    shown = page.evaluate(TEXTS)
    leftovers = {text for text in shown for pattern in english_sentences() if pattern.fullmatch(text)}
    assert not leftovers, f"{page.url} still says, in English: {sorted(leftovers)}"


@pytest.fixture(scope="module")
def glimpse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlimpseServer]:
    """A server with a recycle bin (the shared one has none), where deleted images wait to be restored."""
    server = GlimpseServer(tmp_path_factory.mktemp("glimpse-it"), extra_conf="[recycle_bin]\nretention_period = 3600\n")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def italian(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="it-IT", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def test_the_main_flows_speak_italian(italian: Page, glimpse: GlimpseServer, tmp_path: Path) -> None:
    page = italian
    project, name = f"prj-it-{uuid.uuid4().hex[:6]}", f"immagine-{uuid.uuid4().hex[:6]}"
    page.goto(f"{glimpse.url}/dashboard/login")
    expect(page.get_by_role("heading", level=1)).to_have_text("Accedi a Glimpse")
    expect(page.get_by_label("Id del progetto")).to_be_visible()
    assert_no_english(page)
    log_in(page, glimpse.url, project, "member")
    expect(page.get_by_role("status")).to_have_text(f"Accesso eseguito al progetto {project}.")

    expect(page.get_by_role("heading", level=1)).to_have_text("Immagini")
    expect(page.locator("#images")).to_contain_text("Nessuna immagine.")
    expect(page.get_by_label("Ordina per")).to_be_visible()
    assert_no_english(page)

    page.get_by_role("navigation", name="Principale").get_by_role("link", name="Crea immagine").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Crea immagine")
    assert_no_english(page)
    page.get_by_label("Nome", exact=True).fill(name)
    data = tmp_path / "disk.raw"
    data.write_bytes(raw_disk_bytes(300_000))
    page.get_by_label("File dell’immagine").set_input_files(str(data))
    expect(page.locator("#format-detected")).to_contain_text("Rilevato raw")  # the script's own sentence
    page.get_by_role("button", name="Crea immagine").click()
    page.wait_for_url(f"{glimpse.url}/dashboard/images/*-*")
    image_id = image_id_of(page)
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    expect(page.locator("#image-status")).to_have_text("attiva")
    assert_no_english(page)  # every tab's panel is in the page, the hidden ones too

    tabs = page.get_by_role("tablist", name="Dettagli dell’immagine")
    for tab, shown in (
        ("Proprietà", "#panel-properties"),
        ("Membri", "#panel-members"),
        ("Panoramica", "#panel-overview"),
    ):
        tabs.get_by_role("tab", name=tab).click()
        expect(page.locator(shown)).to_be_visible()
    expect(page.locator("#attributes")).to_contain_text("300000 byte (293,0 KiB)")

    tabs.get_by_role("tab", name="Proprietà").click()
    page.get_by_label("Disco minimo (GB)").fill("2")
    page.get_by_role("button", name="Salva i metadati").click()
    expect(page.get_by_role("status")).to_have_text("Metadati salvati.")
    page.get_by_label("Valore della nuova proprietà").fill("senza nome")  # a form error of the dashboard's own
    page.get_by_role("button", name="Salva i metadati").click()
    expect(page.get_by_role("alert")).to_have_text("Una nuova proprietà ha bisogno di un nome.")
    assert_no_english(page)

    page.get_by_role("link", name="Elimina…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Eliminare l’immagine “{name}”?")
    expect(page.locator("#bin-note")).to_contain_text(
        "L’immagine va nel cestino: si può ripristinare, con i suoi dati e membri, per 1 ora."
    )
    assert_no_english(page)
    page.get_by_role("button", name="Elimina l’immagine").click()
    expect(page.get_by_role("status")).to_have_text("L’immagine è stata eliminata.")

    page.get_by_role("navigation", name="Principale").get_by_role("link", name="Cestino").click()
    row = page.locator(f"#bin-{image_id}")
    expect(row.get_by_role("button", name=f"Ripristina {name}")).to_be_visible()
    expect(row.locator("td").nth(2)).to_have_text("attiva")  # where a restore takes it back to
    assert_no_english(page)
    with api(glimpse, project) as images:
        assert images.get(f"/v2/images/{image_id}").status_code == 404  # binned: gone from the API until restored


def test_the_check_finds_english_left_on_a_page(italian: Page, glimpse: GlimpseServer) -> None:
    """The leftover check itself: an English sentence on an Italian page, and one filled with a value, fail it."""
    page = italian
    page.goto(f"{glimpse.url}/dashboard/login")
    page.evaluate("document.querySelector('h1').textContent = 'Log in to Glimpse'")
    with pytest.raises(AssertionError, match="Log in to Glimpse"):
        assert_no_english(page)
    page.evaluate("document.querySelector('h1').textContent = 'Usage of project prj-1'")
    with pytest.raises(AssertionError, match="Usage of project prj-1"):
        assert_no_english(page)
