from __future__ import annotations

from collections.abc import Mapping, Sequence

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
