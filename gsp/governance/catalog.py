"""The dataset catalog: which datasets exist, their contracts and their source systems."""

from __future__ import annotations

from dataclasses import dataclass

from schemas import topics

__all__ = ["DATASETS", "Dataset", "platform_topics", "subjects"]


@dataclass(frozen=True)
class Dataset:
    name: str            # <domain>.<dataset>
    contract: str        # full name of the Avro record in schemas/avro
    source_system: str   # system of record
    matched: bool        # linked to the population registry (has a match topic)


DATASETS: dict[str, Dataset] = {
    "population.citizen": Dataset("population.citizen", "vn.gsp.population.Citizen", "population.csdlqg", matched=False),
    "telecom.subscriber": Dataset("telecom.subscriber", "vn.gsp.telecom.Subscriber", "telecom.registry", matched=True),
}


def subjects() -> dict[str, str]:
    """Registry subject -> contract, for every topic the platform writes Avro to."""
    out: dict[str, str] = {topics.subject(topics.SUBSCRIPTIONS): "vn.gsp.control.Subscription",
                           topics.subject(topics.QUALITY): "vn.gsp.quality.QualitySnapshot",
                           topics.subject(topics.AUDIT): "vn.gsp.control.AuditEvent",
                           topics.subject(topics.REVIEW_DECISIONS): "vn.gsp.match.ReviewDecision"}
    for d in DATASETS.values():
        out[topics.subject(topics.raw(d.name))] = d.contract
        out[topics.subject(topics.clean(d.name))] = d.contract
        out[topics.subject(topics.quarantine(d.name))] = "vn.gsp.quality.QualityIssue"
        if d.matched:
            out[topics.subject(topics.match(d.name))] = "vn.gsp.match.MatchResult"
            out[topics.subject(topics.review(d.name))] = "vn.gsp.match.MatchResult"
    return out


def platform_topics(partitions: int) -> dict[str, tuple[int, dict[str, str]]]:
    """Topic -> (partitions, configs) for everything created at start."""
    compacted = {"cleanup.policy": "compact"}
    out: dict[str, tuple[int, dict[str, str]]] = {
        topics.SUBSCRIPTIONS: (1, compacted),
        topics.CONNECT_OFFSETS: (1, compacted),
        topics.REVIEW_DECISIONS: (1, compacted),
        topics.AUDIT: (1, {}),
        topics.QUALITY: (1, {}),
    }
    for d in DATASETS.values():
        for name in (topics.raw(d.name), topics.clean(d.name), topics.quarantine(d.name)):
            out[name] = (partitions, {})
        if d.matched:
            out[topics.match(d.name)] = (partitions, {})
            out[topics.review(d.name)] = (partitions, {})
    return out
