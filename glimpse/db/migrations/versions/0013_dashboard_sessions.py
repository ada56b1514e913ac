"""Dashboard sessions held server-side: a new table only.

The row's id is the SHA-256 of the random id the browser's cookie carries, so the table alone (a backup, an
admin's listing) never yields a usable cookie.

Revision ID: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "dashboard_sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(255)),
        sa.Column("user_name", sa.String(255)),
        sa.Column("project_id", sa.String(255)),
        sa.Column("project_name", sa.String(255)),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dashboard_sessions"),
    )
    op.create_index("ix_dashboard_sessions_expires_at", "dashboard_sessions", ["expires_at"])
    op.create_index("ix_dashboard_sessions_user_id", "dashboard_sessions", ["user_id"])


def downgrade() -> None:
    op.drop_table("dashboard_sessions")
