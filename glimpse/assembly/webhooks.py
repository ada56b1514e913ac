"""Webhooks: the outbox in the configured database, the use cases behind /v2/webhooks, and the sender."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from glimpse.assembly.database import current_engine
from glimpse.assembly.egress import egress_policy
from glimpse.assembly.stores import node_name
from glimpse.auth.policy import Policy
from glimpse.config import Settings
from glimpse.db.session import SessionFactory, make_sessionmaker
from glimpse.db.webhooks import WebhookStore
from glimpse.domain.import_claim import process_name
from glimpse.domain.webhook_delivery import Deliverer, Response, Schedule
from glimpse.domain.webhooks import WebhookEvents, WebhookRules, WebhookService
from glimpse.sources import webhook_post
from glimpse.webhook_worker import WebhookSender

DEFAULT_SOURCE = "urn:glimpse:images"


def source(settings: Settings) -> str:
    return settings.webhooks.source or settings.public_endpoint or DEFAULT_SOURCE


def schedule(settings: Settings) -> Schedule:
    w = settings.webhooks
    return Schedule(w.max_attempts, w.retry_base_delay, w.retry_max_delay, w.delivery_timeout)


def webhook_service(settings: Settings, sessions: SessionFactory, policy: Policy) -> WebhookService:
    egress = egress_policy(settings)

    def check_url(url: str) -> None:
        egress.vet(url)  # the lists and the addresses now; every delivery judges them again, pinned

    rules = WebhookRules(source(settings), settings.webhooks.max_webhooks_per_project)
    return WebhookService(WebhookStore(sessions), policy, check_url, rules)


def webhook_events(settings: Settings, sessions: SessionFactory) -> WebhookEvents | None:
    """The notifier writing events into the outbox; None when webhooks are off."""
    if not settings.webhooks.enabled:
        return None
    return WebhookEvents(WebhookStore(sessions), source(settings))


def deliverer(settings: Settings, sessions: SessionFactory) -> Deliverer:
    policy = webhook_post.webhook_policy(egress_policy(settings), settings.webhooks.delivery_timeout)

    def post(url: str, headers: Mapping[str, str], body: bytes) -> Response:
        status, note = webhook_post.post(policy, url, headers, body)
        return Response(status, note)

    return Deliverer(WebhookStore(sessions), post, schedule(settings), process_name(node_name(settings)))


def webhook_sender(settings: Settings, sessions: SessionFactory) -> WebhookSender | None:
    """The sender of one API process; None when webhooks are off."""
    w = settings.webhooks
    if not w.enabled:
        return None
    return WebhookSender(
        deliverer(settings, sessions), w.concurrency, w.poll_interval, timedelta(hours=w.retention_hours)
    )


def build_webhook_tools(settings: Settings) -> tuple[WebhookService, Deliverer]:
    """`glimpse webhook ...`: the webhooks of the configured database, and a sender for `deliver --once`."""
    sessions = make_sessionmaker(current_engine(settings))
    policy = Policy(settings.policy_file, settings.policy_options)
    return webhook_service(settings, sessions, policy), deliverer(settings, sessions)
