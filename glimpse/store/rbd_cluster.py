"""The rbd store's link to Ceph: the python bindings, loaded on demand, one cluster connection per process,
and the mapping of the bindings' errors to the store errors the domain understands (see rbd.py)."""

from __future__ import annotations

import os
import threading
from typing import Any

from glimpse.errors import GlimpseError, InUse, NotFound, StoreError, StoreFull, StoreUnavailable
from glimpse.store.error_map import ErrorMap


class ImageInUse(InUse, StoreError):
    """Clones of the image exist, or a client has it open."""


def bindings() -> tuple[Any, Any]:
    """Ceph's rados and rbd modules (Debian's python3-rados and python3-rbd; they are not on PyPI)."""
    try:
        import rados
        import rbd
    except ImportError as exc:
        raise StoreError(
            "The rbd store needs Ceph's python bindings (Debian's python3-rados and python3-rbd), "
            f"importable by this Python: {exc}."
        ) from exc
    return rados, rbd


def reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class CephConnection:
    """One cluster connection (librados is thread-safe), opened on first use in each process, so a handle is
    never carried across the fork of the server's worker processes."""

    def __init__(self, store: str, rados: Any, *, user: str | None, conf_file: str, connect_timeout: int) -> None:
        self.store = store
        self.rados = rados
        self.user = user
        self.conf_file = conf_file
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._cluster: Any = None
        self._pid = 0
        self._fsid = ""

    def connection(self) -> Any:
        with self._lock:
            if self._cluster is not None and self._pid == os.getpid():
                return self._cluster
            # A handle inherited through fork() is unusable and must not be shut down here either.
            cluster = self.rados.Rados(conffile=self.conf_file, rados_id=self.user)
            try:
                if self.connect_timeout > 0:
                    # Rados.connect(timeout) is ignored by the bindings; this is the setting librados obeys.
                    cluster.conf_set("client_mount_timeout", str(self.connect_timeout))
                cluster.connect()
                fsid = cluster.get_fsid()
            except self.rados.Error as exc:
                cluster.shutdown()
                who = f"client.{self.user or 'admin'}"
                conf = self.conf_file or "the default ceph.conf"
                raise StoreUnavailable(
                    f"Store {self.store} cannot connect to Ceph as {who} with {conf}: {reason(exc)}."
                ) from exc
            self._cluster, self._pid, self._fsid = cluster, os.getpid(), fsid
            return cluster

    def ioctx(self, pool: str) -> Any:
        cluster = self.connection()
        try:
            return cluster.open_ioctx(pool)
        except self.rados.ObjectNotFound as exc:
            raise StoreError(f"Store {self.store}: the Ceph pool {pool} does not exist.") from exc
        except self.rados.Error as exc:
            raise StoreUnavailable(f"Store {self.store} cannot open the Ceph pool {pool}: {reason(exc)}.") from exc

    @property
    def fsid(self) -> str:
        self.connection()
        return self._fsid


class RbdErrors(ErrorMap):
    """Turns the bindings' errors into the store errors the domain understands."""

    def __init__(self, rados: Any, rbd: Any, what: str) -> None:
        super().__init__(what)
        self.rados, self.rbd = rados, rbd

    def translate(self, exc: BaseException) -> GlimpseError | None:
        rbd, rados = self.rbd, self.rados
        if isinstance(exc, rbd.ImageNotFound | rados.ObjectNotFound):
            return NotFound(f"Image data at {self.what} is missing.")
        if isinstance(exc, rbd.ImageBusy | rbd.ImageHasSnapshots):
            return ImageInUse(f"Image data at {self.what} is in use (a client has it open): {reason(exc)}.")
        if isinstance(exc, rbd.NoSpace | rbd.DiskQuotaExceeded):
            return StoreFull(f"The Ceph pool is full ({self.what}): {reason(exc)}.")
        if isinstance(exc, rados.TimedOut | rbd.ConnectionShutdown):
            return StoreUnavailable(f"Ceph did not answer ({self.what}): {reason(exc)}.")
        if isinstance(exc, rbd.Error | rados.Error):
            return StoreError(f"Ceph refused an operation ({self.what}): {reason(exc)}.")
        return None
