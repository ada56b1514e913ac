"""Fenced claims: a generation number on tasks and on uploads, and the process a task is pinned to.

tasks.generation grows by one each time a process claims the task; every publishing write of an import
checks it in the same transaction, so a process that lost its claim can no longer publish.
tasks.pinned_node names the process that must run the task (glance-download: the caller's token lives
only in that process's memory). images.upload_claim is the token of the upload or staging that may
publish the image's data.

Revision ID: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("generation", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("pinned_node", sa.String(255)))
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("upload_claim", sa.String(36)))


def downgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.drop_column("upload_claim")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("pinned_node")
        batch.drop_column("generation")
