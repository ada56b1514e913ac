"""A cheap check that a store answers, for the detailed health check (/healthcheck?detailed=true).

Asking the size of an object that is never written costs one metadata request (an S3 or Swift HEAD, an RBD
open, a stat) and proves the service, the credentials and the bucket, container or pool answer: NotFound is the
healthy answer. A read-only (http) store has no place of its own to ask about, so it is not probed.
"""

from __future__ import annotations

import os

from glimpse.domain.ports import Store
from glimpse.errors import NotFound, StoreError
from glimpse.store.filesystem import FilesystemStore

PROBE_NAME = "glimpse-healthcheck-probe"


def probe(store: Store) -> str:
    """What was checked, when the store answers; raises StoreError (or a subclass) when it does not."""
    if store.read_only:
        return f"{store.type} store: read-only, nothing to check"
    if isinstance(store, FilesystemStore):
        if not store.datadir.is_dir():
            raise StoreError(f"{store.datadir} is not a folder")
        if not os.access(store.datadir, os.W_OK | os.X_OK):
            raise StoreError(f"{store.datadir} is not writable")
    try:
        store.size(store.url_for(PROBE_NAME))
    except NotFound:
        pass
    return f"{store.type} store answers"
