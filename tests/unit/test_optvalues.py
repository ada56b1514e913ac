"""The typed reads of parsed option values convert as int()/float() did and refuse what they could not."""

from __future__ import annotations

import pytest

from glimpse.optvalues import as_dict, as_float, as_int, as_list


def test_numbers_convert_as_int_and_float_do() -> None:
    assert as_int("8080") == 8080
    assert as_int(2.9) == 2
    assert as_int(True) == 1
    assert as_float("1.5") == 1.5
    assert as_float(3) == 3.0


def test_lists_and_dicts_unset_or_empty_have_no_items() -> None:
    assert as_list(None) == [] and as_list("") == []
    assert as_list(("a", "b")) == ["a", "b"]
    assert as_dict(None) == {}
    assert as_dict({"http": "proxy:3128"}) == {"http": "proxy:3128"}


@pytest.mark.parametrize(
    ("read", "value"),
    [(as_int, None), (as_int, [1]), (as_float, None), (as_float, {}), (as_list, "a,b"), (as_dict, ["a"])],
)
def test_other_values_are_refused(read: object, value: object) -> None:
    assert callable(read)
    with pytest.raises(TypeError):
        read(value)
