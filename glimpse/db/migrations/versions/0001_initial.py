"""Initial schema: images, properties, tags, locations, members.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255)),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("visibility", sa.String(20), nullable=False),
        sa.Column("protected", sa.Boolean, nullable=False),
        sa.Column("os_hidden", sa.Boolean, nullable=False),
        sa.Column("owner", sa.String(255)),
        sa.Column("checksum", sa.String(32)),
        sa.Column("os_hash_algo", sa.String(64)),
        sa.Column("os_hash_value", sa.String(128)),
        sa.Column("size", sa.BigInteger),
        sa.Column("virtual_size", sa.BigInteger),
        sa.Column("container_format", sa.String(32)),
        sa.Column("disk_format", sa.String(32)),
        sa.Column("min_disk", sa.Integer, nullable=False),
        sa.Column("min_ram", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("deleted_at", TS),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("upload_node", sa.String(255)),
        sa.PrimaryKeyConstraint("id", name="pk_images"),
    )
    for name, cols in [
        ("ix_images_deleted_created_at_id", ["deleted", "created_at", "id"]),
        ("ix_images_owner_created_at", ["owner", "created_at"]),
        ("ix_images_visibility_created_at", ["visibility", "created_at"]),
        ("ix_images_status", ["status"]),
        ("ix_images_name", ["name"]),
        ("ix_images_updated_at", ["updated_at"]),
        ("ix_images_checksum", ["checksum"]),
        ("ix_images_os_hash_value", ["os_hash_value"]),
        ("ix_images_upload_node", ["upload_node"]),
    ]:
        op.create_index(name, "images", cols)

    op.create_table(
        "image_properties",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("image_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_image_properties"),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], ondelete="CASCADE", name="fk_image_properties_image_id_images"
        ),
        sa.UniqueConstraint("image_id", "name", name="uq_image_properties_image_id_name"),
    )
    if op.get_context().dialect.name == "postgresql":
        op.create_index("ix_image_properties_name", "image_properties", ["name"])
        op.create_index("ix_image_properties_value_hash", "image_properties", ["value"], postgresql_using="hash")
    else:
        op.create_index(
            "ix_image_properties_name_value", "image_properties", ["name", "value"], mysql_length={"value": 255}
        )

    op.create_table(
        "image_tags",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("image_id", sa.String(36), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_image_tags"),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], ondelete="CASCADE", name="fk_image_tags_image_id_images"),
        sa.UniqueConstraint("image_id", "value", name="uq_image_tags_image_id_value"),
    )
    op.create_index("ix_image_tags_value", "image_tags", ["value"])

    op.create_table(
        "image_locations",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("image_id", sa.String(36), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("meta", sa.Text, nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_image_locations"),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], ondelete="CASCADE", name="fk_image_locations_image_id_images"
        ),
    )
    op.create_index("ix_image_locations_image_id", "image_locations", ["image_id"])

    op.create_table(
        "image_members",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("image_id", sa.String(36), nullable=False),
        sa.Column("member", sa.String(255), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_image_members"),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], ondelete="CASCADE", name="fk_image_members_image_id_images"
        ),
        sa.UniqueConstraint("image_id", "member", name="uq_image_members_image_id_member"),
    )
    op.create_index("ix_image_members_member_status", "image_members", ["member", "status"])


def downgrade() -> None:
    for table in ("image_members", "image_locations", "image_tags", "image_properties", "images"):
        op.drop_table(table)
