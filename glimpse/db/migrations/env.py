"""Alembic environment: runs on the connection that glimpse.db.schema hands it."""

from __future__ import annotations

from alembic import context

from glimpse.db import audit_models, dashboard_sessions, metadef_models, webhook_models  # noqa: F401  (their tables belong to Base.metadata too)
from glimpse.db.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
