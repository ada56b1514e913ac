"""Retention policies: which images of a project or of a family (`os_family`) to keep, and the run that deletes
the rest through the normal image delete, on one node at a time.

A policy covers the images holding data (active or deactivated) of its project, of its family, or of its family
within its project. Its rules:
- keep_newest N: the N newest images it covers are kept. Newest means the latest created_at; images created at
  the same instant are ordered by id (the greater id counts as newer), so every node computes the same set.
- max_age_days D: only images created more than D days ago may go.
With both, an image goes only when both allow it (outside the newest N and older than D days).

Whatever a rule allows, an image stays while it is protected or in use. In use means: another live image names it
in `base_image_ref` (it was built from it), `replacement_image` (the deprecation's successor), `kernel_id` or
`ramdisk_id`; or a member project accepted it (a shared image another project took into use is theirs too: deleting
it would break their builds without their say). Images being uploaded, imported or queued are never touched.

A run holds the `retention` lease: only one node runs at a time; each deletion commits only while that node still
holds the lease (checked in the deletion's own transaction), and it is recorded in the audit log with the policy
as the actor (user `retention-policy:<id>`, policy_id set).
"""

from __future__ import annotations

import builtins
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from glimpse.auth.context import RequestContext
from glimpse.domain import audit
from glimpse.domain.audit_entries import POLICY, Candidate, LeaseFence, RetentionPolicy, fenced
from glimpse.domain.authorization import Authorizer
from glimpse.domain.inputs import check_text
from glimpse.errors import BadRequest, ClaimLost, Conflict, Forbidden, GlimpseError, NotFound

log = logging.getLogger(__name__)

REFERENCE_PROPERTIES = ("base_image_ref", "replacement_image", "kernel_id", "ramdisk_id")
LEASE = "retention"
MAX_KEEP = 100000
MAX_DAYS = 36500


class RetentionRecords(Protocol):
    def policies(self, project_id: str | None = None) -> list[RetentionPolicy]: ...

    def get(self, policy_id: str) -> RetentionPolicy: ...

    def add(self, policy: RetentionPolicy) -> RetentionPolicy: ...

    def delete(self, policy_id: str) -> None: ...

    def candidates(self, policy: RetentionPolicy, reference_properties: Sequence[str]) -> list[Candidate]: ...

    def references(self, image_id: str, reference_properties: Sequence[str]) -> list[str]: ...


class LeaseStore(Protocol):
    def acquire(self, name: str, holder: str, ttl: float) -> LeaseFence | None: ...

    def renew(self, fence: LeaseFence, ttl: float) -> bool: ...

    def release(self, fence: LeaseFence) -> None: ...


ImageDelete = Callable[[RequestContext, str], None]


@dataclass(frozen=True)
class Decision:
    policy_id: str
    image_id: str
    name: str | None
    created_at: datetime
    delete: bool
    reason: str


@dataclass
class RunReport:
    """What a run decided and did; acted is False when another node held the lease."""

    dry_run: bool
    acted: bool = True
    decisions: list[Decision] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    holder: str = ""


def plan(policy: RetentionPolicy, candidates: Iterable[Candidate], now: datetime) -> list[Decision]:
    """Each covered image, newest first, with whether the policy deletes it and why."""
    ordered = sorted(candidates, key=lambda c: (c.created_at, c.id), reverse=True)
    cutoff = now - timedelta(days=policy.max_age_days) if policy.max_age_days is not None else None
    decisions = []
    for rank, image in enumerate(ordered, start=1):
        keep = _kept_because(policy, image, rank, cutoff)
        reason = keep or _deleted_because(policy, rank, cutoff)
        decisions.append(Decision(policy.id, image.id, image.name, image.created_at, keep is None, reason))
    return decisions


def _kept_because(policy: RetentionPolicy, image: Candidate, rank: int, cutoff: datetime | None) -> str | None:
    if policy.keep_newest is not None and rank <= policy.keep_newest:
        return f"one of the {policy.keep_newest} newest (#{rank})"
    if cutoff is not None and image.created_at >= cutoff:
        return f"younger than {policy.max_age_days} days"
    if image.protected:
        return "protected"
    if image.referenced_by:
        return "in use: " + ", ".join(image.referenced_by)
    return None


def _deleted_because(policy: RetentionPolicy, rank: int, cutoff: datetime | None) -> str:
    reasons = []
    if policy.keep_newest is not None:
        reasons.append(f"#{rank} newest, beyond the {policy.keep_newest} kept")
    if cutoff is not None:
        reasons.append(f"older than {policy.max_age_days} days and unreferenced")
    return "; ".join(reasons)


def acting_context(policy: RetentionPolicy, run_id: str) -> RequestContext:
    """Who a policy's deletions are made as: the policy itself, with an administrator's reach."""
    return RequestContext(
        project_id=policy.project_id,
        user_id=f"{audit.POLICY_ACTOR}{policy.id}",
        roles=frozenset({"admin"}),
        request_id=run_id,
        is_admin=True,
    )


class RetentionService:
    def __init__(
        self,
        records: RetentionRecords,
        leases: LeaseStore,
        policy: Authorizer,
        delete_image: ImageDelete,
        holder: str,
        lease_seconds: float = 300.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """delete_image: the normal image delete (recycle bin, delayed delete, events and all)."""
        self.records = records
        self.leases = leases
        self.policy = policy
        self.delete_image = delete_image
        self.holder = holder
        self.lease_seconds = lease_seconds
        self.clock = clock or _utcnow

    # --- managing policies -------------------------------------------------------------------------
    def list(self, ctx: RequestContext) -> builtins.list[RetentionPolicy]:
        self.policy.enforce(ctx, "get_retention_policies", {"project_id": ctx.project_id})
        if ctx.is_admin:
            return self.records.policies()
        return self.records.policies(ctx.project_id) if ctx.project_id else []

    def get(self, ctx: RequestContext, policy_id: str) -> RetentionPolicy:
        check_text(policy_id, "The policy id")
        found = self.records.get(policy_id)
        if not self.policy.check(ctx, "get_retention_policies", {"project_id": found.project_id}):
            raise NotFound(f"No retention policy found with ID {policy_id}")
        return found

    def create(self, ctx: RequestContext, body: Any) -> RetentionPolicy:
        new = parse_policy(body, ctx.user_id)
        self.policy.enforce(ctx, "manage_retention_policy", {"project_id": new.project_id})
        changes = {k: [None, v] for k, v in _fields(new).items() if v is not None}
        with audit.change(ctx, "retention_policy.create", POLICY, new.id, new.project_id, **changes):
            return self.records.add(new)

    def delete(self, ctx: RequestContext, policy_id: str) -> None:
        found = self.get(ctx, policy_id)
        self.policy.enforce(ctx, "manage_retention_policy", {"project_id": found.project_id})
        changes = {k: [v, None] for k, v in _fields(found).items() if v is not None}
        with audit.change(ctx, "retention_policy.delete", POLICY, found.id, found.project_id, **changes):
            self.records.delete(found.id)

    # --- running them ---------------------------------------------------------------------------------
    def run(self, ctx: RequestContext, dry_run: bool = False, policy_id: str | None = None) -> RunReport:
        """Run every policy (or one): a dry run decides and changes nothing; a real run needs the lease."""
        self.policy.enforce(ctx, "run_retention", {"project_id": ctx.project_id})
        return self.run_policies(dry_run, policy_id)

    def run_policies(self, dry_run: bool = False, policy_id: str | None = None) -> RunReport:
        policies = [self.records.get(policy_id)] if policy_id else self.records.policies()
        report = RunReport(dry_run=dry_run, holder=self.holder)
        if dry_run:
            for policy in policies:
                report.decisions += self._plan(policy)
            return report
        fence = self.leases.acquire(LEASE, self.holder, self.lease_seconds)
        if fence is None:
            report.acted = False
            return report
        try:
            with fenced(fence):
                for policy in policies:
                    decisions = self._plan(policy)
                    report.decisions += decisions
                    self._carry_out(policy, decisions, fence, report)
        except ClaimLost as exc:
            log.warning("Retention run stopped: %s", exc.message)
            report.failed["lease"] = exc.message
        finally:
            self.leases.release(fence)
        return report

    def _plan(self, policy: RetentionPolicy) -> builtins.list[Decision]:
        return plan(policy, self.records.candidates(policy, REFERENCE_PROPERTIES), self.clock())

    def _carry_out(
        self, policy: RetentionPolicy, decisions: builtins.list[Decision], fence: LeaseFence, report: RunReport
    ) -> None:
        ctx = acting_context(policy, f"req-retention-{uuid.uuid4()}")
        for decision in decisions:
            if not decision.delete:
                continue
            if not self.leases.renew(fence, self.lease_seconds):
                raise ClaimLost(f"The retention lease of {self.holder} expired; this node stops deleting.")
            users = self.records.references(decision.image_id, REFERENCE_PROPERTIES)
            if users:  # taken into use since the plan was made
                report.failed[decision.image_id] = "in use: " + ", ".join(users)
                continue
            try:
                self.delete_image(ctx, decision.image_id)
            except ClaimLost:
                raise
            except (NotFound, Forbidden, Conflict) as exc:  # deleted, protected or changed meanwhile
                report.failed[decision.image_id] = exc.message
                continue
            except GlimpseError as exc:
                log.warning("Retention policy %s could not delete image %s: %s", policy.id, decision.image_id, exc)
                report.failed[decision.image_id] = exc.message
                continue
            log.info("Retention policy %s deleted image %s (%s)", policy.id, decision.image_id, decision.reason)
            report.deleted.append(decision.image_id)


def _fields(policy: RetentionPolicy) -> dict[str, Any]:
    return {
        "project_id": policy.project_id,
        "os_family": policy.os_family,
        "keep_newest": policy.keep_newest,
        "max_age_days": policy.max_age_days,
    }


def parse_policy(body: Any, created_by: str | None) -> RetentionPolicy:
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object describing the retention policy.")
    unknown = sorted(set(body) - {"project_id", "os_family", "keep_newest", "max_age_days"})
    if unknown:
        raise BadRequest(f"Unknown retention policy attribute(s): {', '.join(unknown)}.")
    project, family = body.get("project_id"), body.get("os_family")
    for value, what in ((project, "project_id"), (family, "os_family")):
        if value is not None and (not isinstance(value, str) or not value or len(value) > 255):
            raise BadRequest(f"{what} must be a non-empty string of at most 255 characters.")
        if isinstance(value, str):
            check_text(value, what)
    if project is None and family is None:
        raise BadRequest("A retention policy needs a project_id, an os_family, or both.")
    keep, days = body.get("keep_newest"), body.get("max_age_days")
    for value, what, low, high in ((keep, "keep_newest", 1, MAX_KEEP), (days, "max_age_days", 1, MAX_DAYS)):
        if value is not None and (type(value) is not int or not low <= value <= high):
            raise BadRequest(f"{what} must be a whole number from {low} to {high}.")
    if keep is None and days is None:
        raise BadRequest("A retention policy needs keep_newest, max_age_days, or both.")
    return RetentionPolicy(str(uuid.uuid4()), project, family, keep, days, created_by)


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
