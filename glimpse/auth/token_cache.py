"""Where validated tokens are remembered: in the process, or shared through memcached or Redis.

Entries are keyed by a hash of the token (never the token itself) and expire no later than the token.
A shared cache is writable by whoever reaches memcached or Redis, so with keystonemiddleware's
memcache_security_strategy each entry is bound to its token and to memcache_secret_key: MAC
authenticates it, ENCRYPT also hides it (AES-GCM). An entry that fails the check is a cache miss.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
import time
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

log = logging.getLogger(__name__)

PREFIX = "glimpse-token-"
STRATEGIES = ("none", "mac", "encrypt")
_MAC_TAG = b"mac1:"
_ENC_TAG = b"enc1:"


def cache_key(token: str) -> str:
    return PREFIX + hashlib.sha256(token.encode()).hexdigest()


class TokenCache(Protocol):
    def get(self, token: str) -> dict[str, Any] | None: ...

    def set(self, token: str, value: dict[str, Any], ttl: int) -> None: ...


def normalize_strategy(strategy: str | None, secret: str | None) -> str:
    """keystonemiddleware's rule: None, MAC or ENCRYPT (any case); MAC and ENCRYPT need a secret key."""
    name = (strategy or "none").strip().lower()
    if name not in STRATEGIES:
        raise ValueError(f"memcache_security_strategy = {strategy} is unknown: use None, MAC or ENCRYPT.")
    if name != "none" and not secret:
        raise ValueError(f"memcache_security_strategy = {strategy} needs memcache_secret_key.")
    return name


class Protection:
    """How one entry is keyed and sealed: the keys are derived from the secret and the token, so an entry
    cannot be forged without the secret, nor moved to another token's key."""

    def __init__(self, strategy: str = "none", secret: str | None = None) -> None:
        self.strategy = normalize_strategy(strategy, secret)
        self._secret = (secret or "").encode()

    def _derive(self, token: str) -> tuple[str, bytes, bytes]:
        material = HKDF(
            algorithm=hashes.SHA256(),
            length=96,
            salt=self._secret,
            info=b"glimpse-token-cache:" + self.strategy.encode(),
        ).derive(token.encode())
        return PREFIX + self.strategy + "-" + material[:32].hex(), material[32:64], material[64:]

    def key(self, token: str) -> str:
        return cache_key(token) if self.strategy == "none" else self._derive(token)[0]

    def seal(self, token: str, value: dict[str, Any]) -> bytes:
        payload = json.dumps(value).encode()
        if self.strategy == "none":
            return payload
        key, mac_key, enc_key = self._derive(token)
        if self.strategy == "mac":
            return _MAC_TAG + hmac.new(mac_key, payload, hashlib.sha256).digest() + payload
        nonce = os.urandom(12)
        return _ENC_TAG + nonce + AESGCM(enc_key).encrypt(nonce, payload, key.encode())

    def open(self, token: str, raw: bytes) -> dict[str, Any] | None:
        """The entry's value, or None when it is not one this service sealed for this token."""
        if self.strategy == "none":
            payload: bytes | None = raw
        else:
            key, mac_key, enc_key = self._derive(token)
            payload = None
            if self.strategy == "mac" and raw.startswith(_MAC_TAG):
                tag, body = raw[len(_MAC_TAG) : len(_MAC_TAG) + 32], raw[len(_MAC_TAG) + 32 :]
                if hmac.compare_digest(tag, hmac.new(mac_key, body, hashlib.sha256).digest()):
                    payload = body
            elif self.strategy == "encrypt" and raw.startswith(_ENC_TAG):
                nonce, sealed = raw[len(_ENC_TAG) : len(_ENC_TAG) + 12], raw[len(_ENC_TAG) + 12 :]
                try:
                    payload = AESGCM(enc_key).decrypt(nonce, sealed, key.encode())
                except InvalidTag:
                    payload = None
        if payload is None:
            log.warning("A shared token cache entry failed its %s check; it is ignored.", self.strategy.upper())
            return None
        try:
            value = json.loads(payload)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


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


class SharedCache:
    """A cache other processes (and whoever can reach the server) read and write."""

    def __init__(self, protection: Protection | None = None) -> None:
        self.protection = protection or Protection()

    def _get(self, key: str) -> bytes | None:
        raise NotImplementedError()  # pragma: no cover

    def _set(self, key: str, raw: bytes, ttl: int) -> None:
        raise NotImplementedError()  # pragma: no cover

    def get(self, token: str) -> dict[str, Any] | None:
        raw = self._get(self.protection.key(token))
        return self.protection.open(token, raw) if raw else None

    def set(self, token: str, value: dict[str, Any], ttl: int) -> None:
        self._set(self.protection.key(token), self.protection.seal(token, value), ttl)


class MemcachedCache(SharedCache):
    def __init__(self, servers: list[str], protection: Protection | None = None) -> None:
        super().__init__(protection)
        from pymemcache.client.hash import HashClient

        nodes = []
        for server in servers:
            host, _, port = server.rpartition(":")
            nodes.append((host or server, int(port) if port.isdigit() else 11211))
        self._client = HashClient(nodes, connect_timeout=1, timeout=1, ignore_exc=True)

    def _get(self, key: str) -> bytes | None:
        raw = self._client.get(key)
        return bytes(raw) if raw else None

    def _set(self, key: str, raw: bytes, ttl: int) -> None:
        self._client.set(key, raw, expire=ttl)


class RedisCache(SharedCache):
    def __init__(self, url: str, protection: Protection | None = None) -> None:
        super().__init__(protection)
        import redis

        self._client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)

    def _get(self, key: str) -> bytes | None:
        import redis

        try:
            raw = self._client.get(key)
        except redis.RedisError:
            return None  # the cache is an optimisation: without it, Keystone answers
        return raw if isinstance(raw, bytes) and raw else None  # redis-py types get() as sync or async

    def _set(self, key: str, raw: bytes, ttl: int) -> None:
        import redis

        try:
            self._client.set(key, raw, ex=ttl)
        except redis.RedisError:
            pass
