from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from glimpse.auth.context import RequestContext
from glimpse.domain.entities import Image
from glimpse.domain.notifications import Events, image_payload


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []

    def notify(self, priority: str, event_type: str, payload: dict[str, Any] | str) -> None:
        self.sent.append((priority, event_type, payload))


IMAGE = Image(
    id="i1", owner="p1", name="n", status="active", visibility="public", size=10, checksum="c",
    created_at=datetime(2024, 1, 2, 3, 4, 5, 678, tzinfo=UTC), tags=["a"], properties={"os_distro": "debian"},
)  # fmt: skip


def test_the_image_payload_is_glances_without_locations() -> None:
    payload = image_payload(IMAGE)
    assert payload["created_at"] == "2024-01-02T03:04:05Z"
    assert payload["is_public"] is True and payload["deleted"] is False and payload["deleted_at"] is None
    assert payload["properties"] == {"os_distro": "debian"} and "locations" not in payload


def test_disabled_types_and_groups_are_matched_by_dotted_prefix() -> None:
    recorder = Recorder()
    events = Events(recorder, ["image.update", "image.member", "task"])
    for event_type in ("image.create", "image.update", "image.member.create", "task.success", "image.membership"):
        events.send(event_type, {})
    assert [e for _, e, _ in recorder.sent] == ["image.create", "image.membership"]
    assert not Events().wants("image.create")  # no notifier: nothing is even built


def test_image_send_tells_what_was_sent_and_errors_when_short() -> None:
    recorder = Recorder()
    events = Events(recorder)
    ctx = RequestContext(project_id="p2", user_id="u2", remote_address="10.0.0.9")
    assert b"".join(events.sending(iter([b"12345", b"67890"]), IMAGE, ctx, 10)) == b"1234567890"
    partial = events.sending(iter([b"12345", b"67890"]), IMAGE, ctx, 10)
    next(partial)
    partial.close()  # type: ignore[attr-defined]  (the client went away)
    assert recorder.sent == [
        ("info", "image.send", {"bytes_sent": 10, "image_id": "i1", "owner_id": "p1", "receiver_tenant_id": "p2",
                                "receiver_user_id": "u2", "destination_ip": "10.0.0.9"}),
        ("error", "image.send", {"bytes_sent": 5, "image_id": "i1", "owner_id": "p1", "receiver_tenant_id": "p2",
                                 "receiver_user_id": "u2", "destination_ip": "10.0.0.9"}),
    ]  # fmt: skip
