"""Image statuses, visibilities and formats.

Status changes are not checked against a table here: each one is a compare-and-swap update in the
repository (ImageRepository.transition, begin_upload, activate) from the one status it may start from.
"""

from __future__ import annotations

STATUSES = (
    "queued",
    "saving",
    "uploading",
    "importing",
    "active",
    "deactivated",
    "killed",
    "pending_delete",
    "deleted",
)

VISIBILITIES = ("community", "public", "private", "shared")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
