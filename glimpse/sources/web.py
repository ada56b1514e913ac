"""Downloading an image from a URL for web-download, under the egress policy (sources/egress.py).

The URL, every redirect target and every address the connection goes to are judged by the policy;
the transfer has a deadline and a minimum rate, and is cut as soon as it passes `max_bytes`.
"""

from __future__ import annotations

from collections.abc import Iterator

from glimpse.sources import fetch
from glimpse.sources.egress import EgressPolicy


def download(url: str, policy: EgressPolicy, max_bytes: int | None = None) -> Iterator[bytes]:
    """Stream the body of `url` (opened now, read as iterated); a refusal or a failure is a BadRequest."""
    return fetch.stream(policy, url, max_bytes=max_bytes)
