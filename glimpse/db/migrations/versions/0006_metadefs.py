"""The metadata definitions catalog: namespaces with their objects, properties, tags and resource types.

The tables follow Glance's metadef_* tables (an object's description, its required names comma-separated and
its properties as JSON; a property's definition as JSON), so a Glance catalog maps onto them column by column.

Revision ID: 0006
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
CHILDREN = ("metadef_objects", "metadef_properties", "metadef_tags")


def _times() -> list[sa.Column[datetime]]:
    return [sa.Column("created_at", TS, nullable=False), sa.Column("updated_at", TS, nullable=False)]


def upgrade() -> None:
    op.create_table(
        "metadef_namespaces",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("namespace", sa.String(80), nullable=False),
        sa.Column("display_name", sa.String(80)),
        sa.Column("description", sa.Text),
        sa.Column("visibility", sa.String(32), nullable=False),
        sa.Column("protected", sa.Boolean, nullable=False),
        sa.Column("owner", sa.String(255)),
        *_times(),
        sa.PrimaryKeyConstraint("id", name="pk_metadef_namespaces"),
        sa.UniqueConstraint("namespace", name="uq_metadef_namespaces_namespace"),
    )
    op.create_index("ix_metadef_namespaces_owner", "metadef_namespaces", ["owner"])
    own_columns = {  # as Glance's tables: an object's properties and a property's definition are JSON text
        "metadef_objects": [
            sa.Column("description", sa.Text),
            sa.Column("required", sa.Text),
            sa.Column("json_schema", sa.Text, nullable=False),
        ],
        "metadef_properties": [sa.Column("json_schema", sa.Text, nullable=False)],
        "metadef_tags": [],
    }
    for table in CHILDREN:
        op.create_table(
            table,
            sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
            sa.Column("namespace_id", sa.Integer, nullable=False),
            sa.Column("name", sa.String(80), nullable=False),
            *own_columns[table],
            *_times(),
            sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
            sa.ForeignKeyConstraint(
                ["namespace_id"],
                ["metadef_namespaces.id"],
                name=f"fk_{table}_namespace_id_metadef_namespaces",
                ondelete="CASCADE",
            ),
            sa.UniqueConstraint("namespace_id", "name", name=f"uq_{table}_namespace_id"),
        )
        op.create_index(f"ix_{table}_name", table, ["name"])
        op.create_index(f"ix_{table}_namespace_id", table, ["namespace_id"])
    op.create_table(
        "metadef_resource_types",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("protected", sa.Boolean, nullable=False),
        *_times(),
        sa.PrimaryKeyConstraint("id", name="pk_metadef_resource_types"),
        sa.UniqueConstraint("name", name="uq_metadef_resource_types_name"),
    )
    op.create_table(
        "metadef_namespace_resource_types",
        sa.Column("resource_type_id", sa.Integer, nullable=False),
        sa.Column("namespace_id", sa.Integer, nullable=False),
        sa.Column("prefix", sa.String(80)),
        sa.Column("properties_target", sa.String(80)),
        *_times(),
        sa.PrimaryKeyConstraint("resource_type_id", "namespace_id", name="pk_metadef_namespace_resource_types"),
        sa.ForeignKeyConstraint(
            ["resource_type_id"],
            ["metadef_resource_types.id"],
            name="fk_metadef_ns_resource_types_resource_type_id",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["namespace_id"],
            ["metadef_namespaces.id"],
            name="fk_metadef_ns_resource_types_namespace_id",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_metadef_ns_resource_types_namespace_id", "metadef_namespace_resource_types", ["namespace_id"])


def downgrade() -> None:
    op.drop_table("metadef_namespace_resource_types")
    op.drop_table("metadef_resource_types")
    for table in reversed(CHILDREN):
        op.drop_table(table)
    op.drop_table("metadef_namespaces")
