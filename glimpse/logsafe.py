"""Credentials out of logs and messages: image locations and source URLs can carry them
(s3://key:secret@host/bucket/obj, swift+https://user:key@host/..., signed query strings).

`redact_url` cleans one URL, `redact` every URL in a text; `install` makes every log record pass
through `redact` (its message and its traceback), as a net under the call sites that already do.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable
from typing import Any

MASK = "***"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")
_SECRET_PARAM = re.compile(r"sig|signature|token|secret|passw|credential|key|auth", re.IGNORECASE)
_PARAM = re.compile(r"([^&;=]+)=([^&;]*)")


def redact_query(query: str) -> str:
    """A query string with the values of secret-looking parameters masked (a signed URL's signature)."""
    return _PARAM.sub(lambda m: f"{m.group(1)}={MASK}" if _SECRET_PARAM.search(m.group(1)) else m.group(0), query)


def redact_url(url: str) -> str:
    """The URL without its user information and with secret-looking query values masked.

    As glance_store reads s3 and swift locations, the credentials end at the last '@': a secret key
    may contain '/' (over-masking a path that holds '@' is the price).
    """
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        userinfo, _, after = rest.rpartition("@")
        if ":" in userinfo or "/" not in userinfo:
            url = f"{scheme}://{MASK}@{after}"
    # Not urlsplit/urlunsplit: they turn sqlite:////abs/path into sqlite://abs/path.
    base, mark, rest = url.partition("?")
    query, hash_mark, fragment = rest.partition("#")
    return base + mark + redact_query(query) + hash_mark + fragment


def redact(text: str) -> str:
    if "://" not in text:
        return text
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


def _scrub(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a malformed call: leave it for logging's own error report
        return
    if "://" in message:
        record.msg, record.args = redact(message), None
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if "://" in text:
            record.exc_text = redact(text)


def add_record_hook(hook: Callable[[logging.LogRecord], None]) -> None:
    """`hook` sees every log record created from now on in this process, as it is made."""
    make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        hook(record)
        return record

    logging.setLogRecordFactory(factory)


_installed = False


def install() -> None:
    """Every log record created from now on, in this process, is redacted (idempotent)."""
    global _installed
    if _installed:
        return
    add_record_hook(_scrub)
    _installed = True
