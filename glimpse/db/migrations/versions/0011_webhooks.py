"""Webhooks and their outbox: each event for a webhook is a row, delivered by whichever node claims it.

webhooks: a project's receivers (project_id NULL: an administrator's global one). webhook_outbox: one row per
(event, webhook), the CloudEvents document as sent, its delivery state, and the fenced lease of the node sending
it (lease_token, lease_until). Delivered and failed rows are the delivery log until they are purged.

Revision ID: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
ROW_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")  # SQLite numbers only INTEGER primary keys itself


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(255)),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.String(255), nullable=False),
        sa.Column("events", sa.Text, nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhooks"),
    )
    op.create_index("ix_webhooks_project_id", "webhooks", ["project_id"])
    op.create_table(
        "webhook_outbox",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("webhook_id", sa.String(36), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("event_type", sa.String(255), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("lease_token", sa.String(36)),
        sa.Column("lease_until", TS),
        sa.Column("leased_by", sa.String(255)),
        sa.Column("last_status_code", sa.Integer),
        sa.Column("last_error", sa.String(1024)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_outbox"),
        sa.ForeignKeyConstraint(
            ["webhook_id"], ["webhooks.id"], name="fk_webhook_outbox_webhook_id_webhooks", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("webhook_id", "event_id", name="uq_webhook_outbox_webhook_id"),
    )
    op.create_index("ix_webhook_outbox_status_next_attempt_at", "webhook_outbox", ["status", "next_attempt_at"])
    op.create_index(
        "ix_webhook_outbox_webhook_id_subject_status", "webhook_outbox", ["webhook_id", "subject", "status"]
    )
    op.create_index("ix_webhook_outbox_webhook_id_id", "webhook_outbox", ["webhook_id", "id"])
    op.create_index("ix_webhook_outbox_finished_at", "webhook_outbox", ["finished_at"])


def downgrade() -> None:
    op.drop_table("webhook_outbox")
    op.drop_index("ix_webhooks_project_id", table_name="webhooks")
    op.drop_table("webhooks")
