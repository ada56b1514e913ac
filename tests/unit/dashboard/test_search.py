from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import parse_qsl, urlsplit

import pytest

from glimpse.auth.context import RequestContext
from glimpse.dashboard import search as search_module
from glimpse.dashboard.search import ListRequest, search
from glimpse.domain.entities import Image

CTX = RequestContext(project_id="p1", user_id="u1")


class Listing:
    """ImageService.list over a fixed, already sorted list of images, paged by marker as the domain does."""

    def __init__(self, names: list[str]) -> None:
        self.images = [Image(id=f"id-{i}", owner="p1", name=name) for i, name in enumerate(names)]
        self.calls = 0

    def list(self, ctx: RequestContext, params: Mapping[str, Sequence[str]]) -> tuple[list[Image], bool]:
        self.calls += 1
        start = 0
        if "marker" in params:
            start = next(i for i, image in enumerate(self.images) if image.id == params["marker"][0]) + 1
        limit = int(params["limit"][0])
        return self.images[start : start + limit], start + limit < len(self.images)


def test_text_search_walks_pages_and_continues_after_the_last_match(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search_module, "SCAN_BATCH", 2)
    listing = Listing(["cirros-a", "ubuntu", "debian", "CirrOS-b", "fedora", "cirros-c", "cirros-d"])
    wanted = ListRequest(text="cirros", limit=2)
    found, marker, truncated = search(CTX, listing, wanted)  # type: ignore[arg-type]
    assert [i.name for i in found] == ["cirros-a", "CirrOS-b"] and marker == "id-3" and not truncated
    found, marker, _ = search(CTX, listing, ListRequest(text="cirros", limit=2, marker=marker))  # type: ignore[arg-type]
    assert [i.name for i in found] == ["cirros-c", "cirros-d"] and marker is None


def test_text_search_stops_after_the_scan_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search_module, "SCAN_BATCH", 2)
    monkeypatch.setattr(search_module, "SCAN_LIMIT", 4)
    listing = Listing(["a", "b", "c", "d", "match", "f"])
    found, marker, truncated = search(CTX, listing, ListRequest(text="match"))  # type: ignore[arg-type]
    assert found == [] and marker == "id-3" and truncated


def test_project_scope_filters_on_the_owner() -> None:
    wanted = ListRequest.from_query({"scope": "project", "status": "active", "sort_key": "bogus", "limit": "7"}, CTX)
    params = wanted.params(wanted.limit, None)
    assert params["owner"] == ["p1"] and params["status"] == ["active"]
    assert params["sort_key"] == ["created_at"] and params["limit"] == ["25"]


@pytest.mark.parametrize("limit", ["²", "\u0663\u0665", "9" * 5000, "050"])
def test_odd_page_sizes_fall_back_to_the_default(limit: str) -> None:
    assert ListRequest.from_query({"limit": limit}, CTX).limit == 25


def test_previous_goes_back_through_the_markers_of_the_pages_before() -> None:
    first = ListRequest.from_query({"limit": "10", "sort_key": "name", "sort_dir": "asc", "status": "active"}, CTX)
    assert first.previous_url() is None
    second = ListRequest.from_query(_query(first.next_url("id-10")), CTX)
    third = ListRequest.from_query(_query(second.next_url("id-20")), CTX)
    assert (third.marker, third.back, third.get("status"), third.sort_key) == ("id-20", ("", "id-10"), "active", "name")
    assert ListRequest.from_query(_query(third.previous_url() or ""), CTX) == second
    assert ListRequest.from_query(_query(second.previous_url() or ""), CTX) == first
    assert ListRequest.from_query(_query(third.first_url()), CTX) == first


def test_the_marker_stack_is_bounded_and_ignored_without_a_marker() -> None:
    deep = ListRequest.from_query({"marker": "m", "back": ",".join(f"id-{i}" for i in range(500))}, CTX)
    assert len(deep.back) == search_module.MAX_BACK and deep.back[-1] == "id-499"
    assert ListRequest.from_query({"back": "id-1,id-2"}, CTX).back == ()
    # Deeper than the stack: "Previous" from the oldest page kept goes to the first page.
    oldest = ListRequest.from_query({"marker": "m", "back": "id-1"}, CTX)
    assert ListRequest.from_query(_query(oldest.previous_url() or ""), CTX).marker == "id-1"
    assert ListRequest.from_query({"marker": "m"}, CTX).previous_url() == ListRequest().first_url()


def test_sorting_by_a_header_flips_the_order_and_starts_from_the_first_page() -> None:
    page = ListRequest.from_query({"sort_key": "name", "sort_dir": "asc", "marker": "m", "back": "", "q": "x"}, CTX)
    flipped = ListRequest.from_query(_query(page.sort_url("name")), CTX)
    assert (flipped.sort_dir, flipped.marker, flipped.text) == ("desc", None, "x")
    assert page.aria_sort("name") == "ascending" and page.aria_sort("size") == "none"
    assert ListRequest.from_query(_query(page.sort_url("size")), CTX).sort_dir == "desc"


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
