"""Webhooks: a project's receivers of its image and member events (an administrator's global ones get every
project's), and the notifier that puts each event into the outbox for them.

The outbox row is written right after the change it reports commits, by the use case's thread, before the
request answers; a process killed in between (a few milliseconds, no network in between) loses that one event.
A database that fails at that moment loses it too, and the line in the log says which. Once written, the
outbox keeps the event until it is delivered or its retries are spent, across crashes and restarts.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from glimpse.auth.context import RequestContext
from glimpse.domain.authorization import Authorizer
from glimpse.domain.inputs import check_text
from glimpse.domain.webhook_delivery import TEST_EVENT, encode, envelope, new_event_id
from glimpse.domain.webhook_entities import Delivery, OutgoingEvent, Webhook, WebhookRepository
from glimpse.errors import BadRequest, NotFound, TooLarge

log = logging.getLogger(__name__)

# The events a webhook may ask for: Glance's image and member notifications, by type or group.
EVENT_TYPES = (
    "image.create", "image.update", "image.upload", "image.activate", "image.prepare", "image.delete",
    "image.send", "image.member.create", "image.member.update", "image.member.delete",
)  # fmt: skip
GROUPS = ("image", "image.member")
FIELDS = frozenset({"url", "secret", "events", "description", "enabled", "global", "project_id"})
MUTABLE = frozenset({"url", "secret", "events", "description", "enabled"})
MIN_SECRET, MAX_SECRET = 16, 255


@dataclass(frozen=True)
class WebhookRules:
    source: str  # the CloudEvents source of every event
    max_per_project: int = 10
    deliveries_shown: int = 100


# Judges a receiver's URL now (scheme, host, port, the addresses it resolves to); BadRequest when refused.
UrlCheck = Callable[[str], None]


class WebhookEvents:
    """The Notifier that writes image and member events into the outbox, as CloudEvents documents."""

    def __init__(self, repo: WebhookRepository, source: str) -> None:
        self.repo = repo
        self.source = source

    def notify(self, priority: str, event_type: str, payload: dict[str, Any] | str) -> None:
        if not isinstance(payload, dict) or not event_type.startswith("image."):
            return  # an upload's error carries a message alone; task.* events are not offered
        image_id = str(payload.get("image_id") or payload.get("id") or "")
        projects = [str(p) for p in (payload.get("owner"), payload.get("owner_id"), payload.get("member_id")) if p]
        event_id = new_event_id()
        body = encode(envelope(event_id, self.source, event_type, image_id, payload))
        try:
            self.repo.enqueue(OutgoingEvent(event_id, event_type, image_id, body), projects, image_id or None)
        except Exception:  # the change itself committed: its request must not fail for its event
            log.exception("The %s event %s of image %s could not be written to the webhook outbox; it is lost",
                          event_type, event_id, image_id)  # fmt: skip


class WebhookService:
    def __init__(self, repo: WebhookRepository, policy: Authorizer, check_url: UrlCheck, rules: WebhookRules) -> None:
        self.repo = repo
        self.policy = policy
        self.check_url = check_url
        self.rules = rules

    @staticmethod
    def _target(project_id: str | None) -> dict[str, Any]:
        return {"project_id": project_id}

    def _visible(self, ctx: RequestContext, webhook_id: str, rule: str) -> Webhook:
        """The webhook, if the caller may see it and `rule` allows; another project's is NotFound."""
        check_text(webhook_id, "The webhook id")
        webhook = self.repo.get(webhook_id)
        if not (ctx.is_admin or (webhook.project_id is not None and ctx.owns(webhook.project_id))):
            raise NotFound(f"No webhook found with ID {webhook_id}")
        self.policy.enforce(ctx, rule, self._target(webhook.project_id))
        return webhook

    def list(self, ctx: RequestContext) -> builtins.list[Webhook]:
        self.policy.enforce(ctx, "get_webhooks", self._target(ctx.project_id))
        return self.repo.list(ctx.project_id, every=ctx.is_admin)

    def get(self, ctx: RequestContext, webhook_id: str) -> Webhook:
        return self._visible(ctx, webhook_id, "get_webhook")

    def create(self, ctx: RequestContext, body: Any) -> Webhook:
        fields = _fields(body, FIELDS)
        if "url" not in fields or "secret" not in fields:
            raise BadRequest("A webhook needs a url and a secret.")
        project_id = _owner(ctx, fields)
        self.policy.enforce(ctx, "add_webhook" if project_id else "add_global_webhook", self._target(project_id))
        if self.rules.max_per_project >= 0 and self.repo.count(project_id) >= self.rules.max_per_project:
            raise TooLarge(f"Maximum number of webhooks exceeded (limit {self.rules.max_per_project}).")
        now = datetime.now(UTC).replace(tzinfo=None)
        webhook = Webhook(
            id=new_event_id(), project_id=project_id, url="", secret="", events=(), description="", enabled=True,
            created_at=now, updated_at=now,
        )  # fmt: skip
        return self.repo.add(self._changed(webhook, fields))

    def update(self, ctx: RequestContext, webhook_id: str, body: Any) -> Webhook:
        webhook = self._visible(ctx, webhook_id, "modify_webhook")
        changed = self._changed(webhook, _fields(body, MUTABLE))
        return self.repo.save(replace(changed, updated_at=datetime.now(UTC).replace(tzinfo=None)))

    def delete(self, ctx: RequestContext, webhook_id: str) -> None:
        self._visible(ctx, webhook_id, "delete_webhook")
        self.repo.delete(webhook_id)

    def deliveries(self, ctx: RequestContext, webhook_id: str, limit: int | None = None) -> builtins.list[Delivery]:
        webhook = self._visible(ctx, webhook_id, "get_webhook")
        shown = self.rules.deliveries_shown if limit is None else max(1, min(limit, self.rules.deliveries_shown))
        return self.repo.deliveries(webhook.id, shown)

    def send_test(self, ctx: RequestContext, webhook_id: str) -> str:
        """Queue a test event for this webhook alone; returns its id (the delivery log shows how it went)."""
        webhook = self._visible(ctx, webhook_id, "test_webhook")
        event_id = new_event_id()
        data = {"webhook_id": webhook.id, "message": "A test event of the image service."}
        body = encode(envelope(event_id, self.rules.source, TEST_EVENT, webhook.id, data))
        self.repo.enqueue_for(webhook.id, OutgoingEvent(event_id, TEST_EVENT, webhook.id, body))
        return event_id

    def _changed(self, webhook: Webhook, fields: dict[str, Any]) -> Webhook:
        if "url" in fields:
            url = _text(fields["url"], "url", 2048)
            self.check_url(url)
            webhook = replace(webhook, url=url)
        if "secret" in fields:
            secret = _text(fields["secret"], "secret", MAX_SECRET)
            if len(secret) < MIN_SECRET:
                raise BadRequest(f"The secret must be at least {MIN_SECRET} characters long.")
            webhook = replace(webhook, secret=secret)
        if "events" in fields:
            webhook = replace(webhook, events=_events(fields["events"]))
        if "description" in fields:
            webhook = replace(webhook, description=_text(fields["description"], "description", 255, empty=True))
        if "enabled" in fields:
            if not isinstance(fields["enabled"], bool):
                raise BadRequest("enabled must be true or false.")
            webhook = replace(webhook, enabled=fields["enabled"])
        return webhook


def _fields(body: Any, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(f"Unknown or read-only webhook attributes: {', '.join(unknown)}.")
    return body


def _owner(ctx: RequestContext, fields: dict[str, Any]) -> str | None:
    """The project a new webhook belongs to: the caller's, another one an admin names, or none (global)."""
    if fields.get("global", False) is True:
        if "project_id" in fields:
            raise BadRequest("A global webhook belongs to no project: give global or project_id, not both.")
        return None
    if fields.get("global", False) is not False:
        raise BadRequest("global must be true or false.")
    if "project_id" in fields:
        return _text(fields["project_id"], "project_id", 255)
    if not ctx.project_id:
        raise BadRequest("The caller has no project: give a project_id, or global true for every project's events.")
    return ctx.project_id


def _text(value: Any, name: str, limit: int, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise BadRequest(f"{name} must be a non-empty string.")
    if len(value) > limit:
        raise BadRequest(f"{name} is longer than {limit} characters.")
    return check_text(value, f"The {name}")


def _events(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or len(value) > 32:
        raise BadRequest("events must be a list of event types (image.update) or groups (image, image.member).")
    unknown = sorted(set(value) - set(EVENT_TYPES) - set(GROUPS))
    if unknown:
        raise BadRequest(f"Unknown event types: {', '.join(unknown)}; known: {', '.join(GROUPS + EVENT_TYPES)}.")
    return tuple(dict.fromkeys(value))
