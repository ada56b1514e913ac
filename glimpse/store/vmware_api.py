"""The vSphere API as the vmware store uses it, through pyvmomi (VMware's own SDK).

pyvmomi rather than oslo.vmware (Glance's choice): one pure-Python package with no dependencies and type
annotations, against oslo.vmware's suds, lxml and eventlet-era helpers; the store needs only a login, the
inventory lookups, the datastore browser and the FileManager, all plain SOAP calls either way.

One logged-in session per store, shared by its threads: a call that finds it expired (NotAuthenticated)
logs in again once and is repeated; a connection error is retried vmware_api_retry_count times. The
session's cookie authenticates the transfers over the datastore's HTTP file interface (the store's own).
Tasks are read field by field (info.state, info.error, info.result) through the PropertyCollector rather
than as a whole TaskInfo, which costs less and does not trip on a server's unusual task entity.
"""

from __future__ import annotations

import http.client
import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from glimpse.errors import GlimpseError, NotFound, StoreError, StoreFull, StoreUnavailable
from glimpse.store.vmware_locations import Server

log = logging.getLogger(__name__)

T = TypeVar("T")
COOKIE = "vmware_soap_session"
CONNECTION_ERRORS = (OSError, http.client.HTTPException)  # ssl.SSLError and socket timeouts are OSErrors
FIRST_POLL = 0.05  # seconds before the first look at a task again; doubles up to the poll interval


class VsphereApi:
    def __init__(
        self,
        store: str,
        server: Server,
        username: str,
        password: str,
        tls: ssl.SSLContext,
        *,
        retries: int = 10,
        poll_interval: float = 5.0,
        timeout: float = 60.0,
    ) -> None:
        self.store = store
        self.server = server
        self._username = username
        self._password = password
        self._tls = tls
        self.retries = retries
        self.poll_interval = poll_interval
        self._timeout = timeout
        self._lock = threading.Lock()
        self._si: vim.ServiceInstance | None = None
        self._generation = 0  # counts logins, so threads that saw one expiry log in again only once
        self._datacenters: dict[str, vim.Datacenter] = {}

    # --- the session ---------------------------------------------------------------------------
    def _login(self) -> vim.ServiceInstance:
        try:
            si: vim.ServiceInstance = SmartConnect(  # type: ignore[no-untyped-call]
                host=self.server.host,
                port=self.server.port,
                user=self._username,
                pwd=self._password,
                sslContext=self._tls,
                httpConnectionTimeout=self._timeout,
            )
        except ssl.SSLCertVerificationError as exc:  # not worth a retry
            raise StoreError(f"Store {self.store}: {self.server.netloc}'s certificate is not trusted: {exc}.") from exc
        except vim.fault.InvalidLogin as exc:
            raise StoreError(f"Store {self.store}: vSphere refused the login of {self._username}.") from exc
        except vmodl.MethodFault as exc:
            raise StoreError(f"Store {self.store}: vSphere login failed: {fault_text(exc)}.") from exc
        except CONNECTION_ERRORS as exc:
            raise StoreUnavailable(f"Store {self.store} cannot reach vSphere at {self.server.netloc}: {exc}.") from exc
        return si

    def _session(self) -> tuple[vim.ServiceInstance, int]:
        with self._lock:
            if self._si is None:
                self._si = self._login()
                self._generation += 1
            return self._si, self._generation

    def expired(self, generation: int | None = None) -> None:
        """The session was refused (a 401 on a transfer, NotAuthenticated): the next use logs in again."""
        with self._lock:
            if generation is None or generation == self._generation:
                self._si = None
                self._datacenters.clear()

    def cookie(self) -> tuple[str, int]:
        """The session cookie (`vmware_soap_session=...`) for the HTTP file interface, and its login's number."""
        si, generation = self._session()
        raw: str = si._stub.cookie or ""  # pyvmomi keeps the login's cookie on its SOAP stub
        for part in raw.split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                return f"{name}={value}", generation
        raise StoreError(f"Store {self.store}: the vSphere login set no {COOKIE} cookie.")

    def check_session(self) -> None:
        """Make sure the session is alive before a transfer that cannot be repeated (an upload)."""
        self.call("the session", lambda content: manager(content.sessionManager).currentSession)

    def close(self) -> None:
        with self._lock:
            si, self._si = self._si, None
        if si is not None:
            try:
                Disconnect(si)  # type: ignore[no-untyped-call]
            except Exception:  # logging out of a server that is gone changes nothing
                log.debug("vSphere logout failed", exc_info=True)

    # --- calls ---------------------------------------------------------------------------------
    def call(self, what: str, action: Callable[[vim.ServiceInstanceContent], T]) -> T:
        """Run `action` on the service content; logs in again after an expiry, retries connection errors."""
        relogged = False
        attempt = 0
        while True:
            try:
                si, generation = self._session()
                return action(si.content)
            except vim.fault.NotAuthenticated:
                if relogged:
                    raise StoreError(f"Store {self.store}: vSphere refuses a fresh session for {what}.") from None
                relogged = True
                self.expired(generation)
            except (*CONNECTION_ERRORS, StoreUnavailable) as exc:  # StoreUnavailable: the login's connection failed
                attempt += 1
                if attempt > self.retries:
                    raise StoreUnavailable(
                        f"Store {self.store} cannot reach vSphere at {self.server.netloc} for {what}: {exc}"
                    ) from exc
                time.sleep(min(0.1 * 2**attempt, 2.0))
            except vmodl.MethodFault as exc:
                raise fault_error(exc, what) from exc

    def run_task(self, what: str, start: Callable[[vim.ServiceInstanceContent], vim.Task]) -> Any:
        """Start a task and wait for it; its result, or its fault as a store error."""

        def run(content: vim.ServiceInstanceContent) -> Any:
            task = start(content)
            return self._wait(content, task, what)

        return self.call(what, run)

    def _wait(self, content: vim.ServiceInstanceContent, task: vim.Task, what: str) -> Any:
        collector = vmodl.query.PropertyCollector
        spec = collector.FilterSpec(  # type: ignore[no-untyped-call]
            objectSet=[collector.ObjectSpec(obj=task)],  # type: ignore[no-untyped-call]
            propSet=[collector.PropertySpec(type=vim.Task, pathSet=["info.state"])],  # type: ignore[no-untyped-call]
        )
        delay = FIRST_POLL
        while True:
            found = content.propertyCollector.RetrieveContents([spec])
            state = found[0].propSet[0].val if found and found[0].propSet else None
            if state in ("success", "error"):
                break
            time.sleep(delay)
            delay = min(delay * 2, self.poll_interval)
        field = "info.result" if state == "success" else "info.error"
        spec.propSet[0].pathSet = [field]
        found = content.propertyCollector.RetrieveContents([spec])
        value = found[0].propSet[0].val if found and found[0].propSet else None
        if state == "error":
            if isinstance(value, vmodl.MethodFault):
                raise value
            raise StoreError(f"Store {self.store}: vSphere task for {what} failed.")
        return value

    # --- inventory -----------------------------------------------------------------------------
    def datacenter(self, content: vim.ServiceInstanceContent, path: str | None) -> vim.Datacenter:
        """The datacenter at an inventory path (`DC0`, `Folder/DC1`); the only one when path is None."""
        key = path or ""
        cached = self._datacenters.get(key)
        if cached is not None:
            return cached
        found: object
        if path:
            found = manager(content.searchIndex).FindByInventoryPath(path)
        else:
            view = manager(content.viewManager).CreateContainerView(content.rootFolder, [vim.Datacenter], True)
            try:
                every = list(view.view)
            finally:
                view.Destroy()
            if len(every) != 1:
                raise StoreError(f"Store {self.store}: a location without dcPath, and {len(every)} datacenters.")
            found = every[0]
        if not isinstance(found, vim.Datacenter):
            raise StoreError(f"Store {self.store}: vSphere has no datacenter at {path}.")
        self._datacenters[key] = found
        return found

    def datastore(self, content: vim.ServiceInstanceContent, datacenter: str | None, name: str) -> vim.Datastore:
        for ds in self.datacenter(content, datacenter).datastore:
            if ds.name == name:
                return ds
        raise StoreError(f"Store {self.store}: datacenter {datacenter or '(default)'} has no datastore {name}.")


def fault_error(exc: vmodl.MethodFault, what: str) -> GlimpseError:
    """The store error a vSphere fault stands for."""
    if isinstance(exc, vim.fault.FileNotFound):
        return NotFound(f"Image data at {what} is missing.")
    if isinstance(exc, (vim.fault.NoDiskSpace, vim.fault.InsufficientResourcesFault)):
        return StoreFull("Image storage media is full.")
    return StoreError(f"vSphere refused an operation on {what}: {fault_text(exc)}.")


def fault_text(exc: vmodl.MethodFault) -> str:
    return str(getattr(exc, "msg", "") or type(exc).__name__)


M = TypeVar("M")


def manager(found: M | None) -> M:
    """A manager of the service content (optional in the API's types: an ESXi host lacks some); present here."""
    if found is None:
        raise StoreError("This vSphere server lacks a manager the vmware store needs.")
    return found


def search_spec(pattern: str) -> vim.host.DatastoreBrowser.SearchSpec:
    """A datastore browser search for the files whose names match a glob."""
    return vim.host.DatastoreBrowser.SearchSpec(matchPattern=[pattern])  # type: ignore[no-untyped-call]
