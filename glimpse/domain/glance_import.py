"""Switching from Glance: bring every image of a Glance database into Glimpse's, then check the data.

Each Glance image becomes the same Glimpse image: same id, status, owner, visibility, checksums, sizes,
formats, limits, flags, times, properties, tags, members and locations (URL and metadata, with the store id
Glance recorded). A deleted Glance image becomes a Glimpse tombstone, so its id is never given out again.
The import compares before it writes: run again, it writes only the images that changed in Glance since,
and a dry run reports the same plan without writing. Images only Glimpse knows are left alone.
Verification re-reads image data through Glimpse's configured stores (which must read Glance's location
URLs) and compares size, md5 and os_hash_value with the record.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Protocol

from glimpse.domain.entities import Image, ImageSnapshot, Location, Member
from glimpse.domain.ports import ImageSnapshots
from glimpse.domain.stores import Finding, Progress, StoreMaintenance
from glimpse.errors import BadRequest
from glimpse.sources.glance_db import GlanceDatabase, GlanceImage

CREATED, UPDATED, UNCHANGED, FAILED = "created", "updated", "unchanged", "failed"
WITH_DATA = ("active", "deactivated")


class ImportProgress(Protocol):
    def imported(self, image_id: str, action: str) -> None: ...


@dataclass
class ImportSummary:
    revision: str
    dry_run: bool
    actions: Counter[str] = field(default_factory=Counter)
    tombstones: int = 0  # deleted Glance images, reserved as tombstones (whatever their action)
    changed: list[tuple[str, str]] = field(default_factory=list)  # (image id, created|updated|failed)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (image id, why it could not be written)

    @property
    def total(self) -> int:
        return sum(self.actions.values())


class GlanceImport:
    def __init__(self, source: GlanceDatabase, target: ImageSnapshots, maintenance: StoreMaintenance) -> None:
        self.source = source
        self.target = target
        self.maintenance = maintenance

    def check(self) -> str:
        """The source's Glance schema revision; UnknownSchema when Glimpse cannot read it."""
        return self.source.check_schema()

    def count(self) -> int:
        return self.source.count()

    def run(self, *, dry_run: bool = False, progress: ImportProgress | None = None) -> ImportSummary:
        summary = ImportSummary(self.check(), dry_run)
        for glance_image in self.source.images():
            wanted = snapshot_of(glance_image)
            current = self.target.read(wanted.image.id)
            if current is None:
                action = CREATED
            elif _comparable(current) == _comparable(wanted):
                action = UNCHANGED
            else:
                action = UPDATED
            if action != UNCHANGED:
                if not dry_run:
                    try:
                        self.target.write(wanted)
                    except BadRequest as exc:  # this image only; the others go on
                        action = FAILED
                        summary.failures.append((wanted.image.id, exc.message))
                summary.changed.append((wanted.image.id, action))
            summary.actions[action] += 1
            summary.tombstones += wanted.deleted
            if progress is not None:
                progress.imported(wanted.image.id, action)
        return summary

    def images_with_data(self) -> Iterator[Image]:
        """The Glance images whose data Glimpse would serve, as records (whether imported yet or not)."""
        for glance_image in self.source.images():
            image = snapshot_of(glance_image)
            if not image.deleted and image.image.status in WITH_DATA and image.image.locations:
                yield image.image

    def sample(self, size: int | None, rng: random.Random | None = None) -> list[Image]:
        """All images with data, or `size` of them picked uniformly in one pass (reservoir sampling)."""
        if size is None:
            return list(self.images_with_data())
        rng = rng or random.Random()
        picked: list[Image] = []
        for seen, image in enumerate(self.images_with_data()):
            if seen < size:
                picked.append(image)
            else:
                slot = rng.randrange(seen + 1)
                if slot < size:
                    picked[slot] = image
        return picked

    def verify(self, images: list[Image], progress: Progress | None = None) -> tuple[int, list[Finding]]:
        """Re-read each image's copies through Glimpse's stores: what is missing, unreadable or differs."""
        return self.maintenance.verify(None, progress, images=images)


def snapshot_of(source: GlanceImage) -> ImageSnapshot:
    """The Glimpse state of a Glance image; a deleted one keeps only its record, like Glimpse's tombstones."""
    c = source.columns
    image = Image(
        id=source.id,
        owner=c["owner"],
        name=c["name"],
        status="deleted" if source.deleted else c["status"],
        visibility=c["visibility"] or "shared",
        protected=bool(c["protected"]),
        os_hidden=bool(c["os_hidden"]),
        checksum=c["checksum"],
        os_hash_algo=c["os_hash_algo"],
        os_hash_value=c["os_hash_value"],
        size=c["size"],
        virtual_size=c["virtual_size"],
        container_format=c["container_format"],
        disk_format=c["disk_format"],
        min_disk=c["min_disk"] or 0,
        min_ram=c["min_ram"] or 0,
        created_at=c["created_at"],
        updated_at=c["updated_at"] or c["created_at"],
    )
    if source.deleted:
        return ImageSnapshot(image, deleted=True, deleted_at=source.deleted_at or image.updated_at)
    image.tags = sorted(source.tags)
    image.properties = dict(source.properties)
    image.locations = [Location(url=loc.url, metadata=dict(loc.metadata)) for loc in source.locations]
    members = [
        Member(
            source.id,
            m.member,
            m.status,
            m.created_at or image.created_at,
            m.updated_at or m.created_at or image.updated_at,
        )
        for m in source.members
    ]
    return ImageSnapshot(image, members=sorted(members, key=lambda m: m.member_id))


def _comparable(snapshot: ImageSnapshot) -> ImageSnapshot:
    image = replace(snapshot.image, revision=0, tags=sorted(snapshot.image.tags))
    return replace(snapshot, image=image, members=sorted(snapshot.members, key=lambda m: m.member_id))
