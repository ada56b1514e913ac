"""Per-project limits from Keystone's unified limits, read through oslo.limit.

Used when `[DEFAULT] use_keystone_limits = true`, as in Glance: the limits image_size_total and
image_stage_total (MiB), image_count_total and image_count_uploading are registered in Keystone for
the image service's endpoint (`[oslo_limit]` names it and holds the credentials to read them).
A limit Keystone does not know is 0, so nothing is allowed until the operator registers it; -1 is
no limit. Glimpse then enforces them with its own race-free reservations.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from oslo_config import cfg

from glimpse.domain.entities import LIMIT_NAMES, ProjectLimits
from glimpse.errors import LimitsUnavailable

MIB = 1024 * 1024
BYTE_LIMITS = ("image_size_total", "image_stage_total")


@dataclass
class _Cached:
    at: float
    limits: ProjectLimits


class KeystoneLimits:
    """Callable project_id -> ProjectLimits, remembered for `ttl` seconds."""

    def __init__(self, config_files: list[str], ttl: float = 30.0) -> None:
        # oslo.limit reads its options from oslo.config's global object only.
        from oslo_limit import limit

        cfg.CONF([], project="glimpse", default_config_files=config_files, default_config_dirs=[])
        self._enforcer = limit.Enforcer(lambda project_id, resources: {}, cache=False)
        self._ttl = ttl
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def __call__(self, project_id: str) -> ProjectLimits:
        with self._lock:
            hit = self._cache.get(project_id)
            if hit is not None and time.monotonic() - hit.at < self._ttl:
                return hit.limits
        try:
            pairs = dict(self._enforcer.get_project_limits(project_id, list(LIMIT_NAMES)))
        except Exception as exc:  # oslo.limit surfaces openstacksdk and keystoneauth errors unwrapped
            raise LimitsUnavailable(f"Keystone's unified limits could not be read: {exc}") from exc
        values: dict[str, int | None] = {}
        for name in LIMIT_NAMES:
            value = int(pairs.get(name, 0))
            values[name] = None if value < 0 else value * MIB if name in BYTE_LIMITS else value
        limits = ProjectLimits(**values)
        with self._lock:
            self._cache[project_id] = _Cached(time.monotonic(), limits)
        return limits
