"""Tables of the metadata definitions catalog, laid out as Glance's metadef_* tables (migration 0006)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
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


class _Child:
    """A named entry of one namespace: an object, a property or a tag; json_schema holds its definition."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(80), index=True)
    json_schema: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)


class MetadefObjectRow(_Child, Base):
    __tablename__ = "metadef_objects"
    namespace_id: Mapped[int] = mapped_column(ForeignKey("metadef_namespaces.id", ondelete="CASCADE"), index=True)
    __table_args__ = (UniqueConstraint("namespace_id", "name"),)


class MetadefPropertyRow(_Child, Base):
    __tablename__ = "metadef_properties"
    namespace_id: Mapped[int] = mapped_column(ForeignKey("metadef_namespaces.id", ondelete="CASCADE"), index=True)
    __table_args__ = (UniqueConstraint("namespace_id", "name"),)


class MetadefTagRow(_Child, Base):
    __tablename__ = "metadef_tags"
    namespace_id: Mapped[int] = mapped_column(ForeignKey("metadef_namespaces.id", ondelete="CASCADE"), index=True)
    __table_args__ = (UniqueConstraint("namespace_id", "name"),)


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
