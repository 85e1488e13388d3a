"""Sharing: which matched records a subscription covers, and the fields it may see.

Pure: no Faust or Kafka import. A subscription sees only its approved fields
(projection) of only the rows its filter and verdicts admit (selection).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SHAREABLE", "ShareError", "Subscription", "covers", "project", "projected_schema", "shareable_fields", "shared_view"]


class ShareError(ValueError):
    """A subscription that cannot be honoured (unknown dataset or field)."""


# Avro types of the fields an agency may be approved for, per dataset.
# The shared view of a telecom subscriber is the cleaned subscriber plus the outcome of matching.
SHAREABLE: dict[str, dict[str, Any]] = {
    "telecom.subscriber": {
        "msisdn": "string",
        "carrier": "string",
        "subscriber_name": "string",
        "id_number": "string",
        "birth_date": "string",
        "address": ["null", "string"],
        "updated_at": "long",
        "personal_id": ["null", "string"],
        "verdict": "string",
        "match_score": "double",
    },
}


@dataclass(frozen=True, slots=True)
class Subscription:
    subscription_id: str
    agency: str
    dataset: str
    fields: tuple[str, ...]
    topic: str
    schema_id: int
    row_filter: dict[str, tuple[str, ...]] = field(default_factory=dict)
    verdicts: tuple[str, ...] = ("MATCHED",)

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Subscription:
        return cls(
            subscription_id=event["subscription_id"], agency=event["agency"], dataset=event["dataset"],
            fields=tuple(event["fields"]), topic=event["topic"], schema_id=event["schema_id"],
            row_filter={k: tuple(v) for k, v in event.get("row_filter", {}).items()},
            verdicts=tuple(event.get("verdicts") or ("MATCHED",)),
        )


def shareable_fields(dataset: str) -> dict[str, Any]:
    try:
        return SHAREABLE[dataset]
    except KeyError:
        raise ShareError(f"dataset {dataset!r} cannot be shared; known: {', '.join(sorted(SHAREABLE))}") from None


def check(dataset: str, fields: list[str], row_filter: dict[str, list[str]]) -> None:
    """Raise ShareError naming the first unknown field of a subscription request."""
    known = shareable_fields(dataset)
    if not fields:
        raise ShareError("a subscription needs at least one field")
    for name in [*fields, *row_filter]:
        if name not in known:
            raise ShareError(f"unknown field {name!r} for dataset {dataset}; shareable fields: {', '.join(known)}")


def shared_view(record: dict[str, Any], *, personal_id: str | None, verdict: str, score: float) -> dict[str, Any]:
    """The full shareable view of one matched record, before projection."""
    return {**record, "personal_id": personal_id, "verdict": verdict, "match_score": score}


def covers(subscription: Subscription, view: dict[str, Any]) -> bool:
    if view["verdict"] not in subscription.verdicts:
        return False
    return all(str(view.get(name)) in allowed for name, allowed in subscription.row_filter.items())


def project(subscription: Subscription, view: dict[str, Any]) -> dict[str, Any]:
    """Only the approved fields, plus the event header."""
    shared = {name: view[name] for name in subscription.fields}
    shared["header"] = view["header"]
    return shared


def projected_schema(dataset: str, agency: str, fields: list[str], header_schema: dict[str, Any]) -> dict[str, Any]:
    """The Avro contract of a subscription's topic: the header and the approved fields only."""
    known = shareable_fields(dataset)
    record_name = "".join(part.capitalize() for part in dataset.split("."))
    return {
        "type": "record",
        "name": record_name,
        "namespace": "vn.gsp.share." + re.sub(r"[^a-z0-9]", "_", agency),
        "doc": f"{dataset} as shared with {agency}: approved fields only",
        "fields": [{"name": "header", "type": header_schema}]
        + [{"name": name, "type": known[name]} for name in fields],
    }
