"""Deduplicated image data: shared_data (one row per piece of data held once in a store, with its reference count)
and shared_data_pins (references uploads hold while they receive data that exists already).

Additive: data stored before has no row and stays its image's alone.

Revision ID: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
ROW_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")  # SQLite numbers only INTEGER primary keys itself


def upgrade() -> None:
    op.create_table(
        "shared_data",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("store", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha512", sa.String(128), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("url_key", sa.String(64), nullable=False),
        sa.Column("refs", sa.BigInteger, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_shared_data"),
        sa.UniqueConstraint("store", "size", "sha512", name="uq_shared_data_store"),
    )
    op.create_index("ix_shared_data_url_key", "shared_data", ["url_key"])
    op.create_table(
        "shared_data_pins",
        sa.Column("image_id", sa.String(36), nullable=False),
        sa.Column("claim", sa.String(36), nullable=False),
        sa.Column("data_id", ROW_ID, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("image_id", "claim", name="pk_shared_data_pins"),
    )


def downgrade() -> None:
    op.drop_table("shared_data_pins")
    op.drop_index("ix_shared_data_url_key", table_name="shared_data")
    op.drop_table("shared_data")
