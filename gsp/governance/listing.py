"""The catalog as a consumer reads it: what each declared dataset offers, who owns it, how good it is now, who takes it.

    entry(DATASETS["telecom.subscriber"], scores={"correct": 0.98, ...}, subscribers=2)

Everything but the two live facts comes from the dataset's declaration: its fields with their
Avro type, description and sensitivity class under the Personal Data Protection Law
(91/2025/QH15), its owner agency and source system, its freshness expectation. The live facts,
the latest quality scores and how many agencies subscribe, are passed in, so this stays pure;
the HTTP shell reads them from the quality snapshots and the subscriptions. Kept apart from
`gsp.governance.catalog`, which derives topics and subjects: this changes with what consumers
are shown, that with how the platform is wired.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from schemas.datasets import Dataset, Role, Sensitivity
from streams.quality import DIMENSIONS

__all__ = ["OUTCOME_DESCRIPTIONS", "CatalogEntry", "CatalogField", "entry", "subscriber_counts"]

# The fields matching adds to a linked dataset's shared view have no Avro field of the dataset to carry a doc.
OUTCOME_DESCRIPTIONS: dict[str, str] = {
    "personal_id": "Personal id of the citizen in the population registry this record was matched to; "
                   "null when no citizen was matched",
    "verdict": "Outcome of matching against the population registry: MATCHED, MISMATCH, NOT_FOUND, POSSIBLE "
               "or NO_MATCH",
    "match_score": "1.0 for an exact id, name and birth-date match, the share of agreeing fields for a mismatch, "
                   "the match weight (log2 Bayes factor) for a searched pair",
}
_DAY = 86_400.0


@dataclass(frozen=True)
class CatalogField:
    """One field an agency may be approved for."""

    name: str
    type: Any                  # its Avro type in the shared view
    description: str | None    # None where the contract documents nothing
    sensitivity: Sensitivity


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    doc: str
    owner: str                 # X-Road style id of the owning agency subsystem
    source_system: str
    role: Role
    shareable: bool
    key: str
    freshness_days: float      # an older record counts as not live
    delivery_s: float          # a shared record later than this counts as not live
    fields: tuple[CatalogField, ...]   # what an agency may ask for; empty when the dataset is not shareable
    scores: dict[str, float | None]    # each quality dimension of the latest snapshot; None when not yet scored
    subscribers: int                   # distinct agencies subscribed

    @property
    def sensitivity(self) -> dict[str, int]:
        """How many offered fields fall in each class, every class named so consumers can rely on the keys."""
        counts = Counter(f.sensitivity for f in self.fields)
        return {cls.value: counts[cls] for cls in Sensitivity}

    def summary(self) -> dict[str, Any]:
        """The line of the catalog's list."""
        return {"name": self.name, "doc": self.doc, "owner": self.owner, "role": self.role.value,
                "shareable": self.shareable, "sensitivity": self.sensitivity, "scores": dict(self.scores),
                "subscribers": self.subscribers}

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "role": self.role.value, "sensitivity": self.sensitivity,
                "fields": [{**asdict(f), "sensitivity": f.sensitivity.value} for f in self.fields]}


def entry(dataset: Dataset, *, scores: Mapping[str, float | None] | None = None, subscribers: int = 0) -> CatalogEntry:
    """The catalog entry of a dataset: its declaration, its latest quality ``scores`` (None: no snapshot yet) and
    the number of agencies subscribed to it."""
    return CatalogEntry(
        name=dataset.name, doc=dataset.doc, owner=dataset.owner, source_system=dataset.source_system,
        role=dataset.role, shareable=dataset.shareable, key=dataset.key,
        freshness_days=dataset.quality.freshness_s / _DAY, delivery_s=dataset.quality.delivery_s,
        fields=_offered(dataset), scores={d: (scores or {}).get(d) for d in DIMENSIONS}, subscribers=subscribers)


def subscriber_counts(subscriptions: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Dataset -> distinct agencies among the Subscription events (as `ControlPlane.published_subscriptions` gives them)."""
    agencies: dict[str, set[str]] = {}
    for subscription in subscriptions:
        agencies.setdefault(subscription["dataset"], set()).add(subscription["agency"])
    return {dataset: len(names) for dataset, names in agencies.items()}


def _offered(dataset: Dataset) -> tuple[CatalogField, ...]:
    # A dataset not shareable still declares its fields' classes (for the platform's own use); none is offered.
    if not dataset.shareable:
        return ()
    own = {f["name"]: f for f in dataset.avro["fields"]}
    return tuple(CatalogField(name=name, type=avro_type, sensitivity=dataset.sensitivity[name],
                              description=_description(own[name]) if name in own else OUTCOME_DESCRIPTIONS.get(name))
                 for name, avro_type in dataset.shared_types().items())


def _description(avro_field: Mapping[str, Any]) -> str | None:
    """The field's doc; else the doc of its record type (``residence`` documents itself on its Residence record)."""
    if avro_field.get("doc"):
        return str(avro_field["doc"])
    of_type = avro_field["type"]
    return str(of_type["doc"]) if isinstance(of_type, dict) and of_type.get("doc") else None
