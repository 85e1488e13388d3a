"""Signing and verifying webhook deliveries: what the platform sends and what an agency's receiver checks.

Every POST carries ``X-GSP-Signature: t=<unix seconds>,v1=<hex>`` where ``<hex>`` is
HMAC-SHA256, keyed with the agency's webhook secret, over ``f"{t}.".encode() + body``
(the raw request body, byte for byte; Stripe's scheme). A receiver recomputes it with
:func:`verify`, which also refuses a timestamp more than ``window_s`` (300 s) away from
its clock, so a captured request cannot be replayed later. Several ``v1=`` entries may
appear while a secret is being rotated; one matching is enough.

The body is one JSON object per batch (UTF-8)::

    {"topic": "share.bhxh.subscriber.v1",        the subscription's share topic
     "batch_id": "9f2c…",                          also in the X-GSP-Batch-Id header; the same on every retry
     "events": [{"header": {"event_id": "…", "source_system": "…", "source_key": "…",
                            "source_version": "…", "ingested_at": "2025-07-01T02:03:04.005000+00:00"},
                 "<shared field>": …, …}, …]}

Delivery is at least once: a batch may arrive again (a retry after a timeout, a replay
after a restart), so a receiver upserts by ``header.event_id``. Bytes are base64 text,
timestamps ISO 8601 in UTC, decimals strings.
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["BATCH_ID_HEADER", "SIGNATURE_HEADER", "sign", "verify"]

SIGNATURE_HEADER = "X-GSP-Signature"
BATCH_ID_HEADER = "X-GSP-Batch-Id"


def _digest(secret: bytes, body: bytes, timestamp: int) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The ``X-GSP-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds)."""
    return f"t={timestamp},v1={_digest(secret, body, timestamp)}"


def verify(secret: bytes, body: bytes, header: str | None, *, now: float | None = None, window_s: float = 300) -> bool:
    """Whether ``header`` signs exactly ``body`` with ``secret`` at a time within ``window_s`` of ``now``."""
    if not header:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if abs((time.time() if now is None else now) - timestamp) > window_s:
        return False
    expected = _digest(secret, body, timestamp)
    # compare_digest on every candidate: the time taken says nothing about how much of a guess matched.
    return any([hmac.compare_digest(expected.encode(), c.encode()) for c in candidates])
