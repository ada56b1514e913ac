"""Fetching a URL under the egress policy: pinned connections, checked redirects, a deadline, a minimum rate.

httpx does the HTTP; the network layer underneath is ours. `_PinnedBackend` resolves the host once,
lets the policy judge every address, and connects to one of exactly those addresses (the URL's host
name still goes into the Host header and into TLS as SNI and for the certificate check). Every read
goes through `_GuardedStream`, which cuts the transfer when the whole fetch outlives its deadline or
when the server delivers less than `min_rate` bytes per second of waiting over `rate_window` seconds.
Only the time spent waiting on the server counts towards the rate, so a slow consumer downstream
(a store, a client downloading) never makes the source look slow.

httpx is imported when the first fetch happens, not by every API process.
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from glimpse.errors import BadRequest, TooLarge
from glimpse.sources.egress import DEFAULT_PORTS, EgressPolicy, Limits, Target

if TYPE_CHECKING:
    import httpx

CHUNK = 1024 * 1024
CREDENTIALS = frozenset({"x-auth-token", "authorization", "cookie", "x-service-token"})


class Unreachable(BadRequest):
    """The remote server could not be reached or failed mid-transfer (not a refusal of the policy)."""


class TransferTooSlow(Unreachable):
    """The remote server was too slow (below the minimum rate, or past the deadline)."""


class _Guard:
    """The clock of one fetch: its deadline and the rate the server delivers at."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.ends = time.monotonic() + limits.total_timeout
        self.waited = 0.0
        self.received = 0

    def timeout(self, wanted: float | None) -> float:
        left = self.ends - time.monotonic()
        if left <= 0:
            raise self.overdue()
        return left if wanted is None else min(wanted, left)

    def overdue(self) -> TransferTooSlow:
        return TransferTooSlow(f"The transfer did not finish within {self.limits.total_timeout:g} seconds.")

    def timed_out(self, url: str, exc: Exception) -> TransferTooSlow:
        if time.monotonic() >= self.ends:
            return self.overdue()
        return TransferTooSlow(f"{url} did not answer within the timeout ({type(exc).__name__}).")

    def record(self, waited: float, size: int) -> None:
        self.waited += waited
        self.received += size
        if self.waited < self.limits.rate_window:
            return
        rate = self.received / self.waited
        if rate < self.limits.min_rate:
            raise TransferTooSlow(
                f"The server sent {rate:.0f} bytes/s over {self.waited:.0f} s, below the minimum of "
                f"{self.limits.min_rate} bytes/s."
            )
        self.waited, self.received = 0.0, 0


def _backend(policy: EgressPolicy, guard: _Guard) -> Any:
    import httpcore

    class GuardedStream(httpcore.NetworkStream):
        def __init__(self, inner: httpcore.NetworkStream) -> None:
            self._inner = inner

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            started = time.monotonic()
            data = self._inner.read(max_bytes, guard.timeout(timeout))
            guard.record(time.monotonic() - started, len(data))
            return data

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self._inner.write(buffer, guard.timeout(timeout))

        def close(self) -> None:
            self._inner.close()

        def start_tls(
            self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
        ) -> httpcore.NetworkStream:
            return GuardedStream(self._inner.start_tls(ssl_context, server_hostname, guard.timeout(timeout)))

        def get_extra_info(self, info: str) -> Any:
            return self._inner.get_extra_info(info)

    class PinnedBackend(httpcore.NetworkBackend):
        def __init__(self) -> None:
            self._inner = httpcore.SyncBackend()

        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Iterable[Any] | None = None,
        ) -> httpcore.NetworkStream:
            failure: Exception | None = None
            name = host.lower().strip("[]").rstrip(".")
            for address in policy.addresses(name, port):  # resolved once, every one judged
                try:
                    stream = self._inner.connect_tcp(
                        str(address), port, guard.timeout(timeout), local_address, socket_options
                    )
                except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                    failure = exc
                    continue
                return GuardedStream(stream)
            raise failure or httpcore.ConnectError(f"No address of {host} could be reached.")

        def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
            raise BadRequest("Unix sockets are never fetched from.")

        def sleep(self, seconds: float) -> None:
            time.sleep(seconds)

    return PinnedBackend()


def _ssl_context(verify: bool | str) -> ssl.SSLContext:
    """True: the system's CAs (certifi's); False: no verification; a path: that CA file or folder."""
    import httpx

    if isinstance(verify, str):
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return httpx.create_ssl_context(verify=verify, trust_env=False)


def _client(policy: EgressPolicy, guard: _Guard, verify: bool | str, proxy: str | None) -> httpx.Client:
    import httpcore
    import httpx

    class PinnedTransport(httpx.HTTPTransport):
        """httpx's own transport, over a connection pool whose network backend is the pinned one."""

        def __init__(self) -> None:
            context = _ssl_context(verify)
            super().__init__(verify=context, trust_env=False)
            backend = _backend(policy.trusting(proxy) if proxy else policy, guard)
            if proxy:
                url = httpx.URL(proxy)
                proxy_url = httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=b"/")
                self._pool = httpcore.HTTPProxy(proxy_url=proxy_url, ssl_context=context, network_backend=backend)
            else:
                self._pool = httpcore.ConnectionPool(ssl_context=context, network_backend=backend)

    limits = policy.limits
    timeout = httpx.Timeout(limits.read_timeout, connect=limits.connect_timeout)
    return httpx.Client(transport=PinnedTransport(), timeout=timeout, follow_redirects=False, trust_env=False)


class Transfer:
    """One response fetched under the policy, redirects followed and each checked. Close it when done."""

    def __init__(self, client: httpx.Client, response: httpx.Response, target: Target, guard: _Guard) -> None:
        self._client = client
        self._guard = guard
        self.response = response
        self.target = target  # where the data finally came from

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def headers(self) -> httpx.Headers:
        return self.response.headers

    def chunks(self, max_bytes: int | None = None, *, raw: bool = False) -> Iterator[bytes]:
        """The body, cut with TooLarge as soon as it passes max_bytes; closes the transfer at the end."""
        import httpx

        try:
            declared = self.response.headers.get("content-length", "")
            identity = raw or self.response.headers.get("content-encoding", "identity").lower() == "identity"
            if identity and max_bytes is not None and declared.isdigit() and int(declared) > max_bytes:
                raise TooLarge(f"The data at {self.target.url} is {declared} bytes, more than {max_bytes} allowed.")
            total = 0
            body = self.response.iter_raw(CHUNK) if raw else self.response.iter_bytes(CHUNK)
            for chunk in body:
                total += len(chunk)
                if max_bytes is not None and total > max_bytes:
                    raise TooLarge(f"The data at {self.target.url} exceeds the limit of {max_bytes} bytes.")
                yield chunk
        except httpx.TimeoutException as exc:
            raise self._guard.timed_out(self.target.url, exc) from None
        except httpx.HTTPError as exc:
            raise Unreachable(f"Reading {self.target.url} failed: {exc}.") from None
        finally:
            self.close()

    def read(self, max_bytes: int) -> bytes:
        return b"".join(self.chunks(max_bytes))

    def close(self) -> None:
        self.response.close()
        self._client.close()

    def __enter__(self) -> Transfer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_url(
    policy: EgressPolicy,
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    verify: bool | str = True,
    proxy: str | None = None,
    content: bytes | None = None,
) -> Transfer:
    """Send `method` to `url` and follow up to max_redirects redirects, each judged by the whole policy.

    Policy refusals and malformed URLs raise BadRequest; failing servers Unreachable (TransferTooSlow
    when too slow); both are BadRequests.
    The caller reads the Transfer (status, headers, chunks) and closes it. `content`: the request's body
    (sent again on a 307/308 redirect, dropped with a 303's switch to GET)."""
    import httpx

    guard = _Guard(policy.limits)
    target = policy.check(url)
    sent = dict(headers or {})
    client = _client(policy, guard, verify, proxy)
    try:
        for _ in range(policy.limits.max_redirects + 1):
            _same_reading(target)
            if proxy:  # the proxy resolves the name itself: judge it here at least (it cannot be pinned)
                policy.addresses(target.host, target.port)
            request = client.build_request(method, target.url, headers=sent, content=content)
            response = client.send(request, stream=True)
            if not response.is_redirect:
                return Transfer(client, response, target, guard)
            location = response.headers.get("location", "")
            response.close()
            previous, target = target, policy.check(urljoin(target.url, location))
            if (target.scheme, target.host, target.port) != (previous.scheme, previous.host, previous.port):
                sent = {k: v for k, v in sent.items() if k.lower() not in CREDENTIALS}  # never to another origin
            if response.status_code == 303 and method != "HEAD":
                method, content = "GET", None
        raise BadRequest(f"More than {policy.limits.max_redirects} redirects fetching {url}.")
    except httpx.TimeoutException as exc:
        client.close()
        raise guard.timed_out(target.url, exc) from None
    except httpx.HTTPError as exc:
        client.close()
        raise Unreachable(f"{target.url} could not be fetched: {exc}.") from None
    except BaseException:
        client.close()
        raise


def _same_reading(target: Target) -> None:
    """The host and port httpx will use must be the ones the policy judged (no parser confusion)."""
    import httpx

    try:
        url = httpx.URL(target.url)
    except httpx.InvalidURL:
        raise BadRequest(f"The URL {target.url} is malformed.") from None
    host = url.host.lower().rstrip(".") if ":" not in url.host else url.host.lower()
    if host != target.host or (url.port or DEFAULT_PORTS.get(url.scheme)) != target.port:
        raise BadRequest(f"The URL {target.url} is ambiguous: it names {url.host} or {target.host}.")


def stream(policy: EgressPolicy, url: str, *, max_bytes: int | None = None,
           headers: Mapping[str, str] | None = None) -> Iterator[bytes]:  # fmt: skip
    """GET `url` (now, not when iterated) and return its body; any status but 200 is a BadRequest."""
    transfer = open_url(policy, url, headers=headers)
    if transfer.status_code != 200:
        transfer.close()
        raise BadRequest(f"Downloading {url} failed: the server answered {transfer.status_code}.")
    return transfer.chunks(max_bytes)
