"""glimpse.domain.glance_import: how a Glance row becomes a Glimpse image, and the verification sample."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime
from typing import Any, cast

from glimpse.domain.glance_import import GlanceImport, snapshot_of
from glimpse.sources.glance_db import GlanceDatabase, GlanceImage, GlanceLocation, GlanceMember

T0, T1 = datetime(2022, 1, 1, 0, 0, 1), datetime(2022, 6, 1, 12, 0, 0)


def _glance_image(n: int, *, deleted: bool = False, status: str = "active") -> GlanceImage:
    columns: dict[str, Any] = {
        "name": f"image-{n}", "size": 100 + n, "virtual_size": None, "status": status, "visibility": "public",
        "checksum": "c" * 32, "os_hash_algo": "sha512", "os_hash_value": "h" * 128, "min_disk": None,
        "min_ram": 0, "owner": "p1", "protected": 0, "os_hidden": 1, "disk_format": "raw",
        "container_format": "bare", "created_at": T0, "updated_at": None,
    }  # fmt: skip
    return GlanceImage(
        id=f"00000000-0000-0000-0000-{n:012d}",
        columns=columns,
        deleted=deleted,
        deleted_at=T1 if deleted else None,
        properties={"os_distro": "debian"},
        tags=["b", "a"],
        members=[GlanceMember("p2", "accepted", T0, None)],
        locations=[GlanceLocation(f"file:///glance/{n}", {"store": "file"})],
    )


class Source:
    def __init__(self, images: list[GlanceImage]) -> None:
        self._images = images

    def images(self) -> Iterator[GlanceImage]:
        return iter(self._images)


def test_a_live_image_keeps_everything_with_defaults_for_missing_values() -> None:
    snapshot = snapshot_of(_glance_image(1))
    image = snapshot.image
    assert not snapshot.deleted and image.status == "active"
    assert (image.protected, image.os_hidden, image.min_disk, image.updated_at) == (False, True, 0, T0)
    assert image.tags == ["a", "b"] and image.properties == {"os_distro": "debian"}
    assert [(loc.url, loc.metadata) for loc in image.locations] == [("file:///glance/1", {"store": "file"})]
    assert [(m.member_id, m.status, m.updated_at) for m in snapshot.members] == [("p2", "accepted", T0)]


def test_a_deleted_image_is_a_bare_tombstone() -> None:
    snapshot = snapshot_of(_glance_image(2, deleted=True, status="pending_delete"))
    assert snapshot.deleted and snapshot.deleted_at == T1
    assert snapshot.image.status == "deleted"
    assert (snapshot.image.tags, snapshot.image.properties, snapshot.image.locations, snapshot.members) == (
        [], {}, [], []
    )  # fmt: skip


def test_the_sample_is_a_subset_of_the_images_with_data() -> None:
    images = [_glance_image(n) for n in range(40)]
    images += [_glance_image(100, deleted=True), _glance_image(101, status="queued")]
    job = GlanceImport(cast(GlanceDatabase, Source(images)), cast(Any, None), cast(Any, None))
    everything = {i.id for i in job.sample(None)}
    assert everything == {i.id for i in images[:40]}
    picks = [job.sample(5, random.Random(seed)) for seed in range(20)]
    for pick in picks:
        assert len(pick) == 5 and len({i.id for i in pick}) == 5 and {i.id for i in pick} <= everything
    assert len({i.id for pick in picks for i in pick}) > 20  # not always the first five
    assert {i.id for i in job.sample(100)} == everything
