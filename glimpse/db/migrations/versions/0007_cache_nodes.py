"""Which nodes cache which image (Glance's centralized_db cache driver), and an index for the scrubber.

node_reference and cached_images are Glance's tables (2024_1_expand01), column for column: a node is named by its
worker_self_reference_url, and a row of cached_images says that node holds a verified copy of the image.
image_locations gets an index on (status, image_id): the scrubber looks for live images with a copy waiting
(pending_delete or deleting), a handful among every location.

Revision ID: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
ROW_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")  # SQLite numbers only INTEGER primary keys itself


def upgrade() -> None:
    op.create_table(
        "node_reference",
        sa.Column("node_reference_id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("node_reference_url", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("node_reference_id", name="pk_node_reference"),
        sa.UniqueConstraint("node_reference_url", name="uq_node_reference_node_reference_url"),
    )
    op.create_table(
        "cached_images",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("image_id", sa.String(36), nullable=False),
        sa.Column("last_accessed", TS, nullable=False),
        sa.Column("last_modified", TS, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("hits", sa.Integer, nullable=False),
        sa.Column("checksum", sa.String(32)),
        sa.Column("node_reference_id", ROW_ID, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cached_images"),
        sa.ForeignKeyConstraint(
            ["node_reference_id"],
            ["node_reference.node_reference_id"],
            name="fk_cached_images_node_reference_id_node_reference",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("image_id", "node_reference_id", name="ix_cached_images_image_id_node_reference_id"),
    )
    op.create_index("ix_cached_images_node_reference_id", "cached_images", ["node_reference_id"])
    op.create_index("ix_image_locations_status_image_id", "image_locations", ["status", "image_id"])


def downgrade() -> None:
    op.drop_index("ix_image_locations_status_image_id", table_name="image_locations")
    op.drop_table("cached_images")
    op.drop_table("node_reference")
