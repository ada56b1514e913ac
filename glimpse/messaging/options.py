"""Glance's notification options, declared as oslo.messaging and Glance declare them.

Glimpse reads them to decide whether and what to send; oslo.messaging itself reads the operator's files for
the rest ([oslo_messaging_rabbit], the transport URL), so every option it knows works as it does in Glance.
"""

from __future__ import annotations

from dataclasses import dataclass

from oslo_config import cfg

NOTIFIER_DEFAULT_OPTS: list[cfg.Opt] = [
    cfg.StrOpt(
        "default_publisher_id",
        default="image.localhost",
        help="publisher_id of the notifications sent, as Glance's (image.<host> is usual).",
    ),
    cfg.ListOpt(
        "disabled_notifications",
        default=[],
        help="Notifications not sent: event types (image.update) or groups (image, image.member, task).",
    ),
    cfg.StrOpt(
        "transport_url",
        default="rabbit://",
        secret=True,
        help="The message bus (oslo.messaging's URL) when [oslo_messaging_notifications] names none.",
    ),
    cfg.StrOpt(
        "control_exchange",
        default="glance",
        help="Exchange the notification topics live in (Glance sets glance).",
    ),
]
NOTIFICATIONS_OPTS: list[cfg.Opt] = [
    cfg.MultiStrOpt(
        "driver",
        default=[],
        deprecated_opts=[cfg.DeprecatedOpt("notification_driver", group="DEFAULT")],
        help="oslo.messaging notification drivers: messagingv2 (or messaging) to a bus, log, routing, noop. None "
        "sends nothing.",
    ),
    cfg.StrOpt("transport_url", secret=True, help="The bus for notifications; [DEFAULT] transport_url if unset."),
    cfg.ListOpt(
        "topics",
        default=["notifications"],
        deprecated_opts=[cfg.DeprecatedOpt("notification_topics", group="DEFAULT")],
        help="Topics the notifications are sent to.",
    ),
    cfg.IntOpt("retry", default=-1, help="Attempts to resend a notification the bus refused; -1: until it works."),
    cfg.IntOpt(
        "queue_size",
        default=10000,
        min=1,
        help="Notifications a process keeps while the bus is slow or away; past it new ones are dropped, counted "
        "and logged (Glimpse's own: Glance sends from the request itself).",
    ),
]


@dataclass(frozen=True)
class NotificationSettings:
    drivers: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()
    publisher_id: str = "image.localhost"
    queue_size: int = 10000

    @property
    def enabled(self) -> bool:
        return any(d != "noop" for d in self.drivers)


def notification_settings(conf: cfg.ConfigOpts) -> NotificationSettings:
    section = conf.oslo_messaging_notifications
    return NotificationSettings(
        drivers=tuple(d for d in section.driver if d),
        disabled=tuple(d.strip() for d in conf.disabled_notifications if d.strip()),
        publisher_id=conf.default_publisher_id,
        queue_size=section.queue_size,
    )
