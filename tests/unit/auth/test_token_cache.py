"""Token validations shared through a real memcached or Redis: a forged or tampered entry is never trusted."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pymemcache
import pytest
import redis

from glimpse.assembly.authentication import token_cache
from glimpse.auth.keystone import KeystoneSettings, KeystoneValidator, TokenInfo, _to_cache
from glimpse.auth.token_cache import MemcachedCache, Protection, RedisCache, SharedCache, cache_key
from glimpse.errors import ConfigError
from tests.functional.server import free_port

REDIS_URL = "redis://127.0.0.1:6379/6"  # db 7 and 8 belong to tests/functional/test_keystone.py
SECRET = "s3cr3t-shared-by-the-api-nodes"


class Raw:
    """Direct access to the cache server, as an attacker who can reach it has."""

    def __init__(self, kind: str, port: int = 0) -> None:
        self.kind = kind
        self.redis = redis.Redis.from_url(REDIS_URL) if kind == "redis" else None
        self.memcached = pymemcache.Client(("127.0.0.1", port), default_noreply=False) if kind == "memcached" else None

    def get(self, key: str) -> bytes | None:
        if self.redis:
            return self.redis.get(key)  # type: ignore[return-value]
        for _ in range(50):  # Glimpse writes to memcached without waiting for the reply
            value: bytes | None = self.memcached.get(key)  # type: ignore[union-attr]
            if value is not None:
                return value
            time.sleep(0.02)
        return None

    def set(self, key: str, value: bytes) -> None:
        if self.redis:
            self.redis.set(key, value, ex=60)
        else:
            self.memcached.set(key, value, expire=60)  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def memcached_port() -> Iterator[int]:
    binary = shutil.which("memcached")
    if binary is None:
        pytest.fail("memcached is not installed (scripts/test installs it)")
    port = free_port()
    process = subprocess.Popen([binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-u", "root"])
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    yield port
    process.terminate()
    process.wait(10)


@pytest.fixture(params=["redis", "memcached"])
def backend(request: pytest.FixtureRequest, memcached_port: int) -> tuple[str, int]:
    return request.param, memcached_port


def _cache(backend: tuple[str, int], strategy: str) -> tuple[SharedCache, Raw]:
    kind, port = backend
    protection = Protection(strategy, SECRET if strategy != "none" else None)
    if kind == "redis":
        return RedisCache(REDIS_URL, protection), Raw(kind)
    return MemcachedCache([f"127.0.0.1:{port}"], protection), Raw(kind, port)


class CountingValidator(KeystoneValidator):
    """The real validator and cache; Keystone's answer is a project member (no server needed)."""

    def __init__(self, cache: SharedCache) -> None:
        super().__init__(KeystoneSettings("http://127.0.0.1:9/v3", "http://127.0.0.1:9", "glimpse", "pw", "svc"), cache)
        self.asked = 0

    def _ask_keystone(self, token: str) -> TokenInfo:
        self.asked += 1
        expires = datetime.now(UTC) + timedelta(hours=1)
        return TokenInfo(user_id="u1", project_id="p1", roles=frozenset({"member", "reader"}), expires_at=expires)


def _forged_admin() -> dict[str, Any]:
    expires = datetime.now(UTC) + timedelta(hours=1)
    return _to_cache(TokenInfo("evil", "p1", frozenset({"admin", "member", "reader"}), expires))


@pytest.mark.parametrize("strategy", ["MAC", "encrypt"])
def test_a_forged_admin_entry_is_not_trusted(backend: tuple[str, int], strategy: str) -> None:
    cache, raw = _cache(backend, strategy)
    validator = CountingValidator(cache)
    token = f"tok-{uuid.uuid4().hex}"
    key = cache.protection.key(token)
    # The attacker writes what an unprotected cache would hold, at both the plain and the protected key.
    raw.set(cache_key(token), json.dumps(_forged_admin()).encode())
    raw.set(key, json.dumps(_forged_admin()).encode())
    assert validator.validate(token).roles == {"member", "reader"}
    assert validator.asked == 1
    # The genuine sealed entry is trusted...
    assert validator.validate(token).roles == {"member", "reader"}
    assert validator.asked == 1
    sealed = raw.get(key)
    assert sealed is not None and b"admin" not in sealed
    if strategy == "encrypt":
        # hidden, not only authenticated (names long enough that random ciphertext does not hold them by chance)
        assert b"project_id" not in sealed and b"member" not in sealed
    # ...a tampered one is a miss, validated with Keystone again.
    # MAC: the role in clear text changed; ENCRYPT: one bit of the sealed bytes flipped (a changed byte, always:
    # writing a fixed byte would leave the entry intact whenever the last byte already was that one).
    tampered = sealed.replace(b"member", b"admin\x00") if b"member" in sealed else sealed[:-1] + bytes([sealed[-1] ^ 1])
    assert tampered != sealed
    raw.set(key, tampered)
    assert validator.validate(token).roles == {"member", "reader"}
    assert validator.asked == 2


@pytest.mark.parametrize("strategy", ["mac", "ENCRYPT"])
def test_an_entry_cannot_move_to_another_token(backend: tuple[str, int], strategy: str) -> None:
    cache, raw = _cache(backend, strategy)
    admin_token, user_token = f"adm-{uuid.uuid4().hex}", f"usr-{uuid.uuid4().hex}"
    cache.set(admin_token, _forged_admin(), 60)
    entry = raw.get(cache.protection.key(admin_token))
    assert entry is not None
    raw.set(cache.protection.key(user_token), entry)
    assert cache.get(user_token) is None
    assert cache.get(admin_token) is not None


def test_a_different_secret_does_not_open_entries(backend: tuple[str, int]) -> None:
    cache, _ = _cache(backend, "mac")
    token = f"tok-{uuid.uuid4().hex}"
    cache.set(token, _forged_admin(), 60)
    other = RedisCache(REDIS_URL, Protection("mac", "another")) if backend[0] == "redis" else None
    if other is not None:
        assert other.get(token) is None


def test_without_a_strategy_entries_are_plain_json(backend: tuple[str, int]) -> None:
    cache, raw = _cache(backend, "none")
    token = f"tok-{uuid.uuid4().hex}"
    cache.set(token, {"a": 1}, 60)
    assert json.loads(raw.get(cache_key(token)) or b"") == {"a": 1}


def test_options_are_checked_at_start(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ConfigError, match="needs memcache_secret_key"):
        token_cache({"redis_url": REDIS_URL, "memcache_security_strategy": "MAC"})
    with pytest.raises(ConfigError, match="unknown"):
        token_cache({"redis_url": REDIS_URL, "memcache_security_strategy": "rot13", "memcache_secret_key": "k"})
    with caplog.at_level(logging.WARNING):
        assert isinstance(token_cache({"redis_url": REDIS_URL}), RedisCache)
    assert "without memcache_security_strategy" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        cache = token_cache(
            {"redis_url": REDIS_URL, "memcache_security_strategy": "Encrypt", "memcache_secret_key": "k"}
        )
    assert isinstance(cache, RedisCache) and cache.protection.strategy == "encrypt"
    assert "without memcache_security_strategy" not in caplog.text


class _Answer:
    status_code = 200

    def __init__(self, body: dict[str, Any]) -> None:
        self._body = body

    def json(self) -> dict[str, Any]:
        return {"token": self._body}


def test_scope_and_domains_of_the_token_reach_the_cache_and_back(backend: tuple[str, int]) -> None:
    cache, _ = _cache(backend, "encrypt")
    validator = KeystoneValidator(
        KeystoneSettings("http://127.0.0.1:9/v3", "http://127.0.0.1:9", "glimpse", "pw", "svc"), cache
    )
    expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = {
        "user": {"id": "u1", "domain": {"id": "default"}},
        "system": {"all": True},
        "roles": [{"name": "Admin"}],
        "expires_at": expires,
    }
    validator._session.get = lambda *a, **k: _Answer(body)  # type: ignore[method-assign]
    token = f"tok-{uuid.uuid4().hex}"
    first = validator.validate(token)
    validator._session.get = None  # type: ignore[assignment, method-assign]  # the second answer is the cache's
    second = validator.validate(token)
    for info in (first, second):
        assert (info.system_scope, info.user_domain_id, info.project_id) == ("all", "default", None)
        assert info.roles == {"admin"}
