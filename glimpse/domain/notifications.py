"""The events Glance sends (image.*, image.member.*, task.*), with Glance's payloads, through the Notifier port.

Payloads never carry locations (they may hold credentials) nor a task's input, as in Glance. Which events go
out is the operator's `disabled_notifications`: an event type (image.update) or a group (image, image.member,
task). Glance's code compares only the first dotted part with a group, so its documented image.member group
disables nothing there; here any dotted prefix is a group, as Glance's documentation describes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from glimpse.auth.context import RequestContext
from glimpse.domain.entities import Image, Member, Task
from glimpse.domain.ports import Notifier
from glimpse.filespan import FileSpan

# The server-kept properties an upload's image.prepare and image.upload report as lists (domain/imports.py).
_IMPORT_LISTS = ("os_glance_importing_to_stores", "os_glance_failed_import")


class NullNotifier:
    """No [oslo_messaging_notifications] driver: events go nowhere."""

    def notify(self, priority: str, event_type: str, payload: dict[str, Any] | str) -> None:
        return None


def isotime(value: datetime | None = None) -> str:
    """Glance's notification timestamps: second precision, UTC, a Z; now when no time is given."""
    return (value or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_payload(image: Image) -> dict[str, Any]:
    return {
        "id": image.id,
        "name": image.name,
        "status": image.status,
        "created_at": isotime(image.created_at),
        "updated_at": isotime(image.updated_at),
        "min_disk": image.min_disk,
        "min_ram": image.min_ram,
        "protected": image.protected,
        "checksum": image.checksum,
        "owner": image.owner,
        "disk_format": image.disk_format,
        "container_format": image.container_format,
        "size": image.size,
        "virtual_size": image.virtual_size,
        "is_public": image.visibility == "public",
        "visibility": image.visibility,
        "properties": dict(image.properties),
        "tags": list(image.tags),
        "deleted": False,
        "deleted_at": None,
    }


def member_payload(member: Member) -> dict[str, Any]:
    return {
        "image_id": member.image_id,
        "member_id": member.member_id,
        "status": member.status,
        "created_at": isotime(member.created_at),
        "updated_at": isotime(member.updated_at),
        "deleted": False,
        "deleted_at": None,
    }


def task_payload(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "type": task.type,
        "status": task.status,
        "result": None,
        "owner": task.owner,
        "message": None,
        "expires_at": isotime(task.expires_at),
        "created_at": isotime(task.created_at),
        "updated_at": isotime(task.updated_at),
        "deleted": False,
        "deleted_at": None,
    }


def import_lists(image: Image) -> dict[str, list[str]]:
    """os_glance_importing_to_stores and os_glance_failed_import as the lists image.prepare/upload carry."""
    return {key: [s for s in image.properties.get(key, "").split(",") if s] for key in _IMPORT_LISTS}


class Events:
    """What the use cases call to tell the world; one instance per process, shared by every use case."""

    def __init__(self, notifier: Notifier | None = None, disabled: Iterable[str] = ()) -> None:
        self.notifier: Notifier = notifier or NullNotifier()
        self.disabled = frozenset(disabled)
        self.active = not isinstance(self.notifier, NullNotifier)

    def wants(self, event_type: str) -> bool:
        """Whether the event would go out: a caller may skip the reads only a payload needs."""
        if not self.active:
            return False
        parts = event_type.split(".")
        return not any(".".join(parts[:n]) in self.disabled for n in range(1, len(parts) + 1))

    def send(self, event_type: str, payload: dict[str, Any] | str, priority: str = "info") -> None:
        if self.wants(event_type):
            self.notifier.notify(priority, event_type, payload)

    def image(self, event_type: str, image: Image, **extra: Any) -> None:
        if self.wants(event_type):
            self.send(event_type, {**image_payload(image), **extra})

    def image_deleted(self, image: Image, status: str = "deleted") -> None:
        if self.wants("image.delete"):
            deleted = {**image_payload(image), "status": status, "deleted": True, "deleted_at": isotime()}
            self.send("image.delete", deleted)

    def upload_failed(self, image_id: str, message: str) -> None:
        """Glance's error-priority image.upload: its payload is the message alone."""
        self.send("image.upload", f"Failed to upload image data for image {image_id}: {message}", "error")

    def member(self, event_type: str, member: Member, deleted: bool = False) -> None:
        if self.wants(event_type):
            gone = {"deleted": True, "deleted_at": isotime()} if deleted else {}
            self.send(event_type, {**member_payload(member), **gone})

    def task(self, event_type: str, task: Task) -> None:
        if self.wants(event_type):
            self.send(event_type, task_payload(task))

    def sending(self, chunks: Iterator[bytes], image: Image, ctx: RequestContext, expected: int) -> Iterator[bytes]:
        """The download's bytes, then image.send: info when every expected byte went out, error otherwise
        (the client went away, or the store failed half-way)."""
        if not self.wants("image.send"):
            return chunks
        if isinstance(chunks, FileSpan):  # unwrapped, so the server may send the file itself: the span says how much
            chunks.when_closed(lambda sent: self._sent(image, ctx, expected, sent))
            return chunks
        return self._counted(chunks, image, ctx, expected)

    def _counted(self, chunks: Iterator[bytes], image: Image, ctx: RequestContext, expected: int) -> Iterator[bytes]:
        sent = 0
        try:
            for chunk in chunks:
                sent += len(chunk)
                yield chunk
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            self._sent(image, ctx, expected, sent)

    def _sent(self, image: Image, ctx: RequestContext, expected: int, sent: int) -> None:
        payload = {
            "bytes_sent": sent,
            "image_id": image.id,
            "owner_id": image.owner,
            "receiver_tenant_id": ctx.project_id,
            "receiver_user_id": ctx.user_id,
            "destination_ip": ctx.remote_address,
        }
        self.send("image.send", payload, "info" if sent == expected else "error")
