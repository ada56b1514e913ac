"""Tasks: asynchronous image imports and their progress.

Revision ID: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("type", sa.String(30), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("owner", sa.String(255)),
        sa.Column("image_id", sa.String(36)),
        sa.Column("user_id", sa.String(255)),
        sa.Column("request_id", sa.String(255)),
        sa.Column("input", sa.Text, nullable=False),
        sa.Column("result", sa.Text),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("node", sa.String(255)),
        sa.Column("heartbeat_at", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("expires_at", TS),
        sa.PrimaryKeyConstraint("id", name="pk_tasks"),
    )
    op.create_index("ix_tasks_status_heartbeat_at", "tasks", ["status", "heartbeat_at"])
    op.create_index("ix_tasks_image_id", "tasks", ["image_id"])
    op.create_index("ix_tasks_owner_created_at", "tasks", ["owner", "created_at"])


def downgrade() -> None:
    op.drop_table("tasks")
