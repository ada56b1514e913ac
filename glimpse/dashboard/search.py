"""The images table's query: Glance's filters, sort and markers, plus a free-text search.

The API has no free-text filter, so a search walks the caller's list (same filters, same sort, same
policy) page by page and keeps the images whose name, id, owner, tags or properties contain the
text. One request scans at most SCAN_LIMIT images; the "next" link carries on from there.

The API only pages forward (a marker is the last image seen). "Previous" works from a stack of the
markers of the pages before this one, carried in the query string (`back`, oldest first), so going
back shows exactly the page that was shown before, whatever sort and filters are in use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from glimpse.auth.context import RequestContext
from glimpse.dashboard.web import BASE
from glimpse.domain.entities import Image
from glimpse.domain.service import ImageService

# The facets, each an API filter: columns, then the properties people look images up by (as Horizon's).
FILTERS = ("status", "visibility", "disk_format", "container_format", "member_status", "owner", "protected",
           "os_distro", "architecture")  # fmt: skip
PROPERTY_FILTERS = ("os_distro", "architecture")
SORT_KEYS = ("name", "status", "disk_format", "container_format", "size", "created_at", "updated_at")
PAGE_SIZES = (10, 25, 50, 100)
SCAN_BATCH = 200
SCAN_LIMIT = 2000
# Markers kept for "Previous": 36 characters each, well inside the URL's bounds. Deeper than this,
# the pages nearest the first are forgotten and "Previous" from the oldest one kept goes to the first.
MAX_BACK = 40
FILTER_VALUE_MAX = 255  # as the API's own bound on a property value


@dataclass(frozen=True)
class ListRequest:
    filters: tuple[tuple[str, str], ...] = ()
    text: str = ""
    mine: bool = False  # only the caller's project's images (else everything the caller may see)
    sort_key: str = "created_at"
    sort_dir: str = "desc"
    limit: int = 25
    marker: str | None = None
    back: tuple[str, ...] = ()  # the markers of the pages before this one ("" is the first page)
    project_id: str | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str], ctx: RequestContext) -> ListRequest:
        limit = query.get("limit", "")
        marker = query.get("marker") or None
        back = tuple(query.get("back", "").split(",")) if marker and "back" in query else ()
        return cls(
            filters=tuple((k, query[k].strip()[:FILTER_VALUE_MAX]) for k in FILTERS if query.get(k, "").strip()),
            text=query.get("q", "").strip(),
            mine=query.get("scope") == "project",
            sort_key=query.get("sort_key", "") if query.get("sort_key") in SORT_KEYS else "created_at",
            sort_dir="asc" if query.get("sort_dir") == "asc" else "desc",
            limit=int(limit) if limit in {str(size) for size in PAGE_SIZES} else 25,
            marker=marker,
            back=back[-MAX_BACK:],
            project_id=ctx.project_id,
        )

    def get(self, key: str) -> str:
        return dict(self.filters).get(key, "")

    def params(self, limit: int, marker: str | None) -> dict[str, list[str]]:
        params = {k: [v] for k, v in self.filters}
        if self.mine:
            params["owner"] = [self.project_id or ""]
        params.update(sort_key=[self.sort_key], sort_dir=[self.sort_dir], limit=[str(limit)])
        if marker:
            params["marker"] = [marker]
        return params

    def url(self) -> str:
        """This page's URL (what the filters form, the headers and the page links lead to)."""
        query = [*self.filters, ("sort_key", self.sort_key), ("sort_dir", self.sort_dir)]
        query += [("limit", str(self.limit))]
        if self.text:
            query.append(("q", self.text))
        if self.mine:
            query.append(("scope", "project"))
        if self.marker:
            query += [("marker", self.marker), ("back", ",".join(self.back[-MAX_BACK:]))]
        return f"{BASE}/images?{urlencode(query)}"

    def next_url(self, next_marker: str) -> str:
        return replace(self, marker=next_marker, back=(*self.back, self.marker or "")).url()

    def previous_url(self) -> str | None:
        if not self.marker:
            return None
        return replace(self, marker=self.back[-1] or None, back=self.back[:-1]).url() if self.back else self.first_url()

    def first_url(self) -> str:
        return replace(self, marker=None, back=()).url()

    def sort_url(self, key: str) -> str:
        """Sorted by `key` (the other way round when it already is), same filters, from the first page: a
        marker from one order means nothing in another."""
        if key == self.sort_key:
            direction = "asc" if self.sort_dir == "desc" else "desc"
        else:
            direction = "asc" if key in ("name", "status", "disk_format", "container_format") else "desc"
        return replace(self, sort_key=key, sort_dir=direction, marker=None, back=()).url()

    def aria_sort(self, key: str) -> str:
        if key != self.sort_key:
            return "none"
        return "ascending" if self.sort_dir == "asc" else "descending"


def matches(image: Image, text: str) -> bool:
    needle = text.lower()
    haystack = [image.name or "", image.id, image.owner or "", *image.tags]
    haystack += [f"{k}={v}" for k, v in image.properties.items()]
    return any(needle in value.lower() for value in haystack)


def search(ctx: RequestContext, images: ImageService, wanted: ListRequest) -> tuple[list[Image], str | None, bool]:
    """A page of images, the marker of the next page (None at the end), and whether the scan stopped early."""
    if not wanted.text:
        found, more = images.list(ctx, wanted.params(wanted.limit, wanted.marker))
        return found, (found[-1].id if more and found else None), False
    kept: list[Image] = []
    marker, scanned = wanted.marker, 0
    while True:
        batch, more = images.list(ctx, wanted.params(SCAN_BATCH, marker))
        for image in batch:
            scanned += 1
            if matches(image, wanted.text):
                kept.append(image)
                if len(kept) > wanted.limit:
                    return kept[: wanted.limit], kept[wanted.limit - 1].id, False
        if not more or not batch:
            return kept, None, False
        marker = batch[-1].id
        if scanned >= SCAN_LIMIT:
            return kept, marker, True
