"""Read an OpenStack Glance database (MariaDB/MySQL, PostgreSQL or SQLite) as plain records.

Only reads: SQLAlchemy Core on tables reflected from the live schema, after checking that it is one of
the schemas of recent Glance releases (Rocky and later: os_hash_algo/os_hash_value, os_hidden). Soft-deleted
child rows (deleted = 1) are what Glance no longer shows and are skipped; soft-deleted images are kept,
flagged, because their ids must stay reserved. The metadefs tables are not read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, MetaData, Select, Table, create_engine, func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from glimpse.errors import ConfigError, GlimpseError
from glimpse.extras import missing_message
from glimpse.logsafe import redact_url

# The columns read from each table; a database without one of them is not a Glance schema Glimpse knows.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "images": (
        "id", "name", "size", "virtual_size", "status", "visibility", "checksum", "os_hash_algo", "os_hash_value",
        "min_disk", "min_ram", "owner", "protected", "os_hidden", "disk_format", "container_format",
        "created_at", "updated_at", "deleted_at", "deleted",
    ),
    "image_properties": ("image_id", "name", "value", "deleted"),
    "image_tags": ("image_id", "value", "deleted"),
    "image_members": ("image_id", "member", "status", "created_at", "updated_at", "deleted"),
    "image_locations": ("id", "image_id", "value", "meta_data", "status", "deleted"),
}  # fmt: skip

# Glance's Alembic revisions from Rocky (which added os_hidden and os_hash_*) to the newest (2024_1_contract01,
# still the head in Glance 33.0.0): none of them changes a column read here.
KNOWN_REVISIONS = frozenset(
    {
        "rocky_expand01", "rocky_expand02", "rocky_contract01", "rocky_contract02",
        "train_expand01", "train_contract01", "ussuri_expand01", "ussuri_contract01",
        "wallaby_expand01", "wallaby_contract01", "xena_expand01", "xena_contract01",
        "yoga_expand01", "yoga_contract01", "zed_expand01", "zed_contract01",
        "2023_1_expand01", "2023_1_contract01", "2024_1_expand01", "2024_1_contract01",
    }
)  # fmt: skip

PAGE = 200


@dataclass(frozen=True)
class GlanceMember:
    member: str
    status: str
    created_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True)
class GlanceLocation:
    url: str
    metadata: dict[str, Any]


@dataclass
class GlanceImage:
    """One row of Glance's images table with its live children."""

    id: str
    columns: dict[str, Any]
    deleted: bool
    deleted_at: datetime | None
    properties: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    members: list[GlanceMember] = field(default_factory=list)
    locations: list[GlanceLocation] = field(default_factory=list)


class UnknownSchema(ConfigError):
    """The database is not a Glance database of a release Glimpse knows how to read."""


class GlanceDatabase:
    def __init__(self, url: str) -> None:
        self._engine = _engine(url)
        # The URL to show: the password hidden, the rest exactly as given (a sqlite path keeps its slashes).
        self.url = self._engine.url.render_as_string(hide_password=True)
        self._tables: dict[str, Table] = {}
        self.revision: str | None = None

    def check_schema(self) -> str:
        """Reflect the tables and return the schema's Alembic revision; UnknownSchema when it is none known."""
        where = self.url
        try:
            names = set(inspect(self._engine).get_table_names())
        except SQLAlchemyError as exc:
            raise ConfigError(f"Cannot open the Glance database {where}: {getattr(exc, 'orig', exc)}") from None
        missing_tables = [t for t in REQUIRED_COLUMNS if t not in names]
        if missing_tables:
            raise UnknownSchema(
                f"{where} is not a Glance database Glimpse knows: no table {', '.join(missing_tables)}."
            )
        revision = self._revision(names)
        if revision not in KNOWN_REVISIONS:
            raise UnknownSchema(
                f"{where} has Glance schema revision {revision or 'none'}, which Glimpse does not know "
                "(known: Glance Rocky and later, up to 2024_1_contract01). "
                "Upgrade Glance with 'glance-manage db sync', or use a newer Glimpse."
            )
        meta = MetaData()
        for name in REQUIRED_COLUMNS:
            table = Table(name, meta, autoload_with=self._engine)
            absent = [c for c in REQUIRED_COLUMNS[name] if c not in table.c]
            if absent:
                raise UnknownSchema(
                    f"{where}: table {name} has no column {', '.join(absent)}: not a known Glance schema."
                )
            self._tables[name] = table
        self.revision = revision
        return revision

    def _revision(self, names: set[str]) -> str | None:
        if "alembic_version" not in names:
            return None
        with self._engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
        return str(rows[0]) if len(rows) == 1 else None

    def count(self) -> int:
        images = self._table("images")
        try:
            with self._engine.connect() as conn:
                return int(conn.scalar(select(func.count()).select_from(images)) or 0)
        except SQLAlchemyError as exc:
            raise GlimpseError(f"Reading the Glance database {self.url} failed: {getattr(exc, 'orig', exc)}") from None

    def images(self) -> Iterator[GlanceImage]:
        """Every image, deleted ones included, in id order, a page at a time."""
        after: str | None = None
        while True:
            page = self._page(after)
            if not page:
                return
            yield from page
            after = page[-1].id

    def _page(self, after: str | None) -> list[GlanceImage]:
        images = self._table("images")
        stmt = select(*(images.c[c] for c in REQUIRED_COLUMNS["images"])).order_by(images.c.id).limit(PAGE)
        if after is not None:
            stmt = stmt.where(images.c.id > after)
        try:
            with self._engine.connect() as conn:
                page = [_image(row._mapping) for row in conn.execute(stmt)]
                if page:
                    self._children(conn, {i.id: i for i in page})
        except SQLAlchemyError as exc:
            raise GlimpseError(f"Reading the Glance database {self.url} failed: {getattr(exc, 'orig', exc)}") from None
        return page

    def close(self) -> None:
        self._engine.dispose()

    def _table(self, name: str) -> Table:
        if not self._tables:
            self.check_schema()
        return self._tables[name]

    def _children(self, conn: Any, page: dict[str, GlanceImage]) -> None:
        ids = list(page)
        props, tags, members, locs = (self._table(n) for n in ("image_properties", "image_tags", "image_members",
                                                              "image_locations"))  # fmt: skip
        for row in conn.execute(_live(props, ids).order_by(props.c.name)):
            page[row.image_id].properties[row.name] = row.value or ""
        for row in conn.execute(_live(tags, ids).order_by(tags.c.value)):
            if row.value not in page[row.image_id].tags:
                page[row.image_id].tags.append(row.value)
        # Glance's unique key on members includes deleted_at, so two live rows for one member can exist (NULLs
        # differ); the one updated last is the member's status, as Glimpse keeps one row per member.
        latest: dict[tuple[str, str], GlanceMember] = {}
        for row in conn.execute(_live(members, ids).order_by(members.c.updated_at, members.c.id)):
            latest[row.image_id, row.member] = GlanceMember(row.member, row.status, row.created_at, row.updated_at)
        for (image_id, _), member in sorted(latest.items()):
            page[image_id].members.append(member)
        # Only the locations Glance serves: live rows in status active, in the order Glance lists them.
        for row in conn.execute(_live(locs, ids).where(locs.c.status == "active").order_by(locs.c.id)):
            page[row.image_id].locations.append(GlanceLocation(row.value, _metadata(row.meta_data)))


def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"--from {redact_url(url)} is not a database URL (e.g. mysql+pymysql://u:p@host/glance)."
        ) from None
    try:
        return create_engine(parsed, pool_pre_ping=True)
    except ImportError as exc:
        module = (exc.name or "").split(".")[0]
        raise ConfigError(missing_message(module, f"--from {parsed.drivername}://...")) from exc
    except SQLAlchemyError as exc:
        raise ConfigError(f"--from {redact_url(url)}: {exc}") from None


def _live(table: Table, ids: Sequence[str]) -> Select[*tuple[Any, ...]]:
    return select(table).where(table.c.image_id.in_(ids), table.c.deleted == False)  # noqa: E712


def _image(row: Any) -> GlanceImage:
    columns = {c: row[c] for c in REQUIRED_COLUMNS["images"] if c not in ("id", "deleted", "deleted_at")}
    return GlanceImage(id=row["id"], columns=columns, deleted=bool(row["deleted"]), deleted_at=row["deleted_at"])


def _metadata(raw: str | None) -> dict[str, Any]:
    """Glance keeps a location's metadata as JSON text (JSONEncodedDict); anything else reads as empty."""
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
