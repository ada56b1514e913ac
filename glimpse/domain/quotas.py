"""Quotas: Glance's global caps plus per-project limits an administrator sets.

A project's byte limit is its own image_size_total when set, else the global user_storage_quota
(0 = none). Uploads reserve bytes ahead of the data as it streams, so concurrent uploads on any
number of API processes can never together pass the limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from typing import Any

from glimpse.auth.context import RequestContext
from glimpse.domain.authorization import Authorizer
from glimpse.domain.entities import LIMIT_NAMES, ProjectLimits, ProjectUsage
from glimpse.domain.inputs import INT64_MAX, check_identifier, check_int
from glimpse.domain.ports import QuotaRepository
from glimpse.errors import BadRequest, TooLarge

MIB = 1024 * 1024
RESERVE_STEP = 8 * MIB
BYTE_LIMITS = ("image_size_total", "image_stage_total")  # shown in MiB, as Keystone's unified limits


class QuotaMeter:
    """Passes chunks through, reserving quota ahead of them; TooLarge once a reservation falls short."""

    def __init__(self, chunks: Iterable[bytes], reserve: Callable[[int], int], limit: int, granted: int = 0) -> None:
        self._chunks = chunks
        self._reserve = reserve
        self._limit = limit
        self._granted = granted

    def __iter__(self) -> Iterator[bytes]:
        granted, used = self._granted, 0
        for chunk in self._chunks:
            used += len(chunk)
            while used > granted:
                got = self._reserve(max(RESERVE_STEP, used - granted))
                granted += got
                if got == 0 and used > granted:
                    raise TooLarge(
                        f"Denying attempt to upload image because it exceeds the quota: the project may store "
                        f"{self._limit} bytes."
                    )
            yield chunk


class QuotaService:
    def __init__(
        self,
        repo: QuotaRepository,
        policy: Authorizer,
        user_storage_quota: int,
        external_limits: Callable[[str], ProjectLimits] | None = None,
    ) -> None:
        """external_limits: where limits come from instead of this database (Keystone's unified limits)."""
        self.repo = repo
        self.policy = policy
        self.user_storage_quota = user_storage_quota
        self.external_limits = external_limits

    def effective(self, project_id: str) -> ProjectLimits:
        if self.external_limits is not None:
            return self.external_limits(project_id)  # as Glance: user_storage_quota no longer applies
        limits = self.repo.limits(project_id)
        if limits.image_size_total is None and self.user_storage_quota > 0:
            limits = ProjectLimits(**{**asdict(limits), "image_size_total": self.user_storage_quota})
        return limits

    def metered(
        self,
        image_id: str,
        owner: str | None,
        chunks: Iterable[bytes],
        expected_size: int | None,
        staging: bool = False,
    ) -> Iterable[bytes]:
        """The upload's chunks, counted against the owner's byte limit (and staging limit when `staging`)."""
        if owner is None:
            return chunks
        limits = self.effective(owner)
        limit = limits.image_size_total
        stage_limit = limits.image_stage_total if staging else None
        if limit is None and stage_limit is None:
            return chunks
        shown = min(x for x in (limit, stage_limit) if x is not None)
        granted = 0
        if expected_size:  # the size is announced: reserve it all before any byte is written
            granted = self.repo.reserve(image_id, owner, expected_size, limit, stage_limit)
            if granted < expected_size:
                self.repo.release(image_id)
                raise TooLarge(f"Denying attempt to upload image because it exceeds the quota of {shown} bytes.")

        def reserve(want: int) -> int:
            return self.repo.reserve(image_id, owner, want, limit, stage_limit)

        return QuotaMeter(chunks, reserve, shown, granted)

    def ensure(self, image_id: str, owner: str | None, total: int, staging: bool = False) -> None:
        """Hold at least `total` bytes for the image's import or copy; TooLarge when the limits refuse."""
        if owner is None:
            return
        limits = self.effective(owner)
        limit, stage_limit = limits.image_size_total, limits.image_stage_total if staging else None
        if limit is None and stage_limit is None:
            return
        if not self.repo.reserve_up_to(image_id, owner, total, limit, stage_limit):
            shown = min(x for x in (limit, stage_limit) if x is not None)
            raise TooLarge(
                f"Denying attempt to import image because it exceeds the quota: the project may store {shown} bytes."
            )

    def headroom(self, image_id: str, owner: str | None) -> int | None:
        """Bytes the image's import may still hold (its reservation included); None without a byte limit."""
        if owner is None:
            return None
        limit = self.effective(owner).image_size_total
        return None if limit is None else self.repo.headroom(image_id, owner, limit)

    def metered_import(
        self, image_id: str, owner: str | None, chunks: Iterable[bytes], staging: bool = True
    ) -> Iterator[bytes]:
        """Chunks of data an import brings in, reserved ahead as they stream (so an endless source stops
        at the quota, not at the disk's end): checked at every MiB, so at most a MiB more is ever held."""
        checked, used = -1, 0
        for chunk in chunks:
            used += len(chunk)
            if used > checked:
                checked = used + MIB
                self.ensure(image_id, owner, used, staging)
            yield chunk

    def release(self, image_id: str) -> None:
        self.repo.release(image_id)

    def sweep(self) -> int:
        """Reservations nothing live stands behind (their upload or import died, their image went)."""
        return self.repo.sweep()

    # --- reading and setting limits ------------------------------------------------------------------
    def usage(self, ctx: RequestContext, project_id: str | None = None) -> dict[str, dict[str, int]]:
        """Glance's /v2/info/usage document: each limit with the usage against it (-1: no limit)."""
        project = project_id or ctx.project_id
        if project is None:
            raise BadRequest("A project is needed to report usage.")
        self.policy.enforce(ctx, "get_project_quota", {"project_id": project})
        limits, used = self.effective(project), self.repo.usage(project)
        found = {name: _entry(name, getattr(limits, name), getattr(used, name)) for name in LIMIT_NAMES}
        # Beside Glance's keys, the recycle bin's share (clients print only limit and usage).
        found["image_count_total"]["binned"] = used.image_count_binned
        found["image_size_total"]["binned"] = _in_mib("image_size_total", used.image_size_binned)
        return found

    def list(self, ctx: RequestContext) -> dict[str, dict[str, int | None]]:
        self.policy.enforce(ctx, "set_project_quota", {"project_id": ctx.project_id})
        return {project: _shown(limits) for project, limits in self.repo.all_limits().items()}

    def set(self, ctx: RequestContext, project_id: str, body: Any) -> dict[str, dict[str, int]]:
        check_identifier(project_id, "The project id")
        self.policy.enforce(ctx, "set_project_quota", {"project_id": project_id})
        if self.external_limits is not None:
            raise BadRequest("Limits are Keystone's unified limits here: set them in Keystone.")
        if not isinstance(body, dict) or not set(body) <= set(LIMIT_NAMES):
            raise BadRequest(f"Quota body must be an object with any of {', '.join(LIMIT_NAMES)}.")
        current = asdict(self.repo.limits(project_id))
        for name, value in body.items():
            if value is not None:
                check_int(value, f"{name} (an integer, or null for no limit)", INT64_MAX // MIB)
            current[name] = value * MIB if value is not None and name in BYTE_LIMITS else value
        self.repo.set_limits(project_id, ProjectLimits(**current))
        return self.usage(ctx, project_id)


def _shown(limits: ProjectLimits) -> dict[str, int | None]:
    return {n: _in_mib(n, v) if v is not None else None for n, v in asdict(limits).items()}


def _in_mib(name: str, value: int) -> int:
    return -(-value // MIB) if name in BYTE_LIMITS else value  # round up: a limit is never shown smaller


def _entry(name: str, limit: int | None, used: int) -> dict[str, int]:
    return {"limit": -1 if limit is None else _in_mib(name, limit), "usage": _in_mib(name, used)}


__all__ = ["ProjectUsage", "QuotaMeter", "QuotaService"]
