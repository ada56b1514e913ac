"""The images table's query: Glance's filters, sort and markers, plus a free-text search.

The API has no free-text filter, so a search walks the caller's list (same filters, same sort, same
policy) page by page and keeps the images whose name, id, owner, tags or properties contain the
text. One request scans at most SCAN_LIMIT images; the "next" link carries on from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from glimpse.auth.context import RequestContext
from glimpse.dashboard.web import BASE
from glimpse.domain.entities import Image
from glimpse.domain.service import ImageService

FILTERS = ("status", "visibility", "disk_format", "member_status")
SORT_KEYS = ("created_at", "updated_at", "name", "size", "status", "disk_format")
PAGE_SIZES = (10, 25, 50, 100)
SCAN_BATCH = 200
SCAN_LIMIT = 2000


@dataclass(frozen=True)
class ListRequest:
    filters: tuple[tuple[str, str], ...] = ()
    text: str = ""
    mine: bool = False  # only the caller's project's images (else everything the caller may see)
    sort_key: str = "created_at"
    sort_dir: str = "desc"
    limit: int = 25
    marker: str | None = None
    project_id: str | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str], ctx: RequestContext) -> ListRequest:
        limit = query.get("limit", "")
        return cls(
            filters=tuple((k, query[k]) for k in FILTERS if query.get(k)),
            text=query.get("q", "").strip(),
            mine=query.get("scope") == "project",
            sort_key=query.get("sort_key", "") if query.get("sort_key") in SORT_KEYS else "created_at",
            sort_dir="asc" if query.get("sort_dir") == "asc" else "desc",
            limit=int(limit) if limit in {str(size) for size in PAGE_SIZES} else 25,
            marker=query.get("marker") or None,
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

    def url(self, *, marker: str | None) -> str:
        """This query's page URL, starting after `marker` (the first page when None)."""
        wanted = replace(self, marker=marker)
        query = [*wanted.filters, ("sort_key", wanted.sort_key), ("sort_dir", wanted.sort_dir)]
        query += [("limit", str(wanted.limit))]
        if wanted.text:
            query.append(("q", wanted.text))
        if wanted.mine:
            query.append(("scope", "project"))
        if wanted.marker:
            query.append(("marker", wanted.marker))
        return f"{BASE}/images?{urlencode(query)}"


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
