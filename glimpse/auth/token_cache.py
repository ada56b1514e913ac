"""Where validated tokens are remembered: in the process, or shared through memcached or Redis.

Entries are keyed by a hash of the token (never the token itself) and expire no later than the token.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any, Protocol

PREFIX = "glimpse-token-"


def cache_key(token: str) -> str:
    return PREFIX + hashlib.sha256(token.encode()).hexdigest()


class TokenCache(Protocol):
    def get(self, token: str) -> dict[str, Any] | None: ...

    def set(self, token: str, value: dict[str, Any], ttl: int) -> None: ...


class InProcessCache:
    def __init__(self, max_entries: int = 10000) -> None:
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._max = max_entries

    def get(self, token: str) -> dict[str, Any] | None:
        key = cache_key(token)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= time.monotonic():
                del self._entries[key]
                return None
            return entry[1]

    def set(self, token: str, value: dict[str, Any], ttl: int) -> None:
        with self._lock:
            if len(self._entries) >= self._max:
                now = time.monotonic()
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                if len(self._entries) >= self._max:
                    self._entries.clear()
            self._entries[cache_key(token)] = (time.monotonic() + ttl, value)


class MemcachedCache:
    def __init__(self, servers: list[str]) -> None:
        from pymemcache.client.hash import HashClient

        nodes = []
        for server in servers:
            host, _, port = server.rpartition(":")
            nodes.append((host or server, int(port) if port.isdigit() else 11211))
        self._client = HashClient(nodes, connect_timeout=1, timeout=1, ignore_exc=True)

    def get(self, token: str) -> dict[str, Any] | None:
        raw = self._client.get(cache_key(token))
        return json.loads(raw) if raw else None

    def set(self, token: str, value: dict[str, Any], ttl: int) -> None:
        self._client.set(cache_key(token), json.dumps(value).encode(), expire=ttl)


class RedisCache:
    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)

    def get(self, token: str) -> dict[str, Any] | None:
        import redis

        try:
            raw = self._client.get(cache_key(token))
        except redis.RedisError:
            return None  # the cache is an optimisation: without it, Keystone answers
        return json.loads(raw) if raw else None

    def set(self, token: str, value: dict[str, Any], ttl: int) -> None:
        import redis

        try:
            self._client.set(cache_key(token), json.dumps(value), ex=ttl)
        except redis.RedisError:
            pass
