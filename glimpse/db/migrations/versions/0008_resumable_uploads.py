"""tus uploads in progress: how far each got, where its pieces are (the store's handle), until when it may go on,
and the claim of the PATCH writing it now.

Revision ID: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "resumable_uploads",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("image_id", sa.String(36), nullable=False),
        sa.Column("owner", sa.String(255)),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("length", sa.BigInteger, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("store", sa.String(255), nullable=False),
        sa.Column("handle", sa.Text, nullable=False),
        sa.Column("image_claim", sa.String(36), nullable=False),
        sa.Column("patch_claim", sa.String(36)),
        sa.Column("patch_beat_at", TS),
        sa.Column("meta", sa.Text, nullable=False),
        sa.Column("parts", sa.Text, nullable=False),
        sa.Column("repr_digest", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_resumable_uploads"),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name="fk_resumable_uploads_image_id_images", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_resumable_uploads_image_id", "resumable_uploads", ["image_id"])
    op.create_index("ix_resumable_uploads_expires_at", "resumable_uploads", ["expires_at"])


def downgrade() -> None:
    op.drop_table("resumable_uploads")
