"""The parts of the composition root: glimpse/app.py puts them together, the cli calls the one-shot builders.

Each module turns one kind of Settings into concrete things: stores and the egress policy, the database engine,
authentication, notifications, the web front (routes, middleware, error handlers), observability (metrics, health,
status), the process's lifecycle (signals, drain, reload) and the cli's operations (scrub, backup, restore, purge).
Only glimpse.app and glimpse.cli import this package (tests/unit/test_layers.py).
"""

from __future__ import annotations

import logging

# The lines of every part keep the composition root's logger name, which operators' log levels and filters name.
log = logging.getLogger("glimpse.app")
