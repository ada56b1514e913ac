"""The cinder store's link to Block Storage: the API client, waiting out a volume's transitions, and
attaching a volume to this node with os-brick (see cinder.py for what the store does with them).

python-cinderclient and os-brick are imported only when a cinder store is used. The client is made on
first use in each process (never carried across the fork of the server's workers) from the store's own
Keystone credentials, as Glance does when cinder_store_user_name and the others are set.

Attaching: an attachment is created with this node's connector (Cinder then exports the volume and
returns how to reach it), os-brick connects to it, and the attachment is completed (the volume is
"in-use"). Glimpse attaches `rbd` volumes through os-brick's rbd connector without a local attach: a
file-like object over librbd, which needs no root, no kernel module and no privsep daemon. Other
connection types (iSCSI, FC, NFS, ...) need os-brick's privileged helpers: they are refused with a clear
error. Every path (done, failed, the reader abandoned) closes the handle and deletes the attachment.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import platform
import socket
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from glimpse.errors import StoreError

log = logging.getLogger(__name__)

MICROVERSION = "3.54"  # attachments with a mode (ro/rw), and completing them (3.44)
EXTEND_ATTACHED = "3.42"  # extending an in-use volume
MAX_POLL = 2.0  # seconds between two looks at a volume's status


@dataclass(frozen=True)
class CinderAccess:
    """How the store reaches Block Storage (glance_store's option names in comments)."""

    auth_url: str  # cinder_store_auth_address
    user: str  # cinder_store_user_name
    password: str  # cinder_store_password
    project: str  # cinder_store_project_name
    user_domain: str = "Default"  # cinder_store_user_domain_name
    project_domain: str = "Default"  # cinder_store_project_domain_name
    app_credential_id: str = ""  # cinder_store_application_credential_id
    app_credential_secret: str = ""  # cinder_store_application_credential_secret
    catalog_info: str = "volumev3::publicURL"  # cinder_catalog_info
    endpoint_template: str = ""  # cinder_endpoint_template
    region: str = ""  # cinder_os_region_name
    insecure: bool = False  # cinder_api_insecure
    ca_file: str = ""  # cinder_ca_certificates_file
    retries: int = 3  # cinder_http_retries


def _module(name: str) -> Any:
    with warnings.catch_warnings():  # os-brick's privsep imports eventlet, which warns (Warning) that it is deprecated
        warnings.simplefilter("ignore")
        return importlib.import_module(name)


def cinder_exceptions() -> Any:
    return _module("cinderclient.exceptions")


def make_client(access: CinderAccess, microversion: str = MICROVERSION) -> Any:
    """A cinderclient v3 client on a keystoneauth session of the store's user."""
    identity = _module("keystoneauth1.identity")
    session = _module("keystoneauth1.session")
    v3 = _module("cinderclient.v3.client")
    api_versions = _module("cinderclient.api_versions")
    if access.app_credential_id and access.app_credential_secret:
        auth = identity.V3ApplicationCredential(
            auth_url=access.auth_url,
            application_credential_id=access.app_credential_id,
            application_credential_secret=access.app_credential_secret,
        )
    else:
        auth = identity.V3Password(
            auth_url=access.auth_url,
            username=access.user,
            password=access.password,
            user_domain_name=access.user_domain,
            project_name=access.project,
            project_domain_name=access.project_domain,
        )
    verify: bool | str = False if access.insecure else (access.ca_file or True)
    sess = session.Session(auth=auth, verify=verify)
    service_type, _, rest = access.catalog_info.partition(":")
    service_name, _, interface = rest.partition(":")
    endpoint = None
    if access.endpoint_template:
        project_id = sess.get_project_id()
        endpoint = access.endpoint_template % {"tenant": project_id, "project_id": project_id}
    return v3.Client(
        session=sess,
        api_version=api_versions.APIVersion(microversion),
        region_name=access.region or None,
        endpoint_type=interface or "publicURL",
        service_type=service_type or "volumev3",
        service_name=service_name or None,
        os_endpoint=endpoint,
        retries=access.retries,
    )


class VolumeGone(StoreError):
    """The volume does not exist (any more)."""


def wait_for(client: Any, volume_id: str, transitional: set[str], timeout: float) -> Any:
    """The volume once its status is none of `transitional`; StoreError after `timeout` seconds,
    VolumeGone when it disappears."""
    exceptions = cinder_exceptions()
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        try:
            volume = client.volumes.get(volume_id)
        except exceptions.NotFound as exc:
            raise VolumeGone(f"Volume {volume_id} does not exist.") from exc
        except Exception as exc:
            # A connection lost for a moment (an API worker restarting) does not end a wait that has time left.
            if not _connection_lost(exc) or time.monotonic() >= deadline:
                raise
            log.warning("Cinder did not answer about volume %s (%s); asking again", volume_id, exc)
            time.sleep(delay)
            delay = min(delay * 2, MAX_POLL)
            continue
        if volume.status not in transitional:
            return volume
        if time.monotonic() >= deadline:
            raise StoreError(f"Volume {volume_id} is still {volume.status} after {timeout:.0f} s.")
        time.sleep(delay)
        delay = min(delay * 2, MAX_POLL)


def _connection_lost(exc: Exception) -> bool:
    from keystoneauth1 import exceptions as ks_exceptions

    return isinstance(exc, ks_exceptions.ConnectFailure)


def expect_status(volume: Any, expected: str, doing: str) -> None:
    if volume.status != expected:
        raise StoreError(f"Volume {volume.id} is {volume.status} after {doing} (expected {expected}).")


@dataclass(frozen=True)
class Connector:
    """This node as Cinder sees it when attaching (os-brick's connector properties for an rbd attach)."""

    use_multipath: bool = False
    enforce_multipath: bool = False
    root_helper: str = ""

    def properties(self) -> dict[str, object]:
        host = socket.gethostname()
        return {
            "platform": platform.machine(),
            "os_type": "linux",
            "ip": _address(host),
            "host": host,
            "multipath": self.use_multipath,
            "enforce_multipath": self.enforce_multipath,
            "do_local_attach": False,
        }


def _address(host: str) -> str:
    try:
        return str(socket.getaddrinfo(host, None, socket.AF_INET)[0][4][0])
    except OSError:
        return "127.0.0.1"


@contextlib.contextmanager
def attached(
    client: Any, volume_id: str, mode: str, connector: Connector, *, tries: int = 5, timeout: float = 300
) -> Iterator[Any]:
    """A file-like object over the volume (read, write, seek, flush), attached to this node in `mode`
    ("ro" or "rw") for the duration of the block."""
    attachment = _create_attachment(client, volume_id, mode, connector, tries, timeout)
    attachment_id = str(field(attachment, "id"))
    try:
        info = dict(field(attachment, "connection_info") or {})
        kind = info.get("driver_volume_type")
        if kind != "rbd":
            raise StoreError(
                f"Volume {volume_id} is reached over '{kind}', which the cinder store cannot attach without root "
                "privileges; Glimpse attaches rbd volumes (Cinder's RBD driver)."
            )
        info["do_local_attach"] = False
        brick = _module("os_brick.initiator.connector")
        conn = brick.InitiatorConnector.factory(
            "RBD", connector.root_helper, use_multipath=connector.use_multipath, do_local_attach=False
        )
        device = conn.connect_volume(info)
        try:
            client.attachments.complete(attachment_id)
            yield device["path"]
        finally:
            try:
                conn.disconnect_volume(info, device, force=True)
            except Exception:
                log.exception("Could not close the connection to volume %s", volume_id)
    finally:
        _delete_attachment(client, attachment_id, volume_id)


def field(record: Any, name: str) -> Any:
    """A field of an API record: cinderclient gives some as dicts, others as objects."""
    return record.get(name) if isinstance(record, dict) else getattr(record, name, None)


def _create_attachment(client: Any, volume_id: str, mode: str, connector: Connector, tries: int, timeout: float) -> Any:
    """An attachment with the connection info; retried while the volume is busy with another transition."""
    exceptions = cinder_exceptions()
    for attempt in range(1, tries + 1):
        try:
            return client.attachments.create(volume_id, connector.properties(), mode=mode)
        except exceptions.NotFound as exc:
            raise VolumeGone(f"Volume {volume_id} does not exist.") from exc
        except exceptions.BadRequest as exc:
            if attempt == tries:
                raise StoreError(f"Could not attach volume {volume_id}: {exc}") from exc
            wait_for(client, volume_id, {"attaching", "detaching", "extending", "reserved"}, timeout)
    raise AssertionError("unreachable")


def _delete_attachment(client: Any, attachment_id: str, volume_id: str) -> None:
    exceptions = cinder_exceptions()
    try:
        client.attachments.delete(attachment_id)
    except exceptions.NotFound:
        pass
    except Exception:
        log.exception("Could not delete attachment %s of volume %s", attachment_id, volume_id)


def detach_all(client: Any, volume_id: str) -> None:
    """Delete every attachment of the volume (a dead writer's, found at recovery)."""
    for attachment in client.attachments.list(search_opts={"volume_id": volume_id}):
        _delete_attachment(client, str(field(attachment, "id")), volume_id)


def retrying(what: str, step: Callable[[], bool], timeout: float) -> None:
    """Call step until it returns True; StoreError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.2
    while not step():
        if time.monotonic() >= deadline:
            raise StoreError(f"Timed out after {timeout:.0f} s {what}.")
        time.sleep(delay)
        delay = min(delay * 2, MAX_POLL)
