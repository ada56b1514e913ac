"""ImageService.delete when the image changes between its read and its compare-and-swap delete, over the real
composition (build_services) and a SQLite database: an upload cancelled by its client going back to queued is
not a conflict for the delete that cleans it up (the dashboard's Cancel does exactly that), a change every time is."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from glimpse.app import Services, build_services
from glimpse.auth.context import RequestContext
from glimpse.config import Settings
from glimpse.domain.entities import Image
from glimpse.errors import Conflict, NotFound

MEMBER = RequestContext(project_id="p1", user_id="u1", roles=frozenset({"member", "reader"}))


class Cancelled(Exception):
    """The client went away in the middle of its upload."""


@pytest.fixture
def services(tmp_path: Path) -> Services:
    return build_services(Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'glimpse.db'}"))


def _created(services: Services) -> Image:
    return services.images.create(MEMBER, {"name": "disk", "disk_format": "raw", "container_format": "bare"})


def _status(services: Services, image_id: str) -> str:
    return services.images.repo.get(image_id).status


def test_a_delete_racing_the_cancelled_uploads_clean_up_deletes_the_image(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = _created(services)
    receiving, cancel = threading.Event(), threading.Event()

    def body() -> Iterator[bytes]:
        yield b"x" * 65536
        receiving.set()
        cancel.wait(30)
        raise Cancelled()

    failures: list[BaseException] = []

    def upload() -> None:
        try:
            services.images.upload(MEMBER, image.id, body())
        except BaseException as exc:
            failures.append(exc)

    uploading = threading.Thread(target=upload)
    uploading.start()
    assert receiving.wait(30)
    assert _status(services, image.id) == "saving"

    # The delete has read the image (saving) and checked it; now the upload's clean-up commits, then the delete's
    # compare-and-swap comes: the order the browser's Cancel produces on a loaded machine.
    real_delete = services.images.repo.delete
    calls: list[str] = []

    def delete_after_the_clean_up(image_id: str, revision: int | None = None, **kw: Any) -> Any:
        calls.append(_status(services, image_id))
        if len(calls) == 1:
            cancel.set()
            uploading.join(30)
            assert _status(services, image_id) == "queued"
        return real_delete(image_id, revision, **kw)

    monkeypatch.setattr(services.images.repo, "delete", delete_after_the_clean_up)
    services.images.delete(MEMBER, image.id)

    assert calls == ["saving", "queued"]  # refused once (the revision moved), then deleted as it is now
    assert [type(e) for e in failures] == [Cancelled]
    with pytest.raises(NotFound):
        services.images.get(MEMBER, image.id)
    assert not [p for p in (tmp_path / "images").rglob("*") if image.id in p.name]
    assert services.quotas.repo.usage("p1").image_size_total == 0  # no reservation left behind


def test_an_image_changed_at_every_attempt_is_a_conflict_and_stays(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = _created(services)
    real_delete = services.images.repo.delete
    attempts: list[int] = []

    def delete_after_a_rename(image_id: str, revision: int | None = None, **kw: Any) -> Any:
        attempts.append(1)
        current = services.images.repo.get(image_id)
        current.name = f"renamed-{len(attempts)}"
        services.images.repo.save(current)  # another request's PATCH, each time
        return real_delete(image_id, revision, **kw)

    monkeypatch.setattr(services.images.repo, "delete", delete_after_a_rename)
    with pytest.raises(Conflict):
        services.images.delete(MEMBER, image.id)
    assert len(attempts) == 3
    assert services.images.get(MEMBER, image.id).name == "renamed-3"
