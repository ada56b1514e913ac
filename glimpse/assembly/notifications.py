"""Glance's notifications: oslo.messaging behind a bounded queue when configured, else no events sent."""

from __future__ import annotations

from typing import Any

from glimpse.config import Settings
from glimpse.domain.notifications import Events
from glimpse.domain.ports import Notifier
from glimpse.errors import ConfigError
from glimpse.extras import missing_message
from glimpse.messaging.queue import QueuedNotifier


def build_notifier(settings: Settings) -> QueuedNotifier | None:
    """Glance's notifications through oslo.messaging when [oslo_messaging_notifications] names a driver."""
    if not settings.notifications.enabled:
        return None
    from glimpse.messaging.oslo import import_oslo_messaging, oslo_sender

    try:
        import_oslo_messaging()  # at start-up, not in the first request's event
    except ImportError as exc:
        raise ConfigError(missing_message("oslo_messaging", "[oslo_messaging_notifications] driver")) from exc

    files, publisher = settings.config_files, settings.notifications.publisher_id
    return QueuedNotifier(lambda: oslo_sender(files, publisher), capacity=settings.notifications.queue_size)


def build_events(settings: Settings) -> Events:
    """The events of one process's use cases: to the configured notifier, or nowhere."""
    notifier = build_notifier(settings)
    return Events(notifier, settings.notifications.disabled) if notifier else Events()


class Fanout:
    """Every event to each notifier in turn (oslo.messaging's queue, the webhook outbox)."""

    def __init__(self, *parts: Notifier) -> None:
        self.parts = parts

    def notify(self, priority: str, event_type: str, payload: dict[str, Any] | str) -> None:
        for part in self.parts:
            part.notify(priority, event_type, payload)


def with_outbox(events: Events, outbox: Notifier | None) -> Events:
    """The same events, also written into the webhook outbox (when webhooks are on)."""
    if outbox is None:
        return events
    notifier = Fanout(events.notifier, outbox) if events.active else outbox
    return Events(notifier, events.disabled)
