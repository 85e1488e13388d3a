"""Topic names: `<layer>.<domain>.<dataset>.v<major>`, plus the platform topics.

A dataset is named `<domain>.<dataset>` (for example `telecom.subscriber`).
Partition counts are fixed at creation: the embedded broker cannot add
partitions later, and Kafka reshuffles keys if you do.
"""

from __future__ import annotations

import re

__all__ = [
    "AUDIT", "CONNECT_OFFSETS", "LEDGER", "QUALITY", "REVIEW_DECISIONS", "SUBSCRIPTIONS",
    "clean", "decision_key", "match", "quarantine", "raw", "review", "share", "subject", "valid_slug",
]

SUBSCRIPTIONS = "gsp.subscriptions"
AUDIT = "gsp.audit"
LEDGER = "gsp.ledger"  # what workers delivered and answered, for the control plane's audit ledger (keyed by subscription)
QUALITY = "gsp.quality"
CONNECT_OFFSETS = "gsp.connect.offsets"
REVIEW_DECISIONS = "gsp.review.decisions"  # compacted: a steward's decision per proposed pair

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
