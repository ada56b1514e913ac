"""Sending a webhook's event: one POST under the egress policy, no redirect followed, the answer's body bounded.

The policy's deadline is the webhook's delivery timeout (not the hours an image download may take), its minimum
rate applies while the receiver answers, and the connection goes to an address the policy judged, pinned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from glimpse.errors import BadRequest, GlimpseError
from glimpse.sources.egress import EgressPolicy
from glimpse.sources.fetch import open_url

ANSWER_KEPT = 512  # bytes of a refusing receiver's answer kept in the delivery log


def webhook_policy(policy: EgressPolicy, deadline: float) -> EgressPolicy:
    """The egress policy for webhooks: no redirects, everything within `deadline` seconds."""
    limits = replace(
        policy.limits,
        max_redirects=0,
        total_timeout=deadline,
        connect_timeout=min(policy.limits.connect_timeout, deadline),
        read_timeout=min(policy.limits.read_timeout, deadline),
    )
    return replace(policy, limits=limits)


def post(policy: EgressPolicy, url: str, headers: Mapping[str, str], body: bytes) -> tuple[int | None, str]:
    """(status, a note for the log): status None when the policy refused or the receiver failed to answer."""
    try:
        transfer = open_url(policy, url, method="POST", headers=headers, content=body)
    except BadRequest as exc:
        if exc.message.startswith("More than 0 redirects"):
            return None, f"The receiver answered with a redirect, which webhooks do not follow ({url})."
        return None, exc.message
    with transfer:
        status = transfer.status_code
        if 200 <= status < 300:
            return status, ""
        try:
            answer = next(transfer.chunks(64 * 1024), b"")[:ANSWER_KEPT]
        except GlimpseError:
            answer = b""
        text = answer.decode("utf-8", "replace").strip()
        return status, f"The receiver answered {status}" + (f": {text}" if text else ".")
