"""The dashboard's language and time zone for one request, and the gettext, `when` and `size` built on them.

The language comes from the `glimpse_lang` cookie (the switcher's), else the browser's Accept-Language, else
English; the time zone from the `glimpse_tz` cookie (static/zone.js sets it from the browser's own), else UTC.
Templates reach the request's choice through a context variable set while they render, so macros imported
without context (deprecation.html) translate too.
"""

from __future__ import annotations

import gettext
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, available_timezones

from starlette.requests import Request

# Babel and Jinja are imported by the first page a worker renders (see web.page_templates): a worker that only
# serves the API never holds them.
if TYPE_CHECKING:
    from jinja2 import Environment

LANGUAGES = {"en": "English", "it": "Italiano"}  # each with a catalog in locale/ but English, the source
DEFAULT_LANGUAGE = "en"
LANG_COOKIE = "glimpse_lang"
TZ_COOKIE = "glimpse_tz"
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "glimpse"
MAX_RANGES = 32  # Accept-Language entries read; a longer header is someone's experiment, not a browser's
_RANGE = re.compile(r"^\s*([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)\s*(?:;\s*q\s*=\s*([01](?:\.\d{0,3})?))?\s*$")
SIZE_UNITS = ("KiB", "MiB", "GiB", "TiB")


def accepted(header: str | None) -> list[str]:
    """The primary language tags of an Accept-Language header, most wanted first; q=0 (refused) left out."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((header or "").split(",")[:MAX_RANGES]):
        match = _RANGE.match(part)
        if match is None:
            continue
        quality = float(match.group(2) or 1)
        if quality > 0:
            ranked.append((-quality, index, match.group(1).split("-")[0].lower()))
    return [tag for _, _, tag in sorted(ranked)]


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    if cookie in LANGUAGES:
        return cookie
    return next((tag for tag in accepted(accept_language) if tag in LANGUAGES), DEFAULT_LANGUAGE)


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def zone(name: str | None) -> ZoneInfo:
    """The IANA zone the browser reported, when this machine knows it; UTC for anything else."""
    return ZoneInfo(name) if name and name in _zone_names() else ZoneInfo("UTC")


Translate = Callable[..., str]  # message and its %(name)s values -> the text in some reader's language


def N_(message: str) -> str:
    """Marks message for extraction (a Babel keyword) where it is kept; it is translated where it is shown."""
    return message


def english(message: str, **values: Any) -> str:
    """A marked message as the source language says it: the Translate of code that has no reader at hand."""
    return message % values if values else message


def pgettext(context: str, message: str) -> str:
    """Marks message, said in context, for extraction (a Babel keyword); it is translated where it is shown."""
    return message


IMAGE_STATUS = "image status"  # the msgctxt of a status's word, which other sentences may say differently
STATUS_WORDS = (  # the API's values (domain.image.STATUSES); attributes and CSS classes keep those
    pgettext("image status", "queued"),
    pgettext("image status", "saving"),
    pgettext("image status", "uploading"),
    pgettext("image status", "importing"),
    pgettext("image status", "active"),
    pgettext("image status", "deactivated"),
    pgettext("image status", "killed"),
    pgettext("image status", "pending_delete"),
    pgettext("image status", "deleted"),
)


@cache
def catalog(language: str) -> gettext.NullTranslations:
    if language == DEFAULT_LANGUAGE:
        return gettext.NullTranslations()
    from babel.support import Translations

    return Translations.load(LOCALE_DIR, [language], DOMAIN)


@dataclass(frozen=True)
class Speech:
    """How one request's pages speak: the language's catalog and the reader's time zone."""

    language: str = DEFAULT_LANGUAGE
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))

    @classmethod
    def of(cls, request: Request) -> Speech:
        language = negotiate(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))
        return cls(language, zone(request.cookies.get(TZ_COOKIE)))

    def gettext(self, message: str, **values: Any) -> str:
        text = catalog(self.language).gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        """The form of the message for count things, its placeholders still to fill."""
        return catalog(self.language).ngettext(singular, plural, count)

    def status(self, value: str) -> str:
        """An image status as a word of the reader's language."""
        return catalog(self.language).pgettext(IMAGE_STATUS, value)

    def when(self, value: datetime | str | None) -> str:
        """A timestamp as this reader reads it: their language, their zone (named), to the second."""
        if value is None or value == "":
            return "—"
        try:
            moment = datetime.fromisoformat(value) if isinstance(value, str) else value
            local = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(self.zone)
        except (ValueError, OverflowError):
            return str(value)  # a property someone set by hand ("next week", year 1): shown as they wrote it
        from babel.dates import format_datetime

        return f"{format_datetime(local, 'medium', locale=self.language)} {local.tzname()}"

    def duration(self, value: timedelta) -> str:
        """A span of time in the language's words, in its largest whole unit ("1 hour", "30 giorni")."""
        from babel.dates import format_timedelta

        return format_timedelta(value, threshold=1, locale=self.language)

    def size(self, value: int | None) -> str:
        """Bytes in binary units with one decimal, in the language's digits ("1.5 MiB", "1,5 MiB")."""
        if value is None:
            return "—"
        from babel.numbers import format_decimal

        if value < 1024:
            return f"{format_decimal(value, locale=self.language)} B"
        amount = value / 1024
        for unit in SIZE_UNITS:
            if amount < 1024 or unit == SIZE_UNITS[-1]:
                break
            amount /= 1024
        return f"{format_decimal(amount, '#,##0.0', locale=self.language)} {unit}"


ENGLISH_UTC = Speech()  # outside a page's rendering (a template rendered by a test, say)
_speaking: ContextVar[Speech | None] = ContextVar("glimpse_dashboard_speech", default=None)


@contextmanager
def speaking(speech: Speech) -> Iterator[None]:
    """Templates rendered in this block use speech's language and zone."""
    token = _speaking.set(speech)
    try:
        yield
    finally:
        _speaking.reset(token)


def current() -> Speech:
    return _speaking.get() or ENGLISH_UTC


def install(env: Environment) -> None:
    """{% trans %}, _() and the when, size and status filters, each in the rendering request's speech."""
    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True  # a {% trans %} block's line breaks and indents are not in its msgid
    # The i18n extension adds install_gettext_callables to the environment; its type does not know it.
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda message: catalog(current().language).gettext(message),
        ngettext=lambda singular, plural, n: catalog(current().language).ngettext(singular, plural, n),
        pgettext=lambda context, message: catalog(current().language).pgettext(context, message),
        newstyle=True,  # the catalog's text is escaped and %-formatted by Jinja, never left raw
    )
    env.globals["languages"] = LANGUAGES
    env.filters["when"] = lambda value: current().when(value)
    env.filters["size"] = lambda value: current().size(value)
    env.filters["status"] = lambda value: current().status(value)
