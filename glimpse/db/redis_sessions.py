"""Dashboard sessions in Redis ([dashboard] session_backend = redis), for deployments that keep them out of the
database (domain/session_records.py:SessionStore).

Each session is one key expiring with the session; a sorted set (scored by expiry) lists them for the admin's
page and the sweep, and one set per user (id and name) finds a user's sessions to revoke.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from glimpse.domain.session_records import StoredSession

PREFIX = "glimpse:dashboard:"


def _stamp(value: datetime) -> float:
    return value.replace(tzinfo=UTC).timestamp()


def _naive(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, UTC).replace(tzinfo=None)


def _encode(session: StoredSession) -> str:
    return json.dumps(
        {
            "data": session.data,
            "expires_at": _stamp(session.expires_at),
            "created_at": _stamp(session.created_at),
            "user": [session.user_id, session.user_name, session.project_id, session.project_name],
        }
    )


def _decode(key: str, raw: Any) -> StoredSession:
    found = json.loads(raw)
    user_id, user_name, project_id, project_name = found["user"]
    return StoredSession(
        key, found["data"], _naive(found["expires_at"]), _naive(found["created_at"]),
        user_id, user_name, project_id, project_name,
    )  # fmt: skip


class RedisSessions:
    def __init__(self, url: str, prefix: str = PREFIX) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, decode_responses=True)
        self._prefix = prefix
        self._index = prefix + "sessions"

    def get(self, key: str) -> StoredSession | None:
        raw = self._redis.get(self._prefix + "s:" + key)
        return _decode(key, raw) if raw else None  # Redis forgets it at its expiry

    def put(self, session: StoredSession) -> None:
        expires = _stamp(session.expires_at)
        pipe = self._redis.pipeline()
        pipe.set(self._prefix + "s:" + session.key, _encode(session), pxat=max(1, int(expires * 1000)))
        pipe.zadd(self._index, {session.key: expires})
        for user in {session.user_id, session.user_name} - {None}:
            pipe.sadd(f"{self._prefix}u:{user}", session.key)
            pipe.expireat(f"{self._prefix}u:{user}", int(expires) + 1, gt=True)  # lasts as long as its last session
            pipe.expireat(f"{self._prefix}u:{user}", int(expires) + 1, nx=True)
        pipe.execute()

    def delete(self, key: str) -> bool:
        pipe = self._redis.pipeline()
        pipe.delete(self._prefix + "s:" + key)
        pipe.zrem(self._index, key)
        return bool(pipe.execute()[0])

    def delete_user(self, user: str) -> int:
        keys = self._redis.smembers(f"{self._prefix}u:{user}")
        self._redis.delete(f"{self._prefix}u:{user}")
        return sum(self.delete(str(key)) for key in keys)

    def active(self) -> list[StoredSession]:
        keys: list[str] = self._redis.zrangebyscore(self._index, time.time(), "+inf")  # type: ignore[assignment]
        if not keys:
            return []
        values = self._redis.mget([self._prefix + "s:" + k for k in keys])
        found = [_decode(k, raw) for k, raw in zip(keys, values, strict=True) if raw]
        return sorted((s for s in found if s.user_name), key=lambda s: s.created_at)

    def sweep(self) -> int:
        return int(self._redis.zremrangebyscore(self._index, "-inf", time.time()))
