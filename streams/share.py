"""Sharing: which records a subscription covers, and the fields it may see.

Pure: no Faust or Kafka import. A subscription sees only its approved fields
(projection) of only the rows its filter and verdicts admit (selection). What
may be shared, and as which Avro type, is the dataset's declaration: its
``fields`` with their sensitivity (`schemas.datasets.Dataset.shared_types`).
The shared view of a linked dataset is the cleaned record plus the outcome of
matching; of a plain dataset, the cleaned record as it is (no verdict to filter by).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Any

from schemas.datasets import Dataset, declared
from schemas.envelope import Verdict

__all__ = ["Envelope", "ShareError", "Subscription", "check", "covers", "envelope", "plain_view", "project",
           "projected_schema", "pseudonym",
           "shareable_fields", "shared_view"]


class ShareError(ValueError):
    """A subscription that cannot be honoured (unknown dataset or field)."""


@dataclass(frozen=True, slots=True)
class Subscription:
    subscription_id: str
    agency: str
    dataset: str
    fields: tuple[str, ...]
    topic: str
    schema_id: int
    row_filter: dict[str, tuple[str, ...]] = field(default_factory=dict)
    verdicts: tuple[str, ...] = (Verdict.MATCHED,)
    valid_from: int | None = None     # ms: records ingested earlier are not shared, unless backfill
    valid_until: int | None = None    # ms: nothing is shared from then on
    backfill: bool = False
    # The agency's pseudonym secret (and its version): what it receives names people and records by keyed
    # hashes no other agency can compute. Empty: the subscription cannot be shared (see `Envelope`).
    pseudonym_key: bytes = b""
    key_version: int = 0
    version: int = 0              # of the subscription: which approval covered a delivery (the audit ledger)
    consent: bool = False         # the legal basis is consent: only people whose consent is on record (gsp.consent)
    # "stream": records are shared on ``topic``; "verify": none ever is, the agency may only verify identity
    # details it holds against the registry (`streams.verify`), and ``topic`` is where its answers go.
    mode: str = "stream"

    def in_period(self, ingested_at_ms: int, now_ms: int) -> bool:
        """Whether the approval's period admits a record ingested at ``ingested_at_ms``, shared at ``now_ms``."""
        if self.valid_until is not None and now_ms >= self.valid_until:
            return False
        return self.backfill or self.valid_from is None or ingested_at_ms >= self.valid_from

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Subscription:
        return cls(
            subscription_id=event["subscription_id"], agency=event["agency"], dataset=event["dataset"],
            fields=tuple(event["fields"]), topic=event["topic"], schema_id=event["schema_id"],
            row_filter={k: tuple(v) for k, v in event.get("row_filter", {}).items()},
            verdicts=tuple(event.get("verdicts") or (Verdict.MATCHED,)),
            valid_from=event.get("valid_from"), valid_until=event.get("valid_until"),
            backfill=bool(event.get("backfill", False)),
            pseudonym_key=bytes.fromhex(event.get("pseudonym_key") or ""), key_version=int(event.get("key_version") or 0),
            version=int(event.get("version") or 0), consent=bool(event.get("consent", False)), mode=str(event.get("mode") or "stream"),
        )


def _shareable(dataset: Dataset | str) -> Dataset:
    """The declaration of a shareable dataset; a name is looked up among the process's declared datasets."""
    found = dataset if isinstance(dataset, Dataset) else declared().get(dataset)
    if found is None or not found.shareable:
        known = sorted(d.name for d in declared().values() if d.shareable)
        name = dataset.name if isinstance(dataset, Dataset) else dataset
        raise ShareError(f"dataset {name!r} cannot be shared; known: {', '.join(known)}")
    return found


def shareable_fields(dataset: Dataset | str) -> dict[str, Any]:
    """Avro type of every field an agency may be approved for, in declaration order."""
    return _shareable(dataset).shared_types()


def check(dataset: Dataset | str, fields: list[str], row_filter: dict[str, list[str]]) -> None:
    """Raise ShareError naming the first unknown field of a subscription request."""
    d = _shareable(dataset)
    known = d.shared_types()
    if not fields:
        raise ShareError("a subscription needs at least one field")
    for name in [*fields, *row_filter]:
        if name not in known:
            raise ShareError(f"unknown field {name!r} for dataset {d.name}; shareable fields: {', '.join(known)}")


def shared_view(record: dict[str, Any], *, personal_id: str | None, verdict: str, score: float) -> dict[str, Any]:
    """The full shareable view of one matched record, before projection."""
    return {**record, "personal_id": personal_id, "verdict": verdict, "match_score": score}


def plain_view(record: dict[str, Any]) -> dict[str, Any]:
    """The full shareable view of one cleaned record of a plain dataset: the record without the clean stage's findings."""
    return {name: value for name, value in record.items() if name != "findings"}


def covers(subscription: Subscription, view: dict[str, Any], *, plain: bool = False) -> bool:
    """Whether a subscription admits a record: its verdict (not for a plain dataset, which has none) and its row filter."""
    if not plain and view["verdict"] not in subscription.verdicts:
        return False
    return all(str(view.get(name)) in allowed for name, allowed in subscription.row_filter.items())


@dataclass(frozen=True, slots=True)
class Envelope:
    """What an agency receives around the approved fields: its own event id, source key and person key.

    - ``event_id``: a keyed hash of the platform's event id (stable, so the agency's sink still upserts;
      two agencies' ids for one record differ, so their feeds cannot be joined on it);
    - ``source_key``: the record's key in its source when the key field is approved, else its keyed hash;
    - ``person_key``: the personal id when approved, else its keyed hash (None when no person was matched);
    - ``message_key``: the Kafka key, the person key or else the source key as the agency sees it.
    Keys are HMAC-SHA-256 with the agency's secret, prefixed with the secret's version (``k1.…``): a new
    version (rotation) gives new pseudonyms from then on, and the prefix says which version made one.
    """

    event_id: str
    source_key: str
    person_key: str | None

    @property
    def message_key(self) -> bytes:
        return (self.person_key or self.source_key).encode()


def pseudonym(subscription: Subscription, kind: str, value: str) -> str:
    """``value`` as only ``subscription``'s agency can name it (``kind`` separates ids, keys and events)."""
    if not subscription.pseudonym_key:
        raise ShareError(f"subscription {subscription.subscription_id} has no pseudonym key: not shared")
    digest = hmac.new(subscription.pseudonym_key, f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()
    return f"k{subscription.key_version}.{digest[:40]}"


def envelope(subscription: Subscription, header: dict[str, Any], *, key_field: str,
             personal_id: str | None) -> Envelope:
    approved = subscription.fields
    person = None if personal_id is None else (
        personal_id if "personal_id" in approved else pseudonym(subscription, "person", personal_id))
    return Envelope(
        event_id=pseudonym(subscription, "event", header["event_id"]),
        source_key=header["source_key"] if key_field in approved else pseudonym(subscription, "key", header["source_key"]),
        person_key=person)


def project(subscription: Subscription, view: dict[str, Any], outer: Envelope) -> dict[str, Any]:
    """Only the approved fields, the agency's own header and its person key."""
    shared = {name: view[name] for name in subscription.fields}
    shared["header"] = {**view["header"], "event_id": outer.event_id, "source_key": outer.source_key}
    shared["person_key"] = outer.person_key
    return shared


def projected_schema(dataset: Dataset | str, agency: str, fields: list[str], header_schema: dict[str, Any]) -> dict[str, Any]:
    """The Avro contract of a subscription's topic: the header and the approved fields only, each optional."""
    d = _shareable(dataset)
    known = d.shared_types()
    record_name = "".join(part.capitalize() for part in re.split(r"[.-]", d.name))
    return {
        "type": "record",
        "name": record_name,
        "namespace": "vn.gsp.share." + re.sub(r"[^a-z0-9]", "_", agency),
        "doc": f"{d.name} as shared with {agency}: approved fields only",
        "fields": [{"name": "header", "type": header_schema}]
        + [{"name": name, "type": _optional(known[name]), "default": None} for name in fields]
        + [{"name": "person_key", "type": ["null", "string"], "default": None,
            "doc": "The person this record was matched to: the personal id when approved, else a pseudonym of it "
                   "only this agency receives; null when no person was matched"}],
    }


def _optional(avro_type: Any) -> list[Any]:
    """The type as a union with null first, so it can default to null: an approval that adds or drops a field
    changes the agency's contract compatibly in both directions (Confluent's FULL), and its readers keep working."""
    branches = avro_type if isinstance(avro_type, list) else [avro_type]
    return ["null", *(b for b in branches if b != "null")]
