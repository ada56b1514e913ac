"""The recycle bin: when a binned image leaves the bin for good, the status it had, and each project's retention.

images.bin_expires_at is set on an image deleted while a retention period applies to its project (it is then
pending_delete, hidden like any deleted image, with everything kept); the scrubber removes its data once that
time has passed. images.status_before_delete is what a restore brings back. recycle_bin_retention holds the
retention periods an administrator set per project (the rest use [recycle_bin] retention_period).

Revision ID: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("bin_expires_at", TS))
        batch.add_column(sa.Column("status_before_delete", sa.String(30)))
    op.create_index("ix_images_owner_bin_expires_at", "images", ["owner", "bin_expires_at"])
    op.create_table(
        "recycle_bin_retention",
        sa.Column("project_id", sa.String(255), nullable=False),
        sa.Column("retention_period", sa.BigInteger, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("project_id", name="pk_recycle_bin_retention"),
    )


def downgrade() -> None:
    op.drop_table("recycle_bin_retention")
    op.drop_index("ix_images_owner_bin_expires_at", "images")
    with op.batch_alter_table("images") as batch:
        batch.drop_column("status_before_delete")
        batch.drop_column("bin_expires_at")
