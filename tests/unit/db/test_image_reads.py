"""An image read alone (one statement: the image joined to its children) and the same image read in a page (the
image rows, then their children in a second statement) are the same image, on every database."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, insert

from glimpse.db.models import LocationRow
from glimpse.db.repositories import IMAGE_FIELDS, ImageRepository
from glimpse.db.session import make_sessionmaker
from glimpse.domain.entities import Image, Location
from glimpse.errors import NotFound


@pytest.fixture(scope="module")
def engine(every_engine: Engine) -> Engine:
    return every_engine


@pytest.fixture
def repo(engine: Engine) -> ImageRepository:
    return ImageRepository(make_sessionmaker(engine))


def _image(repo: ImageRepository, **fields: object) -> Image:
    return repo.add(Image(id=str(uuid.uuid4()), owner="p1", status="active", **fields))  # type: ignore[arg-type]


def _locate(engine: Engine, image_id: str, url: str, status: str = "active", meta: str = "{}") -> None:
    row = {"image_id": image_id, "url": url, "meta": meta, "status": status, "created_at": datetime.now(UTC)}
    with engine.begin() as conn:
        conn.execute(insert(LocationRow).values(**row))


def _in_a_page(repo: ImageRepository, image_id: str) -> Image:
    """The image as a page of images reads it (the pages in the database's own order of ids)."""
    after = None
    while page := repo.with_data(after=after, limit=50):
        found = [i for i in page if i.id == image_id]
        if found:
            return found[0]
        after = page[-1].id
    raise AssertionError(f"{image_id} is in no page")


def test_an_image_without_children_is_read_whole(repo: ImageRepository) -> None:
    image = _image(repo, name="bare")
    got = repo.get(image.id)
    assert got == image == _in_a_page(repo, image.id)
    assert (got.properties, got.tags, got.locations) == ({}, [], [])


def test_children_come_in_their_order_and_only_active_locations(repo: ImageRepository, engine: Engine) -> None:
    props = {"os_distro": "ubuntu", "hw_disk_bus": "scsi", "a_first": "1", "z": "x" * 300}
    image = _image(repo, name="full", properties=props, tags=["zeta", "alpha", "mid"])
    _locate(engine, image.id, "file:///b", meta='{"store": "fast"}')
    _locate(engine, image.id, "file:///gone", status="pending_delete")
    _locate(engine, image.id, "file:///a")
    got = repo.get(image.id)
    assert list(got.properties) == sorted(props) and got.properties == props
    assert got.tags == ["zeta", "alpha", "mid"]  # as added
    assert got.locations == [Location("file:///b", {"store": "fast"}), Location("file:///a", {})]
    assert got == _in_a_page(repo, image.id)
    assert (got.created_at, got.revision, got.name) == (image.created_at, image.revision, "full")


def test_another_images_children_are_not_mixed_in(repo: ImageRepository, engine: Engine) -> None:
    one = _image(repo, properties={"k": "one"}, tags=["one"])
    other = _image(repo, properties={"k": "other", "only": "other"}, tags=["other"])
    _locate(engine, other.id, "file:///other")
    got = repo.get(one.id)
    assert (got.properties, got.tags, got.locations) == ({"k": "one"}, ["one"], [])


def test_a_deleted_image_is_not_found_though_its_children_remain(repo: ImageRepository) -> None:
    image = _image(repo, properties={"k": "v"}, tags=["t"])
    repo.delete(image.id)
    with pytest.raises(NotFound):
        repo.get(image.id)


def test_a_row_is_images_fields_in_its_order() -> None:
    """Rows become Images by position: a column out of Image's order would put one field's value in another."""
    names = tuple(f.name for f in dataclasses.fields(Image))
    assert IMAGE_FIELDS[:-1] == names[: len(IMAGE_FIELDS) - 1] and IMAGE_FIELDS[-1] == "revision"
    assert set(names) - set(IMAGE_FIELDS) == {"tags", "properties", "locations"}
