"""Fenced import claims (glimpse.domain.import_runner) over the real composition: SQLite, a file store and
a real web server on loopback. Two claimants of one task are played in one process, step by step."""

from __future__ import annotations

import errno
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from glimpse.app import Services, build_services
from glimpse.auth.context import RequestContext
from glimpse.config import Settings, load_settings
from glimpse.errors import Conflict
from tests.disk_bytes import raw_disk_bytes
from tests.functional.http_server import FileServer

ADMIN = RequestContext(project_id="p1", user_id="u1", roles=frozenset({"admin"}), is_admin=True)
MIB = 1024 * 1024


@pytest.fixture
def files(tmp_path: Path) -> Iterator[FileServer]:
    root = tmp_path / "web"
    root.mkdir()
    (root / "disk.raw").write_bytes(raw_disk_bytes(2 * MIB))
    with FileServer(root) as server:
        yield server


@pytest.fixture
def services(tmp_path: Path, files: FileServer) -> Services:
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'glimpse.db'}",
        filesystem_store_datadir=tmp_path / "images",
        staging_dir=tmp_path / "staging",
        import_filter={"allow_private_addresses": True, "allowed_ports": [str(files.port)]},
    )
    return build_services(settings)


def _stall(tmp_path: Path, task_id: str) -> None:
    """The claimant stops beating for long enough that other processes treat it as dead."""
    engine = create_engine(f"sqlite:///{tmp_path / 'glimpse.db'}")
    with engine.begin() as conn:
        long_ago = "2000-01-01 00:00:00.000000"  # as SQLAlchemy writes a time: the orphan sweep compares it exactly
        conn.execute(text("UPDATE tasks SET heartbeat_at = :t WHERE id = :id"), {"t": long_ago, "id": task_id})
    engine.dispose()


def _data(services: Services, image_id: str) -> bytes:
    return b"".join(services.images.download(ADMIN, image_id, None).chunks)


def test_a_worker_that_lost_its_claim_neither_publishes_nor_deletes(
    services: Services, files: FileServer, tmp_path: Path
) -> None:
    expected = (files.root / "disk.raw").read_bytes()
    image = services.images.create(ADMIN, {"name": "web", "disk_format": "raw", "container_format": "bare"})
    services.imports.start(ADMIN, image.id, {"method": {"name": "web-download", "uri": f"{files.url}/files/disk.raw"}})
    runner = services.runner
    loser = runner.claim_next("host:1/100")
    assert loser is not None
    _stall(tmp_path, loser.id)
    winner = runner.claim_next("host:2/200")  # takes the stalled task over
    assert winner is not None and winner.id == loser.id and winner.generation == loser.generation + 1

    runner.run(loser)  # the stalled worker wakes up and runs to the end: it must not publish
    assert services.images.get(ADMIN, image.id).status == "importing"
    task = services.imports.get_task(ADMIN, loser.id)
    assert (task.status, task.generation) == ("processing", winner.generation)  # still the winner's
    assert list((tmp_path / "images").iterdir()) == []  # it removed what it wrote, nothing else

    runner.run(winner)
    done = services.images.get(ADMIN, image.id)
    assert done.status == "active"
    assert services.imports.get_task(ADMIN, winner.id).status == "success"

    runner.run(loser)  # once more, after the winner published: the winner's data stays
    again = services.images.get(ADMIN, image.id)
    assert again.status == "active" and again.locations == done.locations
    assert hashlib.sha512(_data(services, image.id)).hexdigest() == done.os_hash_value
    assert _data(services, image.id) == expected


def test_a_failing_loser_gives_back_nothing_it_does_not_own(
    services: Services, files: FileServer, tmp_path: Path
) -> None:
    """The loser's source fails: it may not put the winner's image back to queued nor release its quota."""
    image = services.images.create(ADMIN, {"name": "gone", "disk_format": "raw", "container_format": "bare"})
    services.imports.start(ADMIN, image.id, {"method": {"name": "web-download", "uri": f"{files.url}/files/nope"}})
    runner = services.runner
    loser = runner.claim_next("host:1/100")
    assert loser is not None
    _stall(tmp_path, loser.id)
    winner = runner.claim_next("host:2/200")
    assert winner is not None
    runner.run(loser)  # 404 from the source: a failure, but not the loser's to record
    assert services.images.get(ADMIN, image.id).status == "importing"
    assert services.imports.get_task(ADMIN, loser.id).status == "processing"
    runner.run(winner)
    assert services.images.get(ADMIN, image.id).status == "queued"
    task = services.imports.get_task(ADMIN, winner.id)
    assert task.status == "failure" and "404" in task.message


def _staged(services: Services) -> str:
    image = services.images.create(ADMIN, {"name": "staged", "disk_format": "raw", "container_format": "bare"})
    services.imports.stage(ADMIN, image.id, [raw_disk_bytes(MIB)], MIB)
    return image.id


def test_no_worker_runs_an_import_before_its_image_is_importing(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker polls just as the request has recorded the task, before the image is importing: it must not take
    the task (it would find the image still staged, fail the task and delete the staged data)."""
    image_id = _staged(services)
    staged = services.imports.staging.stored_ids()
    repo = services.imports.repo
    transition = repo.transition
    seen: list[object] = []

    def polled_first(*args: object, **kwargs: object) -> None:
        seen.append(services.runner.claim_next("host:2/200"))
        transition(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(repo, "transition", polled_first)
    task = services.imports.start(ADMIN, image_id, {"method": {"name": "glance-direct"}})
    monkeypatch.undo()
    assert seen == [None]
    assert services.imports.staging.stored_ids() == staged  # the staged data is still there
    claimed = services.runner.claim_next("host:2/200")
    assert claimed is not None and claimed.id == task.id
    services.runner.run(claimed)
    assert services.images.get(ADMIN, image_id).status == "active"
    assert services.imports.get_task(ADMIN, task.id).status == "success"


def test_an_import_whose_request_died_half_way_is_given_up_and_the_staged_data_kept(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request stops after recording the task, before the image is importing: the orphan sweep fails the
    task; the image stays staged, its data kept, and a new import of it succeeds."""
    image_id = _staged(services)
    staged = services.imports.staging.stored_ids()
    repo = services.imports.repo

    def killed(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the process stopped here")

    monkeypatch.setattr(repo, "transition", killed)
    with pytest.raises(RuntimeError):
        services.imports.start(ADMIN, image_id, {"method": {"name": "glance-direct"}})
    monkeypatch.undo()
    [task] = services.imports.image_tasks(ADMIN, image_id)
    assert services.runner.claim_next("host:2/200") is None
    _stall(tmp_path, task.id)
    services.runner.sweep("host:2/200")
    ended = services.imports.get_task(ADMIN, task.id)
    assert ended.status == "failure" and "never began" in ended.message
    assert services.images.get(ADMIN, image_id).status == "uploading"
    assert services.imports.staging.stored_ids() == staged

    again = services.imports.start(ADMIN, image_id, {"method": {"name": "glance-direct"}})
    claimed = services.runner.claim_next("host:2/200")
    assert claimed is not None and claimed.id == again.id
    services.runner.run(claimed)
    assert services.images.get(ADMIN, image_id).status == "active"


def test_a_request_that_stalled_past_the_sweep_gives_its_image_back(
    services: Services, files: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request stalls between moving the image to importing and letting the task run, long enough for the
    orphan sweep to give the task up: the caller gets a 409, the image is queued with no import pending."""
    image = services.images.create(ADMIN, {"name": "slow", "disk_format": "raw", "container_format": "bare"})
    repo = services.imports.repo
    set_properties = repo.set_internal_properties
    stalled: list[bool] = []

    def stall_first(image_id: str, *args: object, **kwargs: object) -> None:
        if not stalled:
            stalled.append(True)
            [task] = services.imports.image_tasks(ADMIN, image_id)
            _stall(tmp_path, task.id)
            services.runner.sweep("host:2/200")
        set_properties(image_id, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(repo, "set_internal_properties", stall_first)
    uri = f"{files.url}/files/disk.raw"
    with pytest.raises(Conflict, match="given up before it began"):
        services.imports.start(ADMIN, image.id, {"method": {"name": "web-download", "uri": uri}})
    monkeypatch.undo()
    after = services.images.get(ADMIN, image.id)
    assert after.status == "queued"
    assert after.properties.get("os_glance_import_task") is None
    assert not after.properties.get("os_glance_importing_to_stores")
    assert services.runner.claim_next("host:2/200") is None
    [task] = services.imports.image_tasks(ADMIN, image.id)
    assert task.status == "failure"


def test_a_restart_fails_the_held_task_of_a_request_that_died(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9 between recording the task and setting the image up: the node's next start fails the held task at
    once (no wait for the sweep), and the staged image keeps its data for a new import."""
    image_id = _staged(services)
    staged = services.imports.staging.stored_ids()

    def killed(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the process stopped here")

    monkeypatch.setattr(services.imports.repo, "transition", killed)
    with pytest.raises(RuntimeError):
        services.imports.start(ADMIN, image_id, {"method": {"name": "glance-direct"}})
    monkeypatch.undo()
    services.runner.recover()
    [task] = services.imports.image_tasks(ADMIN, image_id)
    assert task.status == "failure" and "never began" in task.message
    assert services.images.get(ADMIN, image_id).status == "uploading"
    assert services.imports.staging.stored_ids() == staged


def test_two_copies_of_one_image_started_at_once_run_one_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both requests read that no copy is running; the second to name its task on the image is refused, its task
    is given up, and the first copy runs alone to the end."""
    conf = tmp_path / "glance-api.conf"
    conf.write_text("[DEFAULT]\nenabled_backends = a:file, b:file\n[glance_store]\ndefault_backend = a\n")
    services = build_services(load_settings([str(conf)], overrides={"data_dir": str(tmp_path / "d")}))
    image = services.images.create(ADMIN, {"name": "c", "disk_format": "raw", "container_format": "bare"})
    data = raw_disk_bytes(MIB)
    services.images.upload(ADMIN, image.id, [data], MIB)
    copy = {"method": {"name": "copy-image"}, "stores": ["b"]}
    repo = services.imports.repo
    load = services.imports.access.load
    second: list[object] = []

    def both_read_first(*args: object, **kwargs: object) -> object:
        found = load(*args, **kwargs)  # type: ignore[arg-type]
        if not second:  # the other request reads the same image and goes through before this one writes
            second.append(None)
            second[0] = services.imports.start(ADMIN, image.id, dict(copy))
        return found

    monkeypatch.setattr(services.imports.access, "load", both_read_first)
    with pytest.raises(Conflict):
        services.imports.start(ADMIN, image.id, dict(copy))
    monkeypatch.undo()
    winner = second[0]
    tasks = services.imports.image_tasks(ADMIN, image.id)
    assert len(tasks) == 2
    assert {t.status for t in tasks if t.id != winner.id} == {"failure"}  # type: ignore[attr-defined]
    assert repo.get(image.id).properties["os_glance_import_task"] == winner.id  # type: ignore[attr-defined]
    claimed = services.runner.claim_next("host:2/200")
    assert claimed is not None and claimed.id == winner.id  # type: ignore[attr-defined]
    assert services.runner.claim_next("host:2/200") is None
    services.runner.run(claimed)
    shown = services.images.get(ADMIN, image.id)
    assert sorted(services.images.store_ids(shown)) == ["a", "b"]
    assert _data(services, image.id) == data


def test_an_image_deleted_while_imported_in_place_ends_its_task_saying_so(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The delete removes the staged file the import reads where it is: the task says the image was deleted,
    not the file error that caused, and the log has no traceback."""
    image_id = _staged(services)
    task = services.imports.start(ADMIN, image_id, {"method": {"name": "glance-direct"}})
    runner = services.runner
    store = runner._store

    def deleted_first(*args: object) -> object:
        services.images.delete(ADMIN, image_id)  # the staged file goes with it
        return store(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "_store", deleted_first)
    claimed = runner.claim_next("host:2/200")
    assert claimed is not None and claimed.id == task.id
    runner.run(claimed)
    ended = services.imports.get_task(ADMIN, task.id)
    assert ended.status == "failure"
    assert f"Image {image_id} was deleted" in ended.message and "Errno" not in ended.message
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a deletion"
    assert services.imports.staging.stored_ids() == []
    assert [p for p in (tmp_path / "images").rglob("*") if p.is_file()] == []  # no partial copy left


def test_a_full_disk_in_a_store_is_not_called_a_full_work_area(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only writes to the work area say the work area is full; an ENOSPC from a store's own code is not that."""
    image_id = _staged(services)
    store = services.runner.stores.writable(None)

    def full(*args: object, **kwargs: object) -> object:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "add", full)
    task = services.imports.start(ADMIN, image_id, {"method": {"name": "glance-direct"}})
    claimed = services.runner.claim_next("host:2/200")
    assert claimed is not None and claimed.id == task.id
    services.runner.run(claimed)
    ended = services.imports.get_task(ADMIN, task.id)
    assert ended.status == "failure" and "No space left" in ended.message
    assert "work area" not in ended.message
    assert services.images.get(ADMIN, image_id).status == "queued"
