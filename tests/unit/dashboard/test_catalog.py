"""Every string the dashboard marks for translation has its Italian one, and the committed .mo is the .po's."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from glimpse.dashboard.i18n import DEFAULT_LANGUAGE, DOMAIN, IMAGE_STATUS, LANGUAGES, LOCALE_DIR
from glimpse.domain.image import STATUSES

REPO = Path(__file__).resolve().parents[3]
TRANSLATED = sorted(set(LANGUAGES) - {DEFAULT_LANGUAGE})


def marked() -> set[tuple[str, str | None]]:
    """The (msgid, msgctxt) pairs scripts/translations would extract now, from the templates and the Python code."""
    with open(REPO / "babel.cfg") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found = extract_from_dir(str(LOCALE_DIR.parent), method_map, options_map)
    return {(message if isinstance(message, str) else message[0], context) for _, _, message, _, context in found}


def catalog(language: str) -> Catalog:
    with open(LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po", "rb") as po:
        return read_po(po, locale=language)


def test_extraction_finds_the_templates_and_the_python_strings() -> None:
    found = marked()
    assert {("Recycle bin", None), ("Webhook deleted.", None), ("Image %(id)s removed for good.", None)} <= found
    assert {(status, IMAGE_STATUS) for status in STATUSES} <= found


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_marked_string_is_translated(language: str) -> None:
    po = catalog(language)
    entries = {key: po.get(*key) for key in marked()}
    untranslated = sorted(key for key, entry in entries.items() if entry is None or not entry.string or entry.fuzzy)
    assert untranslated == [], f"run `bash scripts/translations` and translate these in the {language} .po"
    problems = [(message.id, errors) for message, errors in po.check()]  # placeholders the same as the msgid's
    assert problems == []


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_committed_mo_is_compiled_from_the_po(language: str) -> None:
    compiled = BytesIO()
    write_mo(compiled, catalog(language))
    committed = (LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.mo").read_bytes()
    assert committed == compiled.getvalue(), "the .mo is stale: run `bash scripts/translations compile`"
