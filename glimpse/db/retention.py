"""Retention policies and the images they look at, with what still refers to each image."""

from __future__ import annotations

import builtins
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import exists, false, select
from sqlalchemy.orm import Session, selectinload

from glimpse.db.audit_models import RetentionPolicyRow
from glimpse.db.models import ImageRow, MemberRow, PropertyRow, utcnow
from glimpse.db.session import SessionFactory
from glimpse.domain.audit_entries import Candidate, RetentionPolicy
from glimpse.errors import NotFound

HOLDING_DATA = ("active", "deactivated")
CHUNK = 500  # ids per IN list


def _policy(row: RetentionPolicyRow) -> RetentionPolicy:
    return RetentionPolicy(
        id=row.id,
        project_id=row.project_id,
        os_family=row.os_family,
        keep_newest=row.keep_newest,
        max_age_days=row.max_age_days,
        created_by=row.created_by,
        created_at=row.created_at,
    )


class RetentionRecords:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    def policies(self, project_id: str | None = None) -> builtins.list[RetentionPolicy]:
        """Every policy, or those of one project, oldest first."""
        with self._sessions.begin() as s:
            stmt = select(RetentionPolicyRow).order_by(RetentionPolicyRow.created_at, RetentionPolicyRow.id)
            if project_id is not None:
                stmt = stmt.where(RetentionPolicyRow.project_id == project_id)
            return [_policy(row) for row in s.scalars(stmt)]

    def get(self, policy_id: str) -> RetentionPolicy:
        with self._sessions.begin() as s:
            row = s.get(RetentionPolicyRow, policy_id)
            if row is None:
                raise NotFound(f"No retention policy found with ID {policy_id}")
            return _policy(row)

    def add(self, policy: RetentionPolicy) -> RetentionPolicy:
        with self._sessions.begin() as s:
            s.add(
                RetentionPolicyRow(
                    id=policy.id,
                    project_id=policy.project_id,
                    os_family=policy.os_family,
                    keep_newest=policy.keep_newest,
                    max_age_days=policy.max_age_days,
                    created_by=policy.created_by,
                    created_at=utcnow(),
                )
            )
        return self.get(policy.id)

    def delete(self, policy_id: str) -> None:
        with self._sessions.begin() as s:
            row = s.get(RetentionPolicyRow, policy_id)
            if row is None:
                raise NotFound(f"No retention policy found with ID {policy_id}")
            s.delete(row)

    def candidates(self, policy: RetentionPolicy, reference_properties: Sequence[str]) -> builtins.list[Candidate]:
        """The images the policy covers that hold data (active or deactivated), each with what refers to it:
        a live image naming it in one of reference_properties, or a member project that accepted it."""
        with self._sessions.begin() as s:
            stmt = select(ImageRow).where(ImageRow.deleted == false(), ImageRow.status.in_(HOLDING_DATA))
            if policy.project_id is not None:
                stmt = stmt.where(ImageRow.owner == policy.project_id)
            if policy.os_family is not None:
                stmt = stmt.where(
                    exists().where(
                        PropertyRow.image_id == ImageRow.id,
                        PropertyRow.name == "os_family",
                        PropertyRow.value == policy.os_family,
                    )
                )
            stmt = stmt.options(selectinload(ImageRow.properties))  # one query for all, not one per image
            rows = list(s.scalars(stmt.order_by(ImageRow.created_at, ImageRow.id)))
            ids = [row.id for row in rows]
            users = self._referrers(s, ids, reference_properties)
            return [
                Candidate(
                    id=row.id,
                    created_at=row.created_at,
                    status=row.status,
                    protected=row.protected,
                    owner=row.owner,
                    name=row.name,
                    os_family=next((p.value for p in row.properties if p.name == "os_family"), None),
                    referenced_by=tuple(sorted(users.get(row.id, ()))),
                )
                for row in rows
            ]

    @staticmethod
    def _referrers(s: Session, ids: builtins.list[str], names: Sequence[str]) -> dict[str, set[str]]:
        users: dict[str, set[str]] = defaultdict(set)
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            refs = s.execute(
                select(PropertyRow.value, PropertyRow.name, PropertyRow.image_id)
                .join(ImageRow, ImageRow.id == PropertyRow.image_id)
                .where(
                    ImageRow.deleted == false(),
                    PropertyRow.name.in_(names),
                    PropertyRow.value.in_(chunk),
                    PropertyRow.image_id != PropertyRow.value,
                )
            )
            for target, name, referrer in refs:
                users[target].add(f"{name} of image {referrer}")
            members = s.execute(
                select(MemberRow.image_id, MemberRow.member).where(
                    MemberRow.image_id.in_(chunk), MemberRow.status == "accepted"
                )
            )
            for image_id, member in members:
                users[image_id].add(f"accepted by member {member}")
        return users

    def references(self, image_id: str, reference_properties: Sequence[str]) -> builtins.list[str]:
        """What refers to one image now (checked again just before a deletion)."""
        with self._sessions.begin() as s:
            return sorted(self._referrers(s, [image_id], reference_properties).get(image_id, ()))
