"""Per-project quotas and upload reservations.

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "project_quotas",
        sa.Column("project_id", sa.String(255), nullable=False),
        sa.Column("image_count_total", sa.BigInteger),
        sa.Column("image_size_total", sa.BigInteger),
        sa.Column("image_stage_total", sa.BigInteger),
        sa.Column("image_count_uploading", sa.BigInteger),
        sa.Column("lock_counter", sa.BigInteger, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("project_id", name="pk_project_quotas"),
    )
    op.create_table(
        "quota_reservations",
        sa.Column("image_id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(255), nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("image_id", name="pk_quota_reservations"),
    )
    op.create_index("ix_quota_reservations_project_id", "quota_reservations", ["project_id"])


def downgrade() -> None:
    op.drop_table("quota_reservations")
    op.drop_table("project_quotas")
