"""Topic names: `<layer>.<domain>.<dataset>.v<major>`, plus the platform topics.

A dataset is named `<domain>.<dataset>` (for example `telecom.subscriber`).
Partition counts are fixed at creation: the embedded broker cannot add
partitions later, and Kafka reshuffles keys if you do.
"""

from __future__ import annotations

import re

__all__ = [
    "AUDIT", "CONNECT_CONFIGS", "CONNECT_OFFSETS", "CONNECT_SLOTS", "CONNECT_SLOT_COUNT", "CONNECT_STATUS", "CONSENT",
    "LEDGER", "LEDGER_HEADS", "QUALITY", "REVIEW_DECISIONS", "SUBSCRIPTIONS",
    "VERIFY_REPLIES", "VERIFY_REQUESTS", "VERIFY_REQUESTS_PATTERN",
    "clean", "decision_key", "match", "quarantine", "raw", "review", "share", "subject", "valid_slug",
    "verify_agency", "verify_replies", "verify_requests",
]

SUBSCRIPTIONS = "gsp.subscriptions"
AUDIT = "gsp.audit"
CONSENT = "gsp.consent"  # compacted: a person's consent to a consent-based subscription, per subscription|person
LEDGER_HEADS = "gsp.ledger.heads"  # the ledger's heads as JSON, witnessed outside its database (never compacted)
LEDGER = "gsp.ledger"  # what workers delivered and answered, for the control plane's audit ledger (keyed by subscription)
QUALITY = "gsp.quality"
CONNECT_OFFSETS = "gsp.connect.offsets"
# Connector workers (Kafka Connect's distributed mode): configs and target states, task statuses (both compacted,
# JSON), and the slots every worker's consumer group shares out (never written to: membership only).
CONNECT_CONFIGS = "gsp.connect.configs"
CONNECT_STATUS = "gsp.connect.status"
CONNECT_SLOTS = "gsp.connect.slots"
CONNECT_SLOT_COUNT = 64
REVIEW_DECISIONS = "gsp.review.decisions"  # compacted: a steward's decision per proposed pair
# Verification without data: the control plane's HTTP batches to the workers (naming the agency inside; only the
# control plane writes there) and their replies, read by the control plane's reply dispatcher.
VERIFY_REQUESTS = "gsp.verify.requests"
VERIFY_REPLIES = "gsp.verify.replies"

_SLUG = re.compile(r"^[a-z][a-z0-9-]{1,62}$")


def valid_slug(value: str) -> bool:
    """Agency and dataset parts are lower-case slugs, safe in topic names."""
    return bool(_SLUG.match(value))


def raw(dataset: str, major: int = 1) -> str:
    return f"raw.{dataset}.v{major}"


def clean(dataset: str, major: int = 1) -> str:
    return f"clean.{dataset}.v{major}"


def quarantine(dataset: str, major: int = 1) -> str:
    return f"quarantine.{dataset}.v{major}"


def match(dataset: str, major: int = 1) -> str:
    return f"match.{dataset}.v{major}"


def review(dataset: str, major: int = 1) -> str:
    """Pairs the matcher proposed (verdict POSSIBLE), for stewards to accept or reject."""
    return f"review.{dataset}.v{major}"


def decision_key(dataset: str, source_key: str, personal_id: str) -> str:
    """Key of a pair's decision on the compacted ``gsp.review.decisions`` topic."""
    return f"{dataset}|{source_key}|{personal_id}"


def share(agency: str, dataset: str, major: int = 1, *, name: str = "main") -> str:
    """An agency's topic of one subscription: ``share.<agency>.<dataset>[-<name>].v<major>``
    (the name of a second subscription to the same dataset, for another purpose)."""
    suffix = "" if name == "main" else f"-{name}"
    return f"share.{agency}.{dataset.split('.')[-1]}{suffix}.v{major}"


def subject(topic: str) -> str:
    """Registry subject of a topic's values (Confluent's TopicNameStrategy)."""
    return f"{topic}-value"


def verify_requests(agency: str, major: int = 1) -> str:
    """An agency's verification requests, which it produces (the topic name, not the message, says who asks)."""
    return f"verify.{agency}.requests.v{major}"


def verify_replies(agency: str, major: int = 1) -> str:
    """The answers to an agency's verification requests, keyed by each request's correlation id."""
    return f"verify.{agency}.replies.v{major}"


# Every agency's request topic, and the control plane's: what the workers' verification consumer subscribes to.
VERIFY_REQUESTS_PATTERN = r"^(verify\.[a-z][a-z0-9-]*\.requests\.v1|gsp\.verify\.requests)$"


def verify_agency(topic: str) -> str | None:
    """The agency slug of a ``verify.<agency>.requests.v1`` topic; None for any other topic."""
    prefix, suffix = "verify.", ".requests.v1"
    if not (topic.startswith(prefix) and topic.endswith(suffix)):
        return None
    slug = topic[len(prefix):-len(suffix)]
    return slug if valid_slug(slug) else None
