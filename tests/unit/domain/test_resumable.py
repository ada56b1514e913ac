"""The rules of resumable (tus) uploads, over the real composition (build_services), a SQLite database and the file
store: claims and offsets, checksums, cut chunks, quotas, termination, expiry, concatenation, formats."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from glimpse.app import Services, build_services
from glimpse.auth.context import RequestContext
from glimpse.config import Settings
from glimpse.errors import BadRequest, Conflict, Forbidden, NotFound, TooLarge
from glimpse.tus import Checksum, ChecksumMismatch, Concat
from tests.disk_bytes import raw_disk_bytes

MEMBER = RequestContext(project_id="p1", user_id="u1", roles=frozenset({"member", "reader"}))
READER = RequestContext(project_id="p1", user_id="u2", roles=frozenset({"reader"}))


def services_for(tmp_path: Path, **settings: object) -> Services:
    url = f"sqlite:///{tmp_path / 'glimpse.db'}"
    return build_services(Settings(data_dir=tmp_path, database_url=url, **settings))  # type: ignore[arg-type]


@pytest.fixture
def services(tmp_path: Path) -> Services:
    return services_for(tmp_path, user_storage_quota=10 * 1024 * 1024)


def new_image(services: Services, disk_format: str = "raw") -> str:
    body = {"name": "disk", "disk_format": disk_format, "container_format": "bare"}
    return services.images.create(MEMBER, body).id


def status(services: Services, image_id: str) -> str:
    return services.images.repo.get(image_id).status


def leftovers(tmp_path: Path, image_id: str) -> list[str]:
    return sorted(p.name for p in (tmp_path / "images").glob(f"{image_id}.*"))


def used(services: Services) -> int:
    return services.quotas.repo.usage("p1").image_size_total


def test_an_upload_in_three_chunks_publishes_the_image(services: Services, tmp_path: Path) -> None:
    image_id = new_image(services)
    data = raw_disk_bytes(300_000)
    upload = services.resumable.create(MEMBER, image_id, len(data), None, {"filename": "d"})
    assert status(services, image_id) == "saving"
    assert used(services) == len(data)  # reserved ahead, for the whole Upload-Length
    for start in range(0, len(data), 100_000):
        upload = services.resumable.append(MEMBER, image_id, upload.id, start, None, [data[start : start + 100_000]])
    assert upload.offset == len(data)
    image = services.images.repo.get(image_id)
    assert image.status == "active"
    assert image.checksum == hashlib.md5(data).hexdigest()
    assert image.os_hash_value == hashlib.sha512(data).hexdigest()
    assert image.size == image.virtual_size == len(data)
    assert used(services) == len(data)  # now as stored data, the reservation gone with the same commit
    assert leftovers(tmp_path, image_id) == []
    with pytest.raises(NotFound):
        services.resumable.get(MEMBER, image_id, upload.id)


def test_the_offset_must_be_the_uploads(services: Services) -> None:
    image_id = new_image(services)
    upload = services.resumable.create(MEMBER, image_id, 10, None, {})
    services.resumable.append(MEMBER, image_id, upload.id, 0, None, [b"abc"])
    for wrong in (0, 2, 4):
        with pytest.raises(Conflict):
            services.resumable.append(MEMBER, image_id, upload.id, wrong, None, [b"x"])
    assert services.resumable.get(MEMBER, image_id, upload.id).offset == 3


def test_a_forged_checksum_keeps_nothing_of_the_chunk(services: Services, tmp_path: Path) -> None:
    image_id = new_image(services)
    upload = services.resumable.create(MEMBER, image_id, 8, None, {})
    forged = Checksum("sha1", hashlib.sha1(b"other").digest())
    with pytest.raises(ChecksumMismatch):
        services.resumable.append(MEMBER, image_id, upload.id, 0, forged, [b"abcd"])
    assert services.resumable.get(MEMBER, image_id, upload.id).offset == 0
    assert leftovers(tmp_path, image_id) == []
    right = Checksum("sha1", hashlib.sha1(b"abcd").digest())
    assert services.resumable.append(MEMBER, image_id, upload.id, 0, right, [b"abcd"]).offset == 4


def test_a_chunk_cut_short_keeps_what_arrived(services: Services) -> None:
    """The API turns a client gone mid-PATCH into the end of its body: what came is kept, the client resumes."""
    image_id = new_image(services)
    upload = services.resumable.create(MEMBER, image_id, 10, None, {})
    assert services.resumable.append(MEMBER, image_id, upload.id, 0, None, [b"0123"]).offset == 4
    assert services.resumable.append(MEMBER, image_id, upload.id, 4, None, [b"456789"]).offset == 10
    assert b"".join(services.images.download(MEMBER, image_id, None).chunks) == b"0123456789"


def test_a_chunk_past_the_length_is_refused_whole(services: Services) -> None:
    image_id = new_image(services)
    upload = services.resumable.create(MEMBER, image_id, 5, None, {})
    with pytest.raises(TooLarge):
        services.resumable.append(MEMBER, image_id, upload.id, 0, None, [b"abc", b"def"])
    assert services.resumable.get(MEMBER, image_id, upload.id).offset == 0


def test_two_patches_racing_one_wins_the_other_is_a_conflict(services: Services) -> None:
    image_id = new_image(services)
    upload = services.resumable.create(MEMBER, image_id, 20, None, {})
    writing, finish = threading.Event(), threading.Event()

    def slow() -> Iterator[bytes]:
        yield b"A" * 5
        writing.set()
        finish.wait(30)
        yield b"A" * 5

    result: list[int] = []
    first = threading.Thread(
        target=lambda: result.append(services.resumable.append(MEMBER, image_id, upload.id, 0, None, slow()).offset)
    )
    first.start()
    assert writing.wait(30)
    with pytest.raises(Conflict):
        services.resumable.append(MEMBER, image_id, upload.id, 0, None, [b"B" * 10])
    finish.set()
    first.join(30)
    assert result == [10]
    services.resumable.append(MEMBER, image_id, upload.id, 10, None, [b"C" * 10])
    assert b"".join(services.images.download(MEMBER, image_id, None).chunks) == b"A" * 10 + b"C" * 10


def test_the_quota_is_reserved_ahead_and_released_by_termination(services: Services, tmp_path: Path) -> None:
    image_id = new_image(services)
    with pytest.raises(TooLarge):
        services.resumable.create(MEMBER, image_id, 11 * 1024 * 1024, None, {})
    assert status(services, image_id) == "queued"
    assert used(services) == 0
    upload = services.resumable.create(MEMBER, image_id, 6 * 1024 * 1024, None, {})
    services.resumable.append(MEMBER, image_id, upload.id, 0, None, [b"x" * 1000])
    other = new_image(services)
    with pytest.raises(TooLarge):  # the first upload holds 6 of the 10 MiB
        services.resumable.create(MEMBER, other, 6 * 1024 * 1024, None, {})
    services.resumable.terminate(MEMBER, image_id, upload.id)
    assert status(services, image_id) == "queued"
    assert used(services) == 0
    assert leftovers(tmp_path, image_id) == []
    services.resumable.create(MEMBER, other, 6 * 1024 * 1024, None, {})


def test_the_size_cap_refuses_the_creation(tmp_path: Path) -> None:
    services = services_for(tmp_path, image_size_cap=1000)
    image_id = new_image(services)
    assert services.resumable.max_size(MEMBER, image_id) == 1000
    with pytest.raises(TooLarge):
        services.resumable.create(MEMBER, image_id, 1001, None, {})
    assert status(services, image_id) == "queued"


def test_the_upload_image_policy_and_the_formats_come_first(services: Services) -> None:
    image_id = new_image(services)
    with pytest.raises(Forbidden):
        services.resumable.create(READER, image_id, 10, None, {})
    bare = services.images.create(MEMBER, {"name": "no formats"}).id
    with pytest.raises(BadRequest):
        services.resumable.create(MEMBER, bare, 10, None, {})
    assert status(services, image_id) == status(services, bare) == "queued"


def test_one_whole_upload_at_a_time(services: Services) -> None:
    image_id = new_image(services)
    services.resumable.create(MEMBER, image_id, 10, None, {})
    with pytest.raises(Conflict):
        services.resumable.create(MEMBER, image_id, 10, None, {})


def test_expired_uploads_are_swept(tmp_path: Path) -> None:
    services = services_for(tmp_path, resumable_upload_expiration=0.0003, user_storage_quota=10**9)
    image_id = new_image(services)
    upload = services.resumable.create(MEMBER, image_id, 10, None, {})
    services.resumable.append(MEMBER, image_id, upload.id, 0, None, [b"abc"])
    assert services.resumable.sweep() == 0  # not yet
    time.sleep(1.5)
    with pytest.raises(NotFound):  # expired: Upload-Expires has passed
        services.resumable.get(MEMBER, image_id, upload.id)
    assert services.runner.sweep("test") >= 1  # the periodic sweep runs it
    assert status(services, image_id) == "queued"
    assert used(services) == 0
    assert leftovers(tmp_path, image_id) == []


def test_uploads_of_a_deleted_image_are_swept(services: Services, tmp_path: Path) -> None:
    image_id = new_image(services)
    upload = services.resumable.create(MEMBER, image_id, 10, None, {})
    services.resumable.append(MEMBER, image_id, upload.id, 0, None, [b"abc"])
    services.images.delete(MEMBER, image_id)
    assert services.resumable.sweep() == 1
    assert leftovers(tmp_path, image_id) == []
    with pytest.raises(NotFound):
        services.resumable.uploads.get(upload.id)


def test_the_abandoned_upload_sweep_leaves_a_waiting_tus_upload_alone(tmp_path: Path) -> None:
    """Between PATCHes nothing beats: only the upload's expiry may end it, not the sweep of dead writers."""
    services = services_for(tmp_path, upload_heartbeat_timeout=5)
    image_id = new_image(services)
    upload = services.resumable.create(MEMBER, image_id, 10, None, {})
    services.resumable.append(MEMBER, image_id, upload.id, 0, None, [b"abc"])
    from datetime import timedelta

    assert services.runner.uploads.sweep_abandoned(timedelta(seconds=0)) == 0
    assert services.runner.uploads.recover() == 0
    assert status(services, image_id) == "saving"
    assert services.resumable.append(MEMBER, image_id, upload.id, 3, None, [b"defghij"]).offset == 10


def test_partial_uploads_publish_nothing_until_the_final_one(services: Services) -> None:
    image_id = new_image(services)
    parts = [raw_disk_bytes(n) for n in (1000, 70_000, 5)]
    uploads = [services.resumable.create(MEMBER, image_id, len(p), Concat(final=False), {}) for p in parts]
    assert used(services) == sum(map(len, parts))  # each part reserves its own bytes
    with pytest.raises(BadRequest):  # not every part is complete yet
        services.resumable.create(MEMBER, image_id, None, Concat(True, tuple(u.id for u in uploads)), {})
    for upload, part in zip(reversed(uploads), reversed(parts), strict=True):  # in any order
        services.resumable.append(MEMBER, image_id, upload.id, 0, None, [part])
    # An empty PATCH at the end of a complete part (a client making sure) publishes nothing either.
    assert services.resumable.append(MEMBER, image_id, uploads[0].id, 1000, None, [b""]).offset == 1000
    assert status(services, image_id) == "saving"
    with pytest.raises(Conflict):  # a whole upload cannot join partial ones
        services.resumable.create(MEMBER, image_id, 10, None, {})
    with pytest.raises(BadRequest):  # a final one joins partial uploads of this image only
        services.resumable.create(MEMBER, image_id, None, Concat(True, ("0" * 36,)), {})


def test_a_final_upload_joins_the_named_parts_in_order(services: Services, tmp_path: Path) -> None:
    image_id = new_image(services)
    parts = [raw_disk_bytes(n) for n in (1000, 70_000, 5)]
    uploads = [services.resumable.create(MEMBER, image_id, len(p), Concat(final=False), {}) for p in parts]
    for upload, part in zip(uploads, parts, strict=True):
        services.resumable.append(MEMBER, image_id, upload.id, 0, None, [part])
    final = services.resumable.create(MEMBER, image_id, None, Concat(True, tuple(u.id for u in uploads)), {})
    assert final.offset == final.length == 71_005
    data = b"".join(parts)
    image = services.images.repo.get(image_id)
    assert image.status == "active"
    assert image.os_hash_value == hashlib.sha512(data).hexdigest()
    assert b"".join(services.images.download(MEMBER, image_id, None).chunks) == data
    assert leftovers(tmp_path, image_id) == []
    assert used(services) == len(data)


def test_a_refused_format_is_refused_at_the_end_and_keeps_nothing(services: Services, tmp_path: Path) -> None:
    image_id = new_image(services, disk_format="qcow2")
    data = b"not a qcow2 image" * 100
    upload = services.resumable.create(MEMBER, image_id, len(data), None, {})
    services.resumable.append(MEMBER, image_id, upload.id, 0, None, [data[:100]])
    with pytest.raises(BadRequest):
        services.resumable.append(MEMBER, image_id, upload.id, 100, None, [data[100:]])
    assert status(services, image_id) == "queued"
    assert used(services) == 0
    assert leftovers(tmp_path, image_id) == []
    assert not (tmp_path / "images" / image_id).exists()
