"""No log record carries the credentials of a location or URL."""

from __future__ import annotations

import logging

import pytest

from glimpse import logsafe
from glimpse.domain.entities import Location
from glimpse.domain.image_locations import purge
from glimpse.errors import StoreError
from glimpse.logsafe import redact, redact_url
from glimpse.store.filesystem import FilesystemStore
from glimpse.store.registry import StoreRegistry

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCY"
LOCATIONS = [
    f"s3://AKIAEXAMPLE:{SECRET}@s3.example.org/bucket/obj",
    f"s3+https://AKIAEXAMPLE:{SECRET}@s3.example.org:8443/bucket/a@b",
    f"swift+https://tenant%3Auser:{SECRET}@keystone.example/v3/glance/image-1",
    f"https://s3.example.org/b/o?X-Amz-Credential=AKIA&X-Amz-Signature={SECRET}&X-Amz-Expires=60",
    f"https://swift.example/v1/AUTH_x/c/o?temp_url_sig={SECRET}&temp_url_expires=1",
    f"http://user:{SECRET}@[broken/x?token={SECRET}",
]


@pytest.mark.parametrize("url", LOCATIONS)
def test_redact_url_removes_the_secret(url: str) -> None:
    cleaned = redact_url(url)
    assert SECRET not in cleaned
    assert "***" in cleaned
    assert SECRET not in redact(f"failed on {url}: gone")


def test_redact_keeps_what_an_operator_needs() -> None:
    assert redact_url(f"s3://AK:{SECRET}@host/bucket/obj") == "s3://***@host/bucket/obj"
    assert redact_url("file:///var/lib/glimpse/images/1") == "file:///var/lib/glimpse/images/1"
    assert redact_url("rbd://fsid/pool/image/snap") == "rbd://fsid/pool/image/snap"
    assert redact_url("https://h/o?a=1&X-Amz-Signature=s") == "https://h/o?a=1&X-Amz-Signature=***"


class _Failing:
    def delete(self, url: str) -> None:
        raise StoreError(f"the backend refused {url}")  # as a library's message would carry it


class _Stores:
    def for_location(self, url: str, metadata: dict[str, str]) -> _Failing:
        return _Failing()


@pytest.mark.parametrize("url", LOCATIONS)
def test_a_failed_purge_logs_no_secret(url: str, caplog: pytest.LogCaptureFixture) -> None:
    logsafe.install()
    with caplog.at_level(logging.WARNING):
        purge(_Stores(), Location(url=url, metadata={}))  # type: ignore[arg-type]
    assert caplog.records
    assert SECRET not in caplog.text  # the message and the traceback
    assert all(SECRET not in r.getMessage() for r in caplog.records)


def test_any_log_line_with_a_url_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    logsafe.install()
    log = logging.getLogger("glimpse.test")
    with caplog.at_level(logging.INFO):
        log.info("importing from %s", LOCATIONS[0])
        try:
            raise RuntimeError(f"download of {LOCATIONS[3]} failed")
        except RuntimeError:
            log.exception("task failed")
    assert SECRET not in caplog.text
    assert "s3://***@s3.example.org/bucket/obj" in caplog.text


def test_store_errors_name_locations_without_credentials(tmp_path: object) -> None:
    registry = StoreRegistry({"file": FilesystemStore("file", tmp_path, "node")}, "file")  # type: ignore[arg-type]
    with pytest.raises(StoreError) as failure:
        registry.for_location(LOCATIONS[0], {})
    assert SECRET not in failure.value.message


def test_a_url_without_credentials_is_kept_as_written() -> None:
    text = "database sqlite:////srv/glimpse/glimpse.db ready"
    assert redact(text) == text
    assert redact_url("https://h/p?token=1&x=2#frag") == "https://h/p?token=***&x=2#frag"
