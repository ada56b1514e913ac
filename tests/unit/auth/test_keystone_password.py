"""glimpse.auth.keystone_password: the one Keystone v3 password sign-in."""

from __future__ import annotations

import pytest

from glimpse.auth.keystone_password import v3_url


@pytest.mark.parametrize(
    "url", ["http://keystone:5000", "http://keystone:5000/", "http://keystone:5000/v3", "http://keystone:5000/v3/"]
)
def test_v3_url(url: str) -> None:
    assert v3_url(url) == "http://keystone:5000/v3"
