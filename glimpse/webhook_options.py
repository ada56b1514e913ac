"""[webhooks]: Glimpse's own options for delivering image and member events to webhooks (Glance has none).

Deliveries obey the egress policy of every server-side fetch ([import_filtering_opts], [egress]); these options
only set how often, how long and how much.
"""

from __future__ import annotations

from dataclasses import dataclass

from oslo_config import cfg

WEBHOOK_OPTS: list[cfg.Opt] = [
    cfg.BoolOpt(
        "enabled",
        default=True,
        help="Write image and member events into the webhook outbox and run a sender in every API process. Off, "
        "the /v2/webhooks API still manages webhooks, but no event is recorded or sent.",
    ),
    cfg.StrOpt(
        "source",
        default="",
        help="The CloudEvents `source` of every event; empty: public_endpoint, else urn:glimpse:images.",
    ),
    cfg.IntOpt("max_attempts", default=10, min=1, help="Attempts per event before it is marked failed."),
    cfg.FloatOpt(
        "retry_base_delay",
        default=2.0,
        min=0.0,
        help="Seconds before the second attempt; the wait doubles after each failure (with jitter).",
    ),
    cfg.FloatOpt("retry_max_delay", default=600.0, min=0.0, help="The longest wait between two attempts, seconds."),
    cfg.FloatOpt(
        "delivery_timeout",
        default=10.0,
        min=0.5,
        help="Seconds one attempt may last, connection to answer; a receiver still busy then has failed it. A "
        "sender's lease on an event is twice this plus 5 seconds: after it, another node sends the event.",
    ),
    cfg.IntOpt("concurrency", default=4, min=1, max=64, help="Deliveries one API process sends at once."),
    cfg.FloatOpt("poll_interval", default=1.0, min=0.05, help="Seconds between looks for due events when idle."),
    cfg.IntOpt(
        "retention_hours",
        default=168,
        min=1,
        help="Hours delivered and failed events stay in the outbox (the delivery log) before they are purged.",
    ),
    cfg.IntOpt(
        "max_webhooks_per_project",
        default=10,
        min=-1,
        help="Webhooks one project may have (also the number of global ones); -1: no limit.",
    ),
]


@dataclass(frozen=True)
class WebhookSettings:
    enabled: bool = True
    source: str = ""
    max_attempts: int = 10
    retry_base_delay: float = 2.0
    retry_max_delay: float = 600.0
    delivery_timeout: float = 10.0
    concurrency: int = 4
    poll_interval: float = 1.0
    retention_hours: int = 168
    max_webhooks_per_project: int = 10


def webhook_settings(section: cfg.ConfigOpts.GroupAttr) -> WebhookSettings:
    return WebhookSettings(**{opt.dest: section[opt.dest] for opt in WEBHOOK_OPTS})
