"""The image entity and its lifecycle: a transition table and one function that applies it."""

from __future__ import annotations

from glimpse.errors import Conflict

STATUS_TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"saving", "uploading", "importing", "active", "deleted"}),
    "saving": frozenset({"active", "killed", "queued", "deleted"}),
    "uploading": frozenset({"importing", "queued", "deleted"}),
    "importing": frozenset({"active", "queued", "killed", "deleted"}),
    "active": frozenset({"deactivated", "pending_delete", "deleted"}),
    "deactivated": frozenset({"active", "deleted"}),
    "killed": frozenset({"deleted"}),
    "pending_delete": frozenset({"deleted"}),
    "deleted": frozenset(),
}
STATUSES = tuple(STATUS_TRANSITIONS)

VISIBILITIES = ("community", "public", "private", "shared")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")


def check_transition(image_id: str, current: str, target: str) -> None:
    if target not in STATUS_TRANSITIONS[current]:
        raise Conflict(f"Image {image_id} cannot go from status {current} to {target}.")
