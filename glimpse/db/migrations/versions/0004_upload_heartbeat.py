"""Upload heartbeats, so any process can recover an upload whose process died.

Revision ID: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("upload_heartbeat_at", TS))
    op.create_index("ix_images_status_upload_heartbeat_at", "images", ["status", "upload_heartbeat_at"])


def downgrade() -> None:
    op.drop_index("ix_images_status_upload_heartbeat_at", "images")
    with op.batch_alter_table("images") as batch:
        batch.drop_column("upload_heartbeat_at")
