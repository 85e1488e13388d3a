"""The dataset catalog as the control plane sees it: the declared datasets, and the topics and subjects they imply.

Nothing here is written per dataset: `DATASETS` is `schemas.datasets.declared()` (the shipped
declarations and those in GSP_DATASETS_DIR), and a dataset's role decides its topics.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from schemas import topics
from schemas.codec import contract
from schemas.datasets import Dataset, declared

__all__ = ["DATASETS", "Dataset", "platform_topics", "subject_schemas", "subjects"]


class _Declared(Mapping[str, Dataset]):
    """The process's declared datasets, read when first used rather than at import (settings may not be read yet)."""

    def __getitem__(self, name: str) -> Dataset:
        return declared()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(declared())

    def __len__(self) -> int:
        return len(declared())

    def __repr__(self) -> str:
        return f"DATASETS({', '.join(declared())})"


DATASETS: Mapping[str, Dataset] = _Declared()


def subjects() -> dict[str, str]:
    """Registry subject -> contract, for every topic the platform writes Avro to."""
    out: dict[str, str] = {topics.subject(topics.SUBSCRIPTIONS): "vn.gsp.control.Subscription",
                           topics.subject(topics.QUALITY): "vn.gsp.quality.QualitySnapshot",
                           topics.subject(topics.AUDIT): "vn.gsp.control.AuditEvent",
                           topics.subject(topics.LEDGER): "vn.gsp.control.LedgerFact",
                           topics.subject(topics.CONSENT): "vn.gsp.control.Consent",
                           topics.subject(topics.REVIEW_DECISIONS): "vn.gsp.match.ReviewDecision",
                           topics.subject(topics.VERIFY_REQUESTS): "vn.gsp.verify.VerificationRequest",
                           topics.subject(topics.VERIFY_REPLIES): "vn.gsp.verify.VerificationReply"}
    for d in DATASETS.values():
        out[topics.subject(topics.raw(d.name))] = d.contract
        out[topics.subject(topics.clean(d.name))] = d.contract
        out[topics.subject(topics.quarantine(d.name))] = "vn.gsp.quality.QualityIssue"
        if d.linked:
            out[topics.subject(topics.match(d.name))] = "vn.gsp.match.MatchResult"
            out[topics.subject(topics.review(d.name))] = "vn.gsp.match.MatchResult"
    return out


def subject_schemas() -> dict[str, dict[str, Any]]:
    """Registry subject -> its self-contained schema: `subjects` with each contract read, a dataset's from its declaration.

    A declaration in GSP_DATASETS_DIR may carry its record inline, with no file in schemas/avro to read by name.
    """
    own = {d.contract: d.avro for d in DATASETS.values()}
    return {subject: own[name] if name in own else contract(name) for subject, name in subjects().items()}


def platform_topics(partitions: int) -> dict[str, tuple[int, dict[str, str]]]:
    """Topic -> (partitions, configs) for everything created at start."""
    compacted = {"cleanup.policy": "compact"}
    out: dict[str, tuple[int, dict[str, str]]] = {
        topics.SUBSCRIPTIONS: (1, compacted),
        topics.CONNECT_OFFSETS: (1, compacted),
        topics.CONNECT_CONFIGS: (1, compacted),
        topics.CONNECT_STATUS: (1, compacted),
        topics.CONNECT_SLOTS: (topics.CONNECT_SLOT_COUNT, {}),
        topics.REVIEW_DECISIONS: (1, compacted),
        topics.AUDIT: (1, {}),
        topics.LEDGER: (partitions, {}),
        topics.CONSENT: (1, compacted),
        topics.LEDGER_HEADS: (1, {}),
        topics.QUALITY: (1, {}),
        # Verification batches of the HTTP API, spread over the workers, and their replies.
        topics.VERIFY_REQUESTS: (partitions, {}),
        topics.VERIFY_REPLIES: (partitions, {}),
    }
    for d in DATASETS.values():
        for name in (topics.raw(d.name), topics.clean(d.name), topics.quarantine(d.name)):
            out[name] = (partitions, {})
        if d.linked:
            out[topics.match(d.name)] = (partitions, {})
            out[topics.review(d.name)] = (partitions, {})
    return out
