"""glimpse.db.repositories.ImageRepository over a real, migrated SQLite file database."""

from __future__ import annotations

import random
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session, sessionmaker

from glimpse.db.migrate import is_current, upgrade
from glimpse.db.models import ImageRow, MemberRow
from glimpse.db.repositories import ImageRepository
from glimpse.db.session import make_engine, make_sessionmaker
from glimpse.domain.entities import Comparison, Image, ImageQuery, Location
from glimpse.domain.listing import parse_sort
from glimpse.errors import BadRequest, Conflict, NotFound

T0 = datetime(2024, 1, 1, 12, 0, 0)


@dataclass
class Db:
    engine: Engine
    sessions: sessionmaker[Session]
    repo: ImageRepository

    def set_times(self, image_id: str, created_at: datetime, updated_at: datetime | None = None) -> None:
        with self.sessions.begin() as s:
            s.execute(
                update(ImageRow)
                .where(ImageRow.id == image_id)
                .values(created_at=created_at, updated_at=updated_at or created_at)
            )

    def add_member(self, image_id: str, member: str, status: str) -> None:
        with self.sessions.begin() as s:
            s.add(MemberRow(image_id=image_id, member=member, status=status, created_at=T0, updated_at=T0))


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database file migrated to head; each test works on a copy (migrating takes longer than copying)."""
    path = tmp_path_factory.mktemp("template") / "glimpse.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # closing the last connection checkpoints the WAL into the file
    return path


def _open(template: Path, path: Path) -> Db:
    shutil.copyfile(template, path)
    engine = make_engine(f"sqlite:///{path}")
    sessions = make_sessionmaker(engine)
    return Db(engine, sessions, ImageRepository(sessions))


@pytest.fixture
def db(migrated: Path, tmp_path: Path) -> Iterator[Db]:
    d = _open(migrated, tmp_path / "glimpse.db")
    yield d
    d.engine.dispose()


@pytest.fixture
def repo(db: Db) -> ImageRepository:
    return db.repo


def new_id() -> str:
    return str(uuid.uuid4())


def add(repo: ImageRepository, **fields: Any) -> Image:
    fields.setdefault("owner", "p1")
    return repo.add(Image(id=fields.pop("id", None) or new_id(), **fields))


def admin_query(**kw: Any) -> ImageQuery:
    kw.setdefault("viewer", None)
    kw.setdefault("visibility", "all")
    kw.setdefault("limit", 1000)
    return ImageQuery(**kw)


def ids(images: list[Image]) -> set[str]:
    return {i.id for i in images}


# --- migration -----------------------------------------------------------------------------------


def test_database_is_migrated_to_head(db: Db) -> None:
    assert is_current(db.engine)


# --- add / get -----------------------------------------------------------------------------------


def test_add_and_get(repo: ImageRepository) -> None:
    image_id = new_id()
    added = repo.add(
        Image(
            id=image_id,
            owner="p1",
            name="cirros",
            visibility="private",
            container_format="bare",
            disk_format="qcow2",
            min_ram=64,
            min_disk=1,
            protected=True,
            tags=["a", "b", "a"],
            properties={"os_distro": "cirros", "hw_disk_bus": "scsi"},
        )
    )
    got = repo.get(image_id)
    assert got == added
    assert got.id == image_id
    assert (got.name, got.owner, got.visibility, got.status) == ("cirros", "p1", "private", "queued")
    assert (got.container_format, got.disk_format, got.min_ram, got.min_disk) == ("bare", "qcow2", 64, 1)
    assert got.protected is True
    assert got.os_hidden is False
    assert got.tags == ["a", "b"]  # deduplicated, in order
    assert got.properties == {"os_distro": "cirros", "hw_disk_bus": "scsi"}
    assert got.locations == []
    assert got.revision == 0
    assert got.size is None and got.checksum is None
    assert isinstance(got.created_at, datetime)
    assert got.created_at == got.updated_at
    assert not got.has_data


def test_get_missing_is_not_found(repo: ImageRepository) -> None:
    with pytest.raises(NotFound):
        repo.get(new_id())


def test_add_duplicate_id_conflicts(repo: ImageRepository) -> None:
    image = add(repo, name="first")
    with pytest.raises(Conflict):
        add(repo, id=image.id, name="second")
    assert repo.get(image.id).name == "first"


# --- save: compare-and-swap ----------------------------------------------------------------------


def test_save_writes_fields_and_bumps_revision(repo: ImageRepository) -> None:
    image = add(repo, name="a", tags=["x", "y"], properties={"keep": "1", "change": "1", "drop": "1"})
    image.name = "b"
    image.min_ram = 128
    image.visibility = "public"
    image.tags = ["y", "z", "z"]
    image.properties = {"keep": "1", "change": "2", "new": "3"}
    saved = repo.save(image)
    assert saved.revision == 1
    got = repo.get(image.id)
    assert got == saved
    assert (got.name, got.min_ram, got.visibility) == ("b", 128, "public")
    assert sorted(got.tags) == ["y", "z"]
    assert got.properties == {"change": "2", "keep": "1", "new": "3"}
    assert got.updated_at is not None and got.created_at is not None
    assert got.updated_at >= got.created_at


def test_save_with_stale_revision_conflicts(repo: ImageRepository) -> None:
    image = add(repo, name="orig")
    first, second = repo.get(image.id), repo.get(image.id)
    first.name = "first"
    repo.save(first)
    second.name = "second"
    second.properties = {"lost": "update"}
    with pytest.raises(Conflict):
        repo.save(second)
    got = repo.get(image.id)
    assert got.name == "first"
    assert got.properties == {}
    assert got.revision == 1


def test_save_after_reload_succeeds(repo: ImageRepository) -> None:
    image = add(repo)
    image.name = "one"
    repo.save(image)
    fresh = repo.get(image.id)
    fresh.name = "two"
    assert repo.save(fresh).revision == 2
    assert repo.get(image.id).name == "two"


def test_save_deleted_image_conflicts(repo: ImageRepository) -> None:
    image = add(repo)
    repo.delete(image.id)
    image.name = "zombie"
    with pytest.raises(Conflict):
        repo.save(image)


# --- transition / activate -----------------------------------------------------------------------


def test_transition_compare_and_swap(repo: ImageRepository) -> None:
    image = add(repo)
    repo.transition(image.id, "queued", "saving", upload_node="node-a")
    got = repo.get(image.id)
    assert got.status == "saving"
    assert got.revision == 1
    assert repo.ids_in_status_on("saving", "node-a") == [image.id]
    assert repo.ids_in_status_on("saving", "node-b") == []
    with pytest.raises(Conflict):
        repo.transition(image.id, "queued", "saving", upload_node="node-b")
    assert repo.get(image.id).status == "saving"
    assert repo.ids_in_status_on("saving", "node-b") == []


def test_transition_makes_stale_saves_conflict(repo: ImageRepository) -> None:
    image = add(repo)
    repo.transition(image.id, "queued", "saving")
    image.name = "stale"
    with pytest.raises(Conflict):
        repo.save(image)


def test_transition_of_missing_or_deleted_image_conflicts(repo: ImageRepository) -> None:
    with pytest.raises(Conflict):
        repo.transition(new_id(), "queued", "saving")
    image = add(repo)
    repo.delete(image.id)
    with pytest.raises(Conflict):
        repo.transition(image.id, "queued", "saving")


def test_activate(repo: ImageRepository) -> None:
    image = add(repo, owner="p9")
    repo.transition(image.id, "queued", "saving", upload_node="n")
    location = Location(url="file:///data/x", metadata={"store": "file"})
    repo.activate(image.id, "saving", location, size=42, checksum="c" * 32, os_hash_algo="sha512", os_hash_value="d")
    got = repo.get(image.id)
    assert got.status == "active"
    assert (got.size, got.checksum, got.os_hash_algo, got.os_hash_value) == (42, "c" * 32, "sha512", "d")
    assert got.locations == [location]
    assert got.has_data
    assert repo.ids_in_status_on("saving", "n") == []
    with pytest.raises(Conflict):
        repo.activate(image.id, "saving", location, size=1)
    assert len(repo.get(image.id).locations) == 1


def test_an_upload_that_lost_its_claim_cannot_publish(repo: ImageRepository) -> None:
    """An upload swept back to queued (it stalled) and begun again: only the new upload's claim publishes."""
    image = add(repo)
    stale = repo.begin_upload(image.id, "p1", "n1", None)
    repo.transition(image.id, "saving", "queued", upload_node=None, upload_claim=None)  # the sweep
    fresh = repo.begin_upload(image.id, "p1", "n2", None)
    assert not repo.upload_heartbeat(image.id, stale) and repo.upload_heartbeat(image.id, fresh)
    with pytest.raises(Conflict):
        repo.transition(image.id, "saving", "queued", if_claim=stale)
    with pytest.raises(Conflict):
        repo.activate(image.id, "saving", Location(url="file:///d/stale"), if_claim=stale, size=1)
    repo.activate(image.id, "saving", Location(url="file:///d/fresh"), if_claim=fresh, size=2)
    assert repo.get(image.id).locations == [Location(url="file:///d/fresh")]


# --- delete ----------------------------------------------------------------------------------------


def test_delete(db: Db, repo: ImageRepository) -> None:
    image = add(repo, tags=["t"], properties={"k": "v"}, visibility="shared")
    repo.transition(image.id, "queued", "saving")
    repo.activate(image.id, "saving", Location(url="file:///d/1", metadata={"store": "file"}), size=1)
    db.add_member(image.id, "p2", "accepted")
    assert repo.delete(image.id) == [Location(url="file:///d/1", metadata={"store": "file"})]
    with pytest.raises(NotFound):
        repo.get(image.id)
    with pytest.raises(NotFound):
        repo.delete(image.id)
    assert repo.members(image.id) == []
    assert repo.member_status(image.id, "p2") is None
    assert image.id not in ids(repo.list(admin_query()))


def test_deleted_id_cannot_be_reused(repo: ImageRepository) -> None:
    image = add(repo)
    repo.delete(image.id)
    with pytest.raises(Conflict):
        add(repo, id=image.id)
    with pytest.raises(NotFound):
        repo.get(image.id)


def test_delete_missing_is_not_found(repo: ImageRepository) -> None:
    with pytest.raises(NotFound):
        repo.delete(new_id())


# --- members ---------------------------------------------------------------------------------------


def test_members_and_member_status(db: Db, repo: ImageRepository) -> None:
    image = add(repo, visibility="shared")
    db.add_member(image.id, "p2", "pending")
    db.add_member(image.id, "p3", "accepted")
    assert [(m.member_id, m.status) for m in repo.members(image.id)] == [("p2", "pending"), ("p3", "accepted")]
    assert repo.member_status(image.id, "p2") == "pending"
    assert repo.member_status(image.id, "p3") == "accepted"
    assert repo.member_status(image.id, "p4") is None


# --- list: filters -----------------------------------------------------------------------------------


@pytest.fixture
def catalog(db: Db, repo: ImageRepository) -> dict[str, Image]:
    """A handful of public images with varied attributes, created a minute apart."""
    specs: dict[str, dict[str, Any]] = {
        "a": {"name": "alpha", "status": "active", "container_format": "bare", "disk_format": "qcow2",
              "tags": ["x", "y"], "properties": {"os_distro": "ubuntu"}, "size": 10, "protected": True},
        "b": {"name": "beta", "status": "queued", "container_format": "ovf", "disk_format": "raw",
              "tags": ["x"], "properties": {"os_distro": "fedora"}, "size": 100, "min_ram": 512},
        "c": {"name": "gamma", "status": "active", "container_format": "bare", "disk_format": "raw",
              "tags": ["y"], "properties": {"os_distro": "ubuntu", "arch": "arm"}, "size": None},
        "d": {"name": "a,b", "status": "deactivated", "container_format": "bare", "disk_format": "iso",
              "size": 1000, "owner": "p2"},
        "h": {"name": "hidden", "status": "active", "os_hidden": True, "size": 50},
    }  # fmt: skip
    images = {}
    for i, (key, spec) in enumerate(specs.items()):
        image = add(repo, visibility="public", **spec)
        db.set_times(image.id, T0 + timedelta(minutes=i, microseconds=250_000), T0 + timedelta(hours=1, minutes=-i))
        images[key] = repo.get(image.id)
    return images


def listed(repo: ImageRepository, **kw: Any) -> set[str]:
    return ids(repo.list(admin_query(**kw)))


def keys_of(catalog: dict[str, Image], found: set[str]) -> set[str]:
    return {k for k, image in catalog.items() if image.id in found}


def test_list_hides_os_hidden_by_default(repo: ImageRepository, catalog: dict[str, Image]) -> None:
    assert keys_of(catalog, listed(repo)) == {"a", "b", "c", "d"}
    assert keys_of(catalog, listed(repo, os_hidden=True)) == {"h"}
    assert keys_of(catalog, listed(repo, os_hidden=None)) == {"a", "b", "c", "d", "h"}


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        ({"name": Comparison("eq", "alpha")}, {"a"}),
        ({"name": Comparison("in", ["alpha", "gamma", "nope"])}, {"a", "c"}),
        ({"name": Comparison("in", ["a,b"])}, {"d"}),
        ({"status": Comparison("eq", "active")}, {"a", "c"}),
        ({"status": Comparison("in", ["queued", "deactivated"])}, {"b", "d"}),
        ({"container_format": Comparison("eq", "bare")}, {"a", "c", "d"}),
        ({"disk_format": Comparison("in", ["raw", "iso"])}, {"b", "c", "d"}),
        ({"container_format": Comparison("eq", "bare"), "disk_format": Comparison("eq", "raw")}, {"c"}),
        ({"owner": Comparison("eq", "p2")}, {"d"}),
        ({"protected": Comparison("eq", True)}, {"a"}),
        ({"protected": Comparison("eq", False)}, {"b", "c", "d"}),
        ({"min_ram": Comparison("eq", 512)}, {"b"}),
    ],
)
def test_list_column_filters(
    repo: ImageRepository, catalog: dict[str, Image], columns: dict[str, Comparison], expected: set[str]
) -> None:
    assert keys_of(catalog, listed(repo, columns=columns)) == expected


def test_list_id_in_filter(repo: ImageRepository, catalog: dict[str, Image]) -> None:
    wanted = [catalog["a"].id, catalog["d"].id, new_id()]
    assert keys_of(catalog, listed(repo, columns={"id": Comparison("in", wanted)})) == {"a", "d"}


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ({"os_distro": "ubuntu"}, {"a", "c"}),
        ({"os_distro": "ubuntu", "arch": "arm"}, {"c"}),
        ({"os_distro": "debian"}, set()),
        ({"arch": "x86"}, set()),
    ],
)
def test_list_property_filters(
    repo: ImageRepository, catalog: dict[str, Image], properties: dict[str, str], expected: set[str]
) -> None:
    assert keys_of(catalog, listed(repo, properties=properties)) == expected


@pytest.mark.parametrize(
    ("tags", "expected"), [(["x"], {"a", "b"}), (["y"], {"a", "c"}), (["x", "y"], {"a"}), (["z"], set())]
)
def test_list_tag_filters_all_must_match(
    repo: ImageRepository, catalog: dict[str, Image], tags: list[str], expected: set[str]
) -> None:
    assert keys_of(catalog, listed(repo, tags=tags)) == expected


@pytest.mark.parametrize(
    ("size_min", "size_max", "expected"),
    [(None, None, {"a", "b", "c", "d"}), (100, None, {"b", "d"}), (None, 100, {"a", "b"}), (11, 999, {"b"})],
)
def test_list_size_range(
    repo: ImageRepository, catalog: dict[str, Image], size_min: int | None, size_max: int | None, expected: set[str]
) -> None:
    assert keys_of(catalog, listed(repo, size_min=size_min, size_max=size_max)) == expected


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        # the catalog's created_at values are T0+0m, +1m, +2m, +3m (each .25 s past the second)
        ("eq", T0 + timedelta(minutes=1), {"b"}),
        ("neq", T0 + timedelta(minutes=1), {"a", "c", "d"}),
        ("gt", T0 + timedelta(minutes=1), {"c", "d"}),
        ("gte", T0 + timedelta(minutes=1), {"b", "c", "d"}),
        ("lt", T0 + timedelta(minutes=2), {"a", "b"}),
        ("lte", T0 + timedelta(minutes=2), {"a", "b", "c"}),
    ],
)
def test_list_created_at_filters(
    repo: ImageRepository, catalog: dict[str, Image], op: str, value: datetime, expected: set[str]
) -> None:
    assert keys_of(catalog, listed(repo, columns={"created_at": Comparison(op, value)})) == expected


def test_list_excludes_deleted(repo: ImageRepository, catalog: dict[str, Image]) -> None:
    repo.delete(catalog["b"].id)  # "a" is protected: the repository refuses to delete it
    assert keys_of(catalog, listed(repo)) == {"a", "c", "d"}


def test_list_limit(repo: ImageRepository, catalog: dict[str, Image]) -> None:
    page = repo.list(admin_query(limit=2))
    assert [i.id for i in page] == [catalog["d"].id, catalog["c"].id]  # newest first by default


def test_list_marker_must_exist(repo: ImageRepository, catalog: dict[str, Image]) -> None:
    with pytest.raises(BadRequest):
        repo.list(admin_query(marker=new_id()))
    repo.delete(catalog["b"].id)
    with pytest.raises(BadRequest):
        repo.list(admin_query(marker=catalog["b"].id))


# --- list: keyset pagination ----------------------------------------------------------------------------

NAMES = ["alpha", "beta", "gamma", None, "beta", "Delta", "alpha"]
SIZES = [None, 0, 10, 10, 500, None, 7]
STATUSES = ["active", "queued", "deactivated", "saving", "active"]
CONTAINERS = ["bare", None, "ovf", "bare", "docker"]
DISKS = ["qcow2", "raw", None, "raw", "iso", "vmdk"]


@pytest.fixture(scope="module")
def thirty(migrated: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ImageRepository, list[Image]]]:
    """30 public images with many ties (names, sizes, formats, and created_at shared by threes)."""
    d = _open(migrated, tmp_path_factory.mktemp("pagination") / "glimpse.db")
    rng = random.Random(1234)
    created = []
    for i in range(30):
        image = add(
            d.repo,
            owner=f"p{i % 4}",
            visibility="public",
            name=NAMES[i % len(NAMES)],
            size=SIZES[i % len(SIZES)],
            status=STATUSES[i % len(STATUSES)],
            container_format=CONTAINERS[i % len(CONTAINERS)],
            disk_format=DISKS[i % len(DISKS)],
        )
        d.set_times(image.id, T0 + timedelta(seconds=i // 3), T0 + timedelta(seconds=rng.randrange(10)))
        created.append(image.id)
    images = [d.repo.get(i) for i in created]
    yield d.repo, images
    d.engine.dispose()


NULL_AS = {"name": "", "size": -1, "container_format": "", "disk_format": ""}


def expected_order(images: list[Image], sort: list[tuple[str, str]]) -> list[str]:
    ordered = list(images)
    for key, direction in reversed(sort):
        ordered.sort(
            key=lambda image, key=key: NULL_AS[key] if getattr(image, key) is None else getattr(image, key),
            reverse=direction == "desc",
        )
    return [i.id for i in ordered]


SORTS = [
    {},
    {"sort": ["name:asc"]},
    {"sort": ["name:desc"]},
    {"sort": ["size:asc"]},
    {"sort": ["size:desc,name:asc"]},
    {"sort": ["status:asc,created_at:desc"]},
    {"sort": ["container_format:asc,disk_format:desc"]},
    {"sort": ["disk_format"]},
    {"sort": ["updated_at:asc"]},
    {"sort": ["created_at:asc"]},
    {"sort": ["id:asc"]},
    {"sort_key": ["name", "size"], "sort_dir": ["asc", "desc"]},
    {"sort_key": ["container_format"], "sort_dir": ["asc"]},
]


@pytest.mark.parametrize("params", SORTS, ids=lambda p: ";".join(f"{k}={v}" for k, v in p.items()) or "default")
@pytest.mark.parametrize("page_size", [1, 7, 30])
def test_keyset_pagination_returns_each_image_once_in_order(
    thirty: tuple[ImageRepository, list[Image]], params: dict[str, list[str]], page_size: int
) -> None:
    repo, images = thirty
    sort = parse_sort(params)
    everything = [i.id for i in repo.list(admin_query(sort=sort, limit=100))]
    assert everything == expected_order(images, sort)

    seen: list[str] = []
    marker = None
    for _ in range(40):
        page = repo.list(admin_query(sort=sort, limit=page_size, marker=marker))
        assert len(page) <= page_size
        seen.extend(i.id for i in page)
        if len(page) < page_size:
            break
        marker = page[-1].id
    assert seen == everything
    assert len(seen) == len(set(seen)) == 30


def test_marker_at_the_end_gives_an_empty_page(thirty: tuple[ImageRepository, list[Image]]) -> None:
    repo, _ = thirty
    sort = parse_sort({"sort": ["name:asc"]})
    last = repo.list(admin_query(sort=sort, limit=100))[-1]
    assert repo.list(admin_query(sort=sort, limit=10, marker=last.id)) == []


# --- list: visibility --------------------------------------------------------------------------------------


@pytest.fixture
def world(db: Db, repo: ImageRepository) -> dict[str, str]:
    """Project A owns images of every visibility; B is a member of some shared ones; C is a stranger."""
    names = {
        "privA": ("A", "private"),
        "pubA": ("A", "public"),
        "comA": ("A", "community"),
        "shrA_acc": ("A", "shared"),
        "shrA_pen": ("A", "shared"),
        "shrA_rej": ("A", "shared"),
        "shrA_none": ("A", "shared"),
        "privB": ("B", "private"),
        "comB": ("B", "community"),
        "pubAdm": ("ADM", "public"),
        "comAdm": ("ADM", "community"),
    }
    made = {key: add(repo, owner=owner, visibility=vis, name=key).id for key, (owner, vis) in names.items()}
    db.add_member(made["shrA_acc"], "B", "accepted")
    db.add_member(made["shrA_pen"], "B", "pending")
    db.add_member(made["shrA_rej"], "B", "rejected")
    db.add_member(made["shrA_acc"], "C", "pending")
    db.add_member(made["privA"], "B", "accepted")  # membership of a non-shared image grants nothing
    return made


def visible(repo: ImageRepository, world: dict[str, str], viewer: str | None, **kw: Any) -> set[str]:
    kw.setdefault("admin_project", "ADM" if viewer is None else viewer)
    found = ids(repo.list(ImageQuery(viewer=viewer, limit=100, **kw)))
    return {k for k, v in world.items() if v in found}


PUBLIC = {"pubA", "pubAdm"}
ADMIN_DEFAULT = {"privA", "pubA", "shrA_acc", "shrA_pen", "shrA_rej", "shrA_none", "privB", "pubAdm", "comAdm"}


VISIBILITY_CASES = [
    # owner: everything it owns, whatever the visibility, plus public
    ("A", {}, {"privA", "pubA", "comA", "shrA_acc", "shrA_pen", "shrA_rej", "shrA_none"} | PUBLIC),
    # member: public, own, and shared images it accepted
    ("B", {}, PUBLIC | {"privB", "comB", "shrA_acc"}),
    ("B", {"member_status": "pending"}, PUBLIC | {"privB", "comB", "shrA_pen"}),
    ("B", {"member_status": "rejected"}, PUBLIC | {"privB", "comB", "shrA_rej"}),
    ("B", {"member_status": "all"}, PUBLIC | {"privB", "comB", "shrA_acc", "shrA_pen", "shrA_rej"}),
    ("B", {"visibility": "shared"}, {"shrA_acc"}),
    ("B", {"visibility": "shared", "member_status": "all"}, {"shrA_acc", "shrA_pen", "shrA_rej"}),
    ("B", {"visibility": "private"}, {"privB"}),
    ("B", {"visibility": "public"}, PUBLIC),
    ("B", {"visibility": "community"}, {"comA", "comB", "comAdm"}),
    ("B", {"visibility": "all"}, PUBLIC | {"privB", "comB", "shrA_acc", "comA", "comAdm"}),
    ("A", {"visibility": "shared"}, {"shrA_acc", "shrA_pen", "shrA_rej", "shrA_none"}),
    ("A", {"visibility": "private"}, {"privA"}),
    # stranger: public only (its pending membership does not count by default)
    ("C", {}, PUBLIC),
    ("C", {"member_status": "pending"}, PUBLIC | {"shrA_acc"}),
    ("", {}, PUBLIC),
    # admin: everything except other projects' community images, unless asked
    (None, {}, ADMIN_DEFAULT),
    (None, {"visibility": "all"}, ADMIN_DEFAULT | {"comA", "comB"}),
    (None, {"visibility": "community"}, {"comA", "comB", "comAdm"}),
    (None, {"visibility": "private"}, {"privA", "privB"}),
    (None, {"visibility": "shared"}, {"shrA_acc", "shrA_pen", "shrA_rej", "shrA_none"}),
    (None, {"visibility": "public"}, PUBLIC),
]


@pytest.mark.parametrize(("viewer", "kw", "expected"), VISIBILITY_CASES)
def test_visibility(
    repo: ImageRepository, world: dict[str, str], viewer: str | None, kw: dict[str, Any], expected: set[str]
) -> None:
    assert visible(repo, world, viewer, **kw) == expected


def test_list_statements_kept_for_repeated_queries_answer_each_query(
    repo: ImageRepository, world: dict[str, str]
) -> None:
    """One repository answers every query in turn, twice: a statement kept for one query never serves another."""
    for _ in range(2):
        for viewer, kw, expected in VISIBILITY_CASES:
            assert visible(repo, world, viewer, **kw) == expected, (viewer, kw)
    in_filter = {"columns": {"name": Comparison("in", ["x"])}}  # a list: not a key, built every time
    assert visible(repo, world, None, **in_filter) == set()


def test_marker_pagination_respects_visibility(repo: ImageRepository, world: dict[str, str]) -> None:
    seen: list[str] = []
    marker = None
    while True:
        page = repo.list(ImageQuery(viewer="B", limit=2, marker=marker))
        seen.extend(i.id for i in page)
        if len(page) < 2:
            break
        marker = page[-1].id
    assert {k for k, v in world.items() if v in seen} == PUBLIC | {"privB", "comB", "shrA_acc"}
    assert len(seen) == len(set(seen))


def test_admin_without_a_project_sees_no_community_images_by_default(
    repo: ImageRepository, world: dict[str, str]
) -> None:
    assert visible(repo, world, None, admin_project=None) == ADMIN_DEFAULT - {"comAdm"}
    assert visible(repo, world, None, admin_project=None, visibility="community") == {"comA", "comB", "comAdm"}
