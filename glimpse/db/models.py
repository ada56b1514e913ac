"""SQLAlchemy 2 models. Alembic migrations in db/migrations/ create exactly these tables."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator, TypeEngine

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class _Timestamp(TypeDecorator[datetime]):
    """Microsecond timestamps everywhere (MySQL's DATETIME drops them by default): sorting by time needs them.
    MySQL's type is looked up only by a MySQL engine: importing SQLAlchemy's MySQL dialect costs each worker 1 MiB."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[datetime]:
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects.mysql import DATETIME

            return dialect.type_descriptor(DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())


Timestamp = _Timestamp()


def utcnow() -> datetime:
    """Naive UTC, as every timestamp column stores it."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def table_of(row: type[Base]) -> Table:
    """The Core table a model is declared on (DeclarativeBase types __table__ as any FROM clause)."""
    table = row.__table__
    assert isinstance(table, Table)
    return table


class ImageRow(Base):
    __tablename__ = "images"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(30))
    visibility: Mapped[str] = mapped_column(String(20))
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    os_hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    owner: Mapped[str | None] = mapped_column(String(255))
    checksum: Mapped[str | None] = mapped_column(String(32))
    os_hash_algo: Mapped[str | None] = mapped_column(String(64))
    os_hash_value: Mapped[str | None] = mapped_column(String(128))
    size: Mapped[int | None] = mapped_column(BigInteger)
    virtual_size: Mapped[int | None] = mapped_column(BigInteger)
    container_format: Mapped[str | None] = mapped_column(String(32))
    disk_format: Mapped[str | None] = mapped_column(String(32))
    min_disk: Mapped[int] = mapped_column(Integer, default=0)
    min_ram: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)
    deleted_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # Deleted images stay as tombstones so an id is never reused.
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    # Which server process is writing this image's data (status saving), so a restart can recover it;
    # for an image with data waiting for the scrubber, the scrubber process holding it.
    upload_node: Mapped[str | None] = mapped_column(String(255))
    # Refreshed while data arrives; an upload whose heartbeat stopped belongs to a dead process.
    upload_heartbeat_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # The claim token of the upload (or staging) allowed to publish data, or of the scrubber allowed to
    # delete it (delayed delete); a new upload or scrub gets a new one.
    upload_claim: Mapped[str | None] = mapped_column(String(36))
    # The recycle bin: a binned image (deleted, pending_delete) can be restored until then, and is restored to
    # the status it had (status_before_delete).
    bin_expires_at: Mapped[datetime | None] = mapped_column(Timestamp)
    status_before_delete: Mapped[str | None] = mapped_column(String(30))

    # Loaded when first used (reads of many images go through Core, or ask for selectinload): an ORM load of one
    # row for an update (PATCH, delete) used to load all three collections at once, and SQLAlchemy's selectin
    # loader leaves reference cycles behind on every load, paused over by the garbage collector.
    properties: Mapped[list[PropertyRow]] = relationship(
        cascade="all, delete-orphan", lazy="select", order_by="PropertyRow.name"
    )
    tags: Mapped[list[TagRow]] = relationship(cascade="all, delete-orphan", lazy="select", order_by="TagRow.id")
    # The copies the image serves from; copies waiting for the scrubber (pending_delete, deleting) and
    # scrubbed ones (deleted) stay as rows of their own status, outside this collection.
    locations: Mapped[list[LocationRow]] = relationship(
        primaryjoin="and_(ImageRow.id == LocationRow.image_id, LocationRow.status == 'active')",
        cascade="all, delete-orphan",
        lazy="select",
        order_by="LocationRow.id",
    )

    __table_args__ = (
        # Keyset pagination on the default sort (created_at desc, id desc) with the usual filters.
        Index("ix_images_deleted_created_at_id", "deleted", "created_at", "id"),
        Index("ix_images_owner_created_at", "owner", "created_at"),
        Index("ix_images_visibility_created_at", "visibility", "created_at"),
        Index("ix_images_status", "status"),
        Index("ix_images_name", "name"),
        Index("ix_images_updated_at", "updated_at"),
        Index("ix_images_checksum", "checksum"),
        Index("ix_images_os_hash_value", "os_hash_value"),
        Index("ix_images_upload_node", "upload_node"),
        Index("ix_images_status_upload_heartbeat_at", "status", "upload_heartbeat_at"),
        Index("ix_images_owner_bin_expires_at", "owner", "bin_expires_at"),
    )


# Built once: SQLAlchemy's arithmetic on a column leaves a small reference cycle each time it is built.
NEXT_REVISION = ImageRow.revision + 1


class PropertyRow(Base):
    __tablename__ = "image_properties"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(Text)

    # Its indexes differ by database (migration 0001): a prefix of the value on MySQL; on PostgreSQL, whose b-tree
    # entries stop at ~2.7 KB, one on the name and a hash of the value. They are not declared here, as a MySQL or
    # PostgreSQL option in a model loads that dialect into every worker (3 MiB), whatever its database.
    __table_args__ = (UniqueConstraint("image_id", "name", name="uq_image_properties_image_id_name"),)


class TagRow(Base):
    __tablename__ = "image_tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    value: Mapped[str] = mapped_column(String(255))

    __table_args__ = (
        UniqueConstraint("image_id", "value", name="uq_image_tags_image_id_value"),
        Index("ix_image_tags_value", "value"),
    )


# The statuses of a copy whose data still waits to be removed from its store.
WAITING = ("pending_delete", "deleting")


class LocationRow(Base):
    __tablename__ = "image_locations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    meta: Mapped[str] = mapped_column(Text, default="{}")
    # active; pending_delete (delayed delete: data kept for the scrubber); deleting (a scrubber is removing
    # the data: it can no longer be restored); deleted (data removed, row kept until `glimpse db purge`).
    status: Mapped[str] = mapped_column(String(30), default="active")
    created_at: Mapped[datetime] = mapped_column(Timestamp)

    # The scrubber's search for live images with a copy waiting: few such rows among all locations.
    __table_args__ = (Index("ix_image_locations_status_image_id", "status", "image_id"),)


class MemberRow(Base):
    __tablename__ = "image_members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    member: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)

    __table_args__ = (
        UniqueConstraint("image_id", "member", name="uq_image_members_image_id_member"),
        Index("ix_image_members_member_status", "member", "status"),
    )


class QuotaRow(Base):
    """Per-project limits an administrator set (None: no limit of that kind). Its row is also the
    lock that serialises one project's reservations across every API process."""

    __tablename__ = "project_quotas"

    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    image_count_total: Mapped[int | None] = mapped_column(BigInteger)
    image_size_total: Mapped[int | None] = mapped_column(BigInteger)  # bytes
    image_stage_total: Mapped[int | None] = mapped_column(BigInteger)  # bytes
    image_count_uploading: Mapped[int | None] = mapped_column(BigInteger)
    lock_counter: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)


class ReservationRow(Base):
    """Bytes an upload in progress holds against its project's quota until it ends."""

    __tablename__ = "quota_reservations"

    image_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(255), index=True)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class RetentionRow(Base):
    """A project's recycle-bin retention period, set by an administrator (seconds; 0: deletes are final)."""

    __tablename__ = "recycle_bin_retention"

    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    retention_period: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)


class ResumableUploadRow(Base):
    """A tus upload in progress (domain.entities.ResumableUpload)."""

    __tablename__ = "resumable_uploads"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    owner: Mapped[str | None] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(10))
    length: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger)
    store: Mapped[str] = mapped_column(String(255))
    handle: Mapped[str] = mapped_column(Text)
    image_claim: Mapped[str] = mapped_column(String(36))
    # The PATCH writing now, and its last sign of life: another PATCH waits for it, or takes over once it stops.
    patch_claim: Mapped[str | None] = mapped_column(String(36))
    patch_beat_at: Mapped[datetime | None] = mapped_column(Timestamp)
    meta: Mapped[str] = mapped_column(Text, default="{}")  # Upload-Metadata, as JSON
    parts: Mapped[str] = mapped_column(Text, default="[]")  # a final upload's partial upload ids, as JSON
    repr_digest: Mapped[str] = mapped_column(Text, default="")  # the whole data's Repr-Digest (RFC 9530), as sent
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    expires_at: Mapped[datetime] = mapped_column(Timestamp, index=True)


class TaskRow(Base):
    """An asynchronous job, such as an image import; its row is its state, so any process may run it."""

    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    type: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(30))  # pending, processing, success, failure
    owner: Mapped[str | None] = mapped_column(String(255))
    image_id: Mapped[str | None] = mapped_column(String(36))
    user_id: Mapped[str | None] = mapped_column(String(255))
    request_id: Mapped[str | None] = mapped_column(String(255))
    input: Mapped[str] = mapped_column(Text, default="{}")
    result: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text, default="")
    node: Mapped[str | None] = mapped_column(String(255))  # the process running it
    heartbeat_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # Fencing number: grows by one at every claim; a publishing write checks it in its own transaction.
    generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The only process that may run the task (it holds the caller's token in memory), or None.
    pinned_node: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)
    expires_at: Mapped[datetime | None] = mapped_column(Timestamp)

    __table_args__ = (
        Index("ix_tasks_status_heartbeat_at", "status", "heartbeat_at"),
        Index("ix_tasks_image_id", "image_id"),
        Index("ix_tasks_owner_created_at", "owner", "created_at"),
    )


RowId = BigInteger().with_variant(Integer, "sqlite")  # SQLite numbers only INTEGER primary keys itself


class NodeReferenceRow(Base):
    """A node with an image cache (Glance's node_reference), named by its worker_self_reference_url."""

    __tablename__ = "node_reference"

    node_reference_id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    node_reference_url: Mapped[str] = mapped_column(String(255), unique=True)


class CachedImageRow(Base):
    """A verified copy of an image in one node's cache (Glance's cached_images, its centralized_db driver)."""

    __tablename__ = "cached_images"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    image_id: Mapped[str] = mapped_column(String(36))
    last_accessed: Mapped[datetime] = mapped_column(Timestamp)
    last_modified: Mapped[datetime] = mapped_column(Timestamp)
    size: Mapped[int] = mapped_column(BigInteger)
    hits: Mapped[int] = mapped_column(Integer)
    checksum: Mapped[str | None] = mapped_column(String(32))
    node_reference_id: Mapped[int] = mapped_column(
        RowId, ForeignKey("node_reference.node_reference_id", ondelete="CASCADE"), index=True
    )

    __table_args__ = (
        UniqueConstraint("image_id", "node_reference_id", name="ix_cached_images_image_id_node_reference_id"),
    )


class SharedDataRow(Base):
    """One piece of image data held once in a store and shared by every image whose copy in that store has the same
    size and sha512 (deduplicated storage). `refs` counts the image locations and pins that use it; the row exists
    only while refs > 0, so a row that is found can always be linked to. Data stored without deduplication has no
    row: it is its image's alone."""

    __tablename__ = "shared_data"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    store: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha512: Mapped[str] = mapped_column(String(128))
    url: Mapped[str] = mapped_column(Text)
    url_key: Mapped[str] = mapped_column(String(64), index=True)  # sha256 of url: Text cannot be indexed everywhere
    refs: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(Timestamp)

    __table_args__ = (UniqueConstraint("store", "size", "sha512", name="uq_shared_data_store"),)


class SharedDataPinRow(Base):
    """A reference an upload holds on shared data while it receives bytes it will not write (the client declared a
    size and sha-512 that exist already): the data cannot go away before the upload publishes or gives up."""

    __tablename__ = "shared_data_pins"

    image_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    claim: Mapped[str] = mapped_column(String(36), primary_key=True)  # the upload's claim token (images.upload_claim)
    data_id: Mapped[int] = mapped_column(RowId)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
