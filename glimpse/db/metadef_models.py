"""Tables of the metadata definitions catalog, laid out as Glance's metadef_* tables (migration 0006)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Boolean, ForeignKey, Integer, Select, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from glimpse.db.models import Base, Timestamp, utcnow


class MetadefNamespaceRow(Base):
    __tablename__ = "metadef_namespaces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(80))
    description: Mapped[str | None] = mapped_column(Text)
    visibility: Mapped[str] = mapped_column(String(32), default="private")
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    owner: Mapped[str | None] = mapped_column(String(255), index=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)


class _Named:
    """A named entry of one namespace: an object, a property or a tag."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(80), index=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)


class MetadefObjectRow(_Named, Base):
    """As Glance keeps an object: its properties as JSON in json_schema, `required` as comma-separated names."""

    __tablename__ = "metadef_objects"
    namespace_id: Mapped[int] = mapped_column(ForeignKey("metadef_namespaces.id", ondelete="CASCADE"), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    required: Mapped[str | None] = mapped_column(Text)
    json_schema: Mapped[str] = mapped_column(Text, default="{}")
    __table_args__ = (UniqueConstraint("namespace_id", "name"),)


class MetadefPropertyRow(_Named, Base):
    """A property's definition (title, type, enum, ...) as JSON in json_schema."""

    __tablename__ = "metadef_properties"
    namespace_id: Mapped[int] = mapped_column(ForeignKey("metadef_namespaces.id", ondelete="CASCADE"), index=True)
    json_schema: Mapped[str] = mapped_column(Text, default="{}")
    __table_args__ = (UniqueConstraint("namespace_id", "name"),)


class MetadefTagRow(_Named, Base):
    __tablename__ = "metadef_tags"
    namespace_id: Mapped[int] = mapped_column(ForeignKey("metadef_namespaces.id", ondelete="CASCADE"), index=True)
    __table_args__ = (UniqueConstraint("namespace_id", "name"),)


EntryRow = MetadefObjectRow | MetadefPropertyRow | MetadefTagRow
E = TypeVar("E", bound=EntryRow)


def select_entries(model: type[E]) -> Select[E]:
    """select(model) for one of the entry models; mypy would type select() of the union of them as of Base."""
    return select(model)


def read_definition(row: EntryRow) -> dict[str, Any]:
    """An entry's definition as the API shows it, from Glance's columns."""
    if isinstance(row, MetadefTagRow):
        return {}
    if isinstance(row, MetadefPropertyRow):
        found: dict[str, Any] = json.loads(row.json_schema or "{}")
        return found
    definition: dict[str, Any] = {}
    if row.description is not None:
        definition["description"] = row.description
    if row.required:
        definition["required"] = row.required.split(",")
    definition["properties"] = json.loads(row.json_schema or "{}") or {}
    return definition


def write_definition(row: EntryRow, definition: dict[str, Any]) -> None:
    if isinstance(row, MetadefPropertyRow):
        row.json_schema = json.dumps(definition)
    elif isinstance(row, MetadefObjectRow):
        row.description = definition.get("description")
        row.required = ",".join(definition["required"]) if definition.get("required") else None
        row.json_schema = json.dumps(definition.get("properties") or {})


class MetadefResourceTypeRow(Base):
    __tablename__ = "metadef_resource_types"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)


class MetadefAssociationRow(Base):
    __tablename__ = "metadef_namespace_resource_types"

    resource_type_id: Mapped[int] = mapped_column(
        ForeignKey("metadef_resource_types.id", ondelete="CASCADE"), primary_key=True
    )
    namespace_id: Mapped[int] = mapped_column(
        ForeignKey("metadef_namespaces.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    prefix: Mapped[str | None] = mapped_column(String(80))
    properties_target: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)
