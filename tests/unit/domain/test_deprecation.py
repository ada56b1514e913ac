"""The deprecation rules: times stored in UTC, the state computed when read, the status shortcut, the checks."""

from __future__ import annotations

from datetime import datetime

import pytest

from glimpse.domain import deprecation
from glimpse.domain.entities import Image
from glimpse.errors import BadRequest, Forbidden, NotFound

NOW = datetime(2030, 6, 1, 12, 0, 0)
ME = "11111111-1111-1111-1111-111111111111"
OTHER = "22222222-2222-2222-2222-222222222222"


def _exists(image_id: str) -> None:
    if image_id != OTHER:
        raise NotFound(f"No image found with ID {image_id}")


def _normalized(old: dict[str, str], new: dict[str, str]) -> dict[str, str]:
    return deprecation.normalized(ME, old, new, NOW, _exists)


def test_a_scheduled_state_takes_effect_on_time_without_a_job() -> None:
    props = {"deprecate_at": "2030-06-01T12:00:05Z", "obsolete_at": "2030-06-01T12:00:10Z"}
    assert deprecation.state(props, datetime(2030, 6, 1, 12, 0, 4)) == "active"
    assert deprecation.state(props, datetime(2030, 6, 1, 12, 0, 5)) == "deprecated"
    assert deprecation.state(props, datetime(2030, 6, 1, 12, 0, 10)) == "obsolete"
    assert deprecation.state({"os_distro": "debian"}, NOW) is None
    assert deprecation.state({"obsolete_at": "2030-06-01T11:00:00Z"}, NOW) == "obsolete"


def test_times_are_stored_in_utc_to_the_second() -> None:
    stored = _normalized({}, {"deprecate_at": "2030-06-02T14:30:15.123+02:00", "obsolete_at": "2030-07-01T00:00:00"})
    assert stored == {"deprecate_at": "2030-06-02T12:30:15Z", "obsolete_at": "2030-07-01T00:00:00Z"}


@pytest.mark.parametrize(
    "props",
    [
        {"deprecate_at": "tomorrow"},
        {"obsolete_at": "2030-13-01T00:00:00Z"},
        {"deprecate_at": "0001-01-01T00:00:00Z"},
        {"deprecate_at": "2030-06-02T00:00:00Z", "obsolete_at": "2030-06-01T00:00:00Z"},
        {"deprecation_status": "retired"},
        {"replacement_image": "33333333-3333-3333-3333-333333333333"},
        {"replacement_image": ME},
    ],
)
def test_bad_values_are_400(props: dict[str, str]) -> None:
    with pytest.raises(BadRequest):
        _normalized({}, props)


def test_the_status_shortcut_writes_times() -> None:
    deprecated = _normalized({}, {"deprecation_status": "deprecated", "replacement_image": OTHER})
    assert deprecated == {"deprecate_at": "2030-06-01T12:00:00Z", "replacement_image": OTHER}
    obsolete = _normalized(deprecated, {**deprecated, "deprecation_status": "obsolete"})
    assert obsolete["obsolete_at"] == "2030-06-01T12:00:00Z" and obsolete["deprecate_at"] == "2030-06-01T12:00:00Z"
    # Back from obsolete to deprecated, then undone altogether (active, or the status removed).
    back = _normalized(obsolete, {**obsolete, "deprecation_status": "deprecated"})
    assert "obsolete_at" not in back and back["deprecate_at"] == "2030-06-01T12:00:00Z"
    assert _normalized(back, {**back, "deprecation_status": "active", "os_distro": "x"}) == {"os_distro": "x"}
    assert _normalized(back, {"deprecate_at": back["deprecate_at"], "replacement_image": OTHER}) == {}
    # A future schedule is brought forward by "deprecated now"; an unchanged status changes nothing.
    later = {"deprecate_at": "2031-01-01T00:00:00Z"}
    assert _normalized(later, {**later, "deprecation_status": "deprecated"})["deprecate_at"] == "2030-06-01T12:00:00Z"
    assert _normalized(later, {**later, "deprecation_status": "active", "k": "v"}) == {**later, "k": "v"}


def test_shown_adds_the_computed_status_and_downloads_of_obsolete_images_are_refused() -> None:
    image = Image(id=ME, owner="p", properties={"obsolete_at": "2030-01-01T00:00:00Z", "replacement_image": OTHER})
    shown = deprecation.shown(image, NOW)
    assert shown.properties["deprecation_status"] == "obsolete" and "deprecation_status" not in image.properties
    with pytest.raises(Forbidden, match=f"obsolete.*replacement, image {OTHER}"):
        deprecation.check_download(image, NOW)
    deprecation.check_download(image, datetime(2029, 12, 31))  # not yet obsolete: served
    assert "deprecation_status" not in deprecation.shown(Image(id=ME, owner="p"), NOW).properties


def test_list_filter_values() -> None:
    assert deprecation.parse_filter("active") == ("active",)
    assert deprecation.parse_filter("in:active, deprecated") == ("active", "deprecated")
    with pytest.raises(BadRequest):
        deprecation.parse_filter("in:active,gone")
