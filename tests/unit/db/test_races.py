"""Races between requests on a real database (SQLite file, PostgreSQL and MariaDB on loopback): the
compare-and-swap delete and the member quota hold when two writers meet."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine

from glimpse.db.repositories import ImageRepository
from glimpse.db.session import make_sessionmaker
from glimpse.domain.entities import Image
from glimpse.errors import Conflict, Forbidden, NotFound, TooLarge


@pytest.fixture(scope="module")
def engine(every_engine: Engine) -> Engine:
    return every_engine


@pytest.fixture
def repo(engine: Engine) -> ImageRepository:
    return ImageRepository(make_sessionmaker(engine))


def _add(repo: ImageRepository, **fields: Any) -> Image:
    fields.setdefault("owner", "p1")
    return repo.add(Image(id=str(uuid.uuid4()), **fields))


def _together(*steps: Callable[[], None]) -> list[BaseException]:
    """Run the steps in threads released at the same instant; the errors they raised."""
    start = threading.Barrier(len(steps))
    errors: list[BaseException] = []

    def run(step: Callable[[], None]) -> None:
        start.wait()
        try:
            step()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(step,)) for step in steps]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


def _protect(repo: ImageRepository, image_id: str) -> None:
    """PATCH protected=true: read, change, compare-and-swap save."""
    image = repo.get(image_id)
    image.protected = True
    repo.save(image)


def _delete_as_the_service_does(repo: ImageRepository, image_id: str) -> None:
    image = repo.get(image_id)
    if image.protected:
        raise Forbidden("protected")
    repo.delete(image_id, image.revision)


def test_delete_after_a_stale_read_never_loses_a_protected_image(repo: ImageRepository) -> None:
    image = _add(repo)
    read_by_delete = repo.get(image.id)  # DELETE has checked `protected`...
    _protect(repo, image.id)  # ...then PATCH protected=true commits...
    with pytest.raises((Forbidden, Conflict)):
        repo.delete(image.id, read_by_delete.revision)  # ...so the delete must not happen
    assert repo.get(image.id).protected


def test_delete_refuses_a_protected_image_even_without_a_revision(repo: ImageRepository) -> None:
    image = _add(repo, protected=True)
    with pytest.raises(Forbidden):
        repo.delete(image.id)
    assert repo.get(image.id).protected


def test_racing_protect_and_delete_never_loses_a_protected_image(repo: ImageRepository) -> None:
    wins = {"protect": 0, "delete": 0}
    for _ in range(60):
        image = _add(repo)
        done: dict[str, bool] = {}

        def protect(image_id: str = image.id, done: dict[str, bool] = done) -> None:
            _protect(repo, image_id)
            done["protect"] = True  # the PATCH was acknowledged

        def delete(image_id: str = image.id, done: dict[str, bool] = done) -> None:
            _delete_as_the_service_does(repo, image_id)
            done["delete"] = True

        errors = _together(protect, delete)
        assert all(isinstance(e, (Conflict, Forbidden, NotFound)) for e in errors), errors
        assert not (done.get("protect") and done.get("delete")), "a protected image was deleted"
        assert len(done) == 1
        if done.get("protect"):
            assert repo.get(image.id).protected
        wins[next(iter(done))] += 1
    assert sum(wins.values()) == 60


def test_parallel_member_adds_never_exceed_the_quota(repo: ImageRepository) -> None:
    quota = 5
    for _ in range(8):
        image = _add(repo, visibility="shared")
        projects = [f"prj-{n}" for n in range(12)]
        errors = _together(*(lambda p=p, i=image.id: repo.add_member(i, p, quota) and None for p in projects))
        assert all(isinstance(e, TooLarge) for e in errors), errors
        assert len(repo.members(image.id)) == quota
        assert len(errors) == len(projects) - quota


def test_only_one_of_racing_requests_names_its_task_on_an_image(repo: ImageRepository) -> None:
    """Two copies of one image started at once: each sets os_glance_import_task only if it is still what it read."""
    for _ in range(8):
        image = _add(repo)
        tasks = [f"task-{n}" for n in range(6)]
        errors = _together(
            *(
                lambda t=t, i=image.id: repo.set_internal_properties(
                    i, {"os_glance_import_task": t}, expect={"os_glance_import_task": None}
                )
                for t in tasks
            )
        )
        assert len(errors) == len(tasks) - 1 and all(isinstance(e, Conflict) for e in errors), errors
        assert repo.get(image.id).properties["os_glance_import_task"] in tasks
