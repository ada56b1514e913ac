"""The dashboard's language and time zone choice, and its dates and sizes in each language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from starlette.requests import Request

from glimpse.dashboard.i18n import STATUS_WORDS, Speech, accepted, negotiate, speaking, zone
from glimpse.dashboard.language import back_to
from glimpse.dashboard.web import page_templates
from glimpse.domain.image import STATUSES

ROME, TOKYO = ZoneInfo("Europe/Rome"), ZoneInfo("Asia/Tokyo")


def test_accept_language_is_ranked_by_quality_then_order() -> None:
    assert accepted("en;q=0.5, it-IT, fr;q=0.8, de") == ["it", "de", "fr", "en"]
    assert accepted("it;q=0, en") == ["en"]  # q=0 means "not this one"
    assert accepted("it;q=2, en;q=abc, ;;, x" * 1 + ", es;q=0.1") == ["x", "es"]  # malformed ranges are skipped
    assert accepted(None) == accepted("") == []


@pytest.mark.parametrize(
    ("cookie", "header", "chosen"),
    [
        (None, "it-IT,it;q=0.9,en-US;q=0.8,en;q=0.7", "it"),
        (None, "fr-FR, it;q=0.4, en;q=0.6", "en"),  # French is not offered; English is wanted more than Italian
        (None, "fr-FR, it;q=0.4", "it"),
        (None, "fr, de", "en"),  # nothing offered: English
        (None, None, "en"),
        ("it", "en-US,en", "it"),  # the switcher's cookie wins over the browser
        ("en", "it", "en"),
        ("klingon", "it", "it"),  # a cookie naming no catalog is ignored
        ("../../etc", None, "en"),
    ],
)
def test_the_cookie_then_accept_language_then_english(cookie: str | None, header: str | None, chosen: str) -> None:
    assert negotiate(cookie, header) == chosen


def test_a_request_speaks_its_cookie_and_header() -> None:
    headers = [(b"accept-language", b"it-IT,it;q=0.9"), (b"cookie", b"glimpse_tz=Asia/Tokyo")]
    speech = Speech.of(Request({"type": "http", "headers": headers}))
    assert (speech.language, speech.zone) == ("it", TOKYO)


@pytest.mark.parametrize("name", [None, "", "Mars/Olympus_Mons", "../../../etc/passwd", "UTC\x00", "/etc/localtime"])
def test_an_unknown_or_hostile_zone_is_utc(name: str | None) -> None:
    assert zone(name) == ZoneInfo("UTC")


def test_a_known_zone_is_kept() -> None:
    assert zone("Europe/Rome") == ROME


def test_dates_in_each_language_and_the_readers_zone_to_the_second() -> None:
    moment = datetime(2026, 1, 15, 21, 30, 5, 123456, tzinfo=UTC)
    assert Speech("en", TOKYO).when(moment) == "Jan 16, 2026, 6:30:05\u202fAM JST"
    assert Speech("it", ROME).when(moment) == "15 gen 2026, 22:30:05 CET"
    assert Speech("it", ROME).when("2026-07-15T21:30:05Z") == "15 lug 2026, 23:30:05 CEST"  # summer time
    assert Speech("en").when(datetime(2026, 1, 15, 21, 30, 5)) == "Jan 15, 2026, 9:30:05\u202fPM UTC"  # naive is UTC
    assert Speech("it").when(None) == "—"
    assert Speech("it").when("next tuesday") == "next tuesday"  # a hand-written property stays as written
    assert Speech("en", ZoneInfo("America/New_York")).when("0001-01-01T00:00:00") == "0001-01-01T00:00:00"


@pytest.mark.parametrize(
    ("size", "english", "italian"),
    [
        (None, "—", "—"),
        (0, "0 B", "0 B"),
        (1023, "1,023 B", "1.023 B"),
        (1536 * 1024, "1.5 MiB", "1,5 MiB"),
        (70_000, "68.4 KiB", "68,4 KiB"),
        (3 * 1024**5, "3,072.0 TiB", "3.072,0 TiB"),
    ],
)
def test_sizes_in_binary_units_with_the_languages_digits(size: int | None, english: str, italian: str) -> None:
    assert (Speech("en").size(size), Speech("it").size(size)) == (english, italian)


def _render(template: str, speech: Speech, **values: object) -> str:
    request = Request({"type": "http", "path": "/dashboard/x", "query_string": b"", "headers": [], "server": None})
    base = {"request": request, "base": "/dashboard", "csrf_token": "t", "identity": None, "speech": speech}
    with speaking(speech):
        return page_templates().get_template(template).render(**base, **values)


def test_templates_speak_the_rendering_requests_language() -> None:
    family = SimpleNamespace(
        name="cirros", latest=SimpleNamespace(id="i1", name="c-1", created_at=datetime(2026, 1, 15, tzinfo=UTC))
    )
    italian = _render("families.html", Speech("it", ROME), families=[family], list_error=None)
    assert '<html lang="it">' in italian
    assert "<h1>Famiglie di immagini</h1>" in italian and "15 gen 2026, 01:00:00 CET" in italian
    english = _render("families.html", Speech("en"), families=[], list_error=None)
    assert '<html lang="en">' in english and "No families." in english and "Famiglie" not in english


def test_translated_text_escapes_what_it_is_given() -> None:
    image = SimpleNamespace(properties={"deprecation_status": "obsolete", "replacement_image": '"><script>'})
    macro = page_templates().env.from_string(
        '{% from "deprecation.html" import badge %}{{ badge(image, "/dashboard") }}'
    )
    with speaking(Speech("it")):
        html = macro.render(image=image)
    assert 'obsoleta: usa <a href="/dashboard/images/&#34;&gt;&lt;script&gt;">' in html
    assert "<script>" not in html


@pytest.mark.parametrize(
    ("target", "back"),
    [
        ("/dashboard/bin?marker=x", "/dashboard/bin?marker=x"),
        ("/dashboard", "/dashboard"),
        ("https://evil.example/dashboard/bin", "/dashboard/images"),
        ("//evil.example/dashboard/bin", "/dashboard/images"),
        ("/\\evil.example/dashboard", "/dashboard/images"),
        ("/v2/images", "/dashboard/images"),
        ("/dashboardx", "/dashboard/images"),
        ("javascript:alert(1)", "/dashboard/images"),
        ("", "/dashboard/images"),
    ],
)
def test_the_switcher_goes_back_only_to_a_dashboard_page(target: str, back: str) -> None:
    assert back_to(target) == back


def test_every_image_status_has_a_word_in_each_language() -> None:
    assert sorted(STATUS_WORDS) == sorted(STATUSES)
    assert [Speech("it").status(s) for s in ("active", "pending_delete")] == ["attiva", "in attesa di eliminazione"]
    assert Speech("en").status("pending_delete") == "pending_delete"  # English shows the API's own value
    assert Speech("it").status("new-status") == "new-status"  # one the catalog does not know yet


def test_durations_in_each_language() -> None:
    assert Speech().duration(timedelta(hours=1)) == "1 hour"
    assert Speech("it").duration(timedelta(hours=1)) == "1 ora"
    assert Speech("it").duration(timedelta(days=2)) == "2 giorni"
