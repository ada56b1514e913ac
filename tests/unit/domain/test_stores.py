"""glimpse.domain.stores (migrate, verify) and the multi-store use cases of ImageService, over the real
composition (build_services) with two file stores and a SQLite database."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from glimpse.app import Services, build_services
from glimpse.auth.context import RequestContext
from glimpse.config import Settings
from glimpse.domain.entities import Image
from glimpse.errors import BadRequest, Conflict, Forbidden, NotFound, StoreError
from glimpse.store.options import BackendConfig
from tests.disk_bytes import raw_disk_bytes

ADMIN = RequestContext(project_id="p1", user_id="u1", roles=frozenset({"admin"}), is_admin=True)
MEMBER = RequestContext(project_id="p1", user_id="u2", roles=frozenset({"member", "reader"}))


@pytest.fixture
def services(tmp_path: Path) -> Services:
    backends = (
        BackendConfig("old", "file", "old disks", 1, {"filesystem_store_datadir": str(tmp_path / "old")}),
        BackendConfig("new", "file", "new disks", 50, {"filesystem_store_datadir": str(tmp_path / "new")}),
    )
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'glimpse.db'}",
        backends=backends,
        default_backend="old",
        multi_store=True,
    )
    return build_services(settings)


def upload(services: Services, data: bytes, store: str | None = None) -> Image:
    image = services.images.create(ADMIN, {"name": "disk", "disk_format": "raw", "container_format": "bare"})
    return services.images.upload(ADMIN, image.id, [data], store_name=store)


def read(services: Services, image_id: str) -> bytes:
    return b"".join(services.images.download(ADMIN, image_id, None).chunks)


def files(tmp_path: Path, store: str) -> list[str]:
    folder = tmp_path / store
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, int]] = []
        self.on_advance = lambda: None

    def start_image(self, image: Image, total: int) -> None:
        self.events.append(("start", image.id, total))

    def advance(self, nbytes: int) -> None:
        self.events.append(("advance", "", nbytes))
        self.on_advance()

    def end_image(self, image: Image, outcome: str) -> None:
        self.events.append(("end", image.id, 0))


def test_migrate_copies_records_and_is_resumable(services: Services, tmp_path: Path) -> None:
    data = [raw_disk_bytes(n) for n in (0, 10, 3 * 1024 * 1024 + 1)]
    images = [upload(services, d) for d in data]
    on_new = upload(services, b"already new", "new")
    recorder = Recorder()
    outcomes = services.stores.migrate("old", "new", verify=True, progress=recorder)
    assert sorted(o.action for o in outcomes) == ["copied"] * 3
    assert sum(n for kind, _, n in recorder.events if kind == "advance") == 2 * sum(map(len, data))  # copy + verify
    for image, expected in zip(images, data, strict=True):
        current = services.images.get(ADMIN, image.id)
        assert services.images.store_ids(current) == ["old", "new"]
        assert read(services, image.id) == expected
    assert files(tmp_path, "new") == sorted([i.id for i in images] + [on_new.id])
    again = services.stores.migrate("old", "new")
    assert [o.action for o in again] == ["skipped"] * 3
    assert services.stores.verify() == (7, [])


def test_migrate_with_delete_source(services: Services, tmp_path: Path) -> None:
    data = raw_disk_bytes(100_000)
    image = upload(services, data)
    services.stores.migrate("old", "new", delete_source=True)
    current = services.images.get(ADMIN, image.id)
    assert services.images.store_ids(current) == ["new"]
    assert files(tmp_path, "old") == []
    assert read(services, image.id) == data
    assert current.checksum == hashlib.md5(data).hexdigest()
    assert services.images.repo.waiting_copies(image.id) == []  # the source's record goes with its data
    [back] = services.stores.migrate("new", "old", delete_source=True)  # and the image can come back
    assert back.action == "copied" and back.source_deleted, back
    assert services.images.store_ids(services.images.get(ADMIN, image.id)) == ["old"]
    assert read(services, image.id) == data


def test_interrupted_delete_source_is_finished_by_a_rerun(services: Services, tmp_path: Path) -> None:
    image = upload(services, b"abc")
    services.stores.migrate("old", "new")  # copied, source kept
    outcomes = services.stores.migrate("old", "new", delete_source=True, verify=True)
    assert [(o.action, o.source_deleted) for o in outcomes] == [("skipped", True)]
    assert services.images.store_ids(services.images.get(ADMIN, image.id)) == ["new"]
    assert files(tmp_path, "old") == []


def test_corrupt_source_is_not_copied(services: Services, tmp_path: Path) -> None:
    good = upload(services, b"good data")
    bad = upload(services, b"original")
    (tmp_path / "old" / bad.id).write_bytes(b"tampered")  # same size, other bytes
    outcomes = {o.image_id: o for o in services.stores.migrate("old", "new", delete_source=True)}
    assert outcomes[good.id].action == "copied"
    assert outcomes[bad.id].action == "failed" and "md5" in outcomes[bad.id].detail
    assert files(tmp_path, "new") == [good.id]
    assert services.images.store_ids(services.images.get(ADMIN, bad.id)) == ["old"]  # source kept


def test_image_deleted_during_the_copy_gets_no_location(services: Services, tmp_path: Path) -> None:
    image = upload(services, raw_disk_bytes(3 * 1024 * 1024))
    recorder = Recorder()
    recorder.on_advance = lambda: services.images.delete(ADMIN, image.id) if recorder.events[-2][0] == "start" else None
    outcomes = services.stores.migrate("old", "new", progress=recorder)
    assert outcomes[0].action == "skipped" and "deleted" in outcomes[0].detail
    assert files(tmp_path, "new") == []


def test_verify_reports_missing_and_corrupt(services: Services, tmp_path: Path) -> None:
    _fine, gone, bad = (upload(services, d) for d in (b"fine", b"gone", b"bad!"))
    (tmp_path / "old" / gone.id).unlink()
    (tmp_path / "old" / bad.id).write_bytes(b"bad!!")
    checked, findings = services.stores.verify()
    assert checked == 3
    assert {(f.image_id, f.problem) for f in findings} == {(gone.id, "missing"), (bad.id, "corrupt")}
    assert services.stores.verify("new") == (0, [])
    with pytest.raises(BadRequest):
        services.stores.verify("elsewhere")


@pytest.mark.parametrize(("source", "target"), [("old", "old"), ("old", "nowhere"), ("nowhere", "new")])
def test_migrate_refuses_bad_store_names(services: Services, source: str, target: str) -> None:
    with pytest.raises(BadRequest):
        services.stores.migrate(source, target)


def test_upload_to_a_chosen_store_and_unknown_store(services: Services, tmp_path: Path) -> None:
    image = upload(services, b"to new", "new")
    assert services.images.store_ids(image) == ["new"]
    assert files(tmp_path, "new") == [image.id]
    other = services.images.create(ADMIN, {"disk_format": "raw", "container_format": "bare"})
    with pytest.raises(BadRequest):
        services.images.upload(ADMIN, other.id, [b"x"], store_name="nowhere")
    assert services.images.get(ADMIN, other.id).status == "queued"


def test_delete_from_store(services: Services, tmp_path: Path) -> None:
    image = upload(services, b"twice")
    services.stores.migrate("old", "new")
    with pytest.raises(Forbidden):
        services.images.delete_from_store(MEMBER, "old", image.id)
    with pytest.raises(Conflict):
        services.images.delete_from_store(ADMIN, "elsewhere", image.id)
    services.images.delete_from_store(ADMIN, "old", image.id)
    assert files(tmp_path, "old") == []
    assert services.images.store_ids(services.images.get(ADMIN, image.id)) == ["new"]
    with pytest.raises(NotFound):
        services.images.delete_from_store(ADMIN, "old", image.id)
    with pytest.raises(Conflict):  # the last copy: delete the image instead
        services.images.delete_from_store(ADMIN, "new", image.id)
    assert read(services, image.id) == b"twice"


def test_download_reads_the_heaviest_store_and_falls_back(services: Services, tmp_path: Path) -> None:
    image = upload(services, b"weighted")
    services.stores.migrate("old", "new")
    (tmp_path / "new" / image.id).write_bytes(b"WEIGHTED")  # "new" weighs 50, "old" 1: it is read first
    assert read(services, image.id) == b"WEIGHTED"
    (tmp_path / "new" / image.id).unlink()
    assert read(services, image.id) == b"weighted"
    (tmp_path / "old" / image.id).unlink()
    with pytest.raises(NotFound):
        services.images.download(ADMIN, image.id, None)


def test_no_migration_into_a_store_whose_copy_is_still_being_deleted(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy's data waits for `glimpse scrub` under the name a migration would write: writing there would have
    the scrubber remove the migrated data later (and the copy would not even be recorded). The migration refuses
    that image, saying why, until the scrubber is done; then it copies."""
    image = upload(services, b"data")
    services.stores.migrate("old", "new")
    new = services.stores.stores.stores["new"]

    def failing(url: str) -> None:
        raise StoreError("the new disks failed")

    monkeypatch.setattr(new, "delete", failing)
    services.images.delete_from_store(ADMIN, "new", image.id)  # done, its data left in the store
    monkeypatch.undo()
    assert files(tmp_path, "new") == [image.id]
    [outcome] = services.stores.migrate("old", "new")
    assert outcome.action == "failed" and "still being deleted" in outcome.detail, outcome
    assert services.images.store_ids(services.images.get(ADMIN, image.id)) == ["old"]
    report = services.bin.scrubber.run()
    assert report.copies == 1 and files(tmp_path, "new") == []
    [outcome] = services.stores.migrate("old", "new")
    assert outcome.action == "copied"
    assert services.images.store_ids(services.images.get(ADMIN, image.id)) == ["old", "new"]
    assert services.bin.scrubber.run().copies == 0 and files(tmp_path, "new") == [image.id]
    assert read(services, image.id) == b"data"
