"""The match stage's registry as a worker holds it: a full replica, a model, stewards' decisions.

Pure (no Faust, no Kafka): the Faust app feeds it the registry table's changelog and the
stewards' decisions, and asks it about micro-batches of subscribers.

- `apply_entry` keeps the replica current: a new citizen or an update (re)indexes the entry;
  a death or a deletion takes it out of the search index, so a new subscription is never
  proposed for a person who has died (the exact three-field check, `entry`, still sees them).
- `search` proposes the most likely registry entry for subscribers whose id the registry
  does not hold (a 9-digit CMND, a wrong or unknown id).
- `pair` scores a subscriber against the entry its id points at, so a MISMATCH that is a
  typo or a name typed without diacritics can be told from a different person.
- `decision` is what a steward decided on a pair, so it is not asked again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from schemas import topics
from schemas.settings import Settings
from streams.linkage import Link, Model, ModelError, RegistryIndex, score_pairs

__all__ = ["DEFAULT_MODEL", "Linker", "decided_verdict", "linkage_record", "load_linker"]

DEFAULT_MODEL = Path(__file__).parent / "linkage" / "models" / "vn_identity.model.json"


def decided_verdict(proposed: str, decision: str) -> str:
    """What a steward's decision makes of a proposed pair, here and at the review desk alike:
    ACCEPTED -> MATCHED; REJECTED -> NO_MATCH for a searched proposal (POSSIBLE), and still
    MISMATCH for the entry of the subscriber's own id."""
    if decision == "ACCEPTED":
        return "MATCHED"
    return "NO_MATCH" if proposed == "POSSIBLE" else proposed


def linkage_record(subscriber: Mapping[str, Any]) -> dict[str, Any]:
    """The columns the model compares (its settings' right-hand side), from a cleaned subscriber."""
    address = subscriber.get("address") or ""
    return {
        "record_id": subscriber["header"]["source_key"],
        "subscriber_name": subscriber["subscriber_name"],
        "birth_date": subscriber["birth_date"],
        "id_number": subscriber["id_number"],
        "msisdn": subscriber["msisdn"],
        "province": address.rsplit(",", 1)[-1].strip() or None,  # "…, Phường Ba Đình, Hà Nội" -> "Hà Nội"
    }


class Linker:
    def __init__(self, model: Model, *, dataset: str = "telecom.subscriber") -> None:
        self.model = model
        self.dataset = dataset
        self.index = RegistryIndex(model.settings)
        self._exact: dict[str, tuple[str, str, str]] = {}  # personal id -> (name key, birth date, status)
        self._decisions: dict[str, str] = {}

    @property
    def entries(self) -> int:
        """Registry entries held, the dead included (the index holds only the living)."""
        return len(self._exact)

    def entry(self, personal_id: str) -> dict[str, Any] | None:
        """What the exact three-field check compares (see `streams.match.registry_entry`), or None."""
        held = self._exact.get(personal_id)
        return None if held is None else {"name_key": held[0], "birth_date": held[1], "status": held[2]}

    @property
    def review_probability(self) -> float:
        return self.model.settings.thresholds.review_probability

    def apply_entry(self, personal_id: str, entry: Mapping[str, Any] | None) -> None:
        """One change of the registry: an entry, or None for a deletion."""
        if entry is None:
            self._exact.pop(personal_id, None)
        else:
            self._exact[personal_id] = (entry["name_key"], entry["birth_date"], entry["status"])
        if entry is None or entry["status"] == "DECEASED":
            self.index.remove(personal_id)
        else:
            self.index.add({"personal_id": personal_id, **entry})

    def apply_decision(self, key: str, decision: str | None) -> None:
        if decision is None:
            self._decisions.pop(key, None)
        else:
            self._decisions[key] = decision

    def decision(self, source_key: str, personal_id: str) -> str | None:
        """ACCEPTED, REJECTED, or None when no steward has looked at this pair."""
        return self._decisions.get(topics.decision_key(self.dataset, source_key, personal_id))

    @property
    def decisions(self) -> int:
        return len(self._decisions)

    def search(self, subscribers: Sequence[Mapping[str, Any]]) -> list[Link]:
        """The most likely registry entry for each subscriber, scored as one micro-batch."""
        return self.index.score_batch([linkage_record(s) for s in subscribers], self.model)

    def pair(self, subscribers: Sequence[Mapping[str, Any]], personal_ids: Sequence[str | None]) -> list[Link | None]:
        """Each subscriber against the entry its id names (None when the index does not hold it)."""
        return score_pairs(self.index, self.model, [linkage_record(s) for s in subscribers], personal_ids)


def load_linker(settings: Settings) -> Linker | None:
    """The configured model (GSP_LINKAGE_MODEL), the shipped one by default; None when 'off'.

    Raises ModelError, naming the variable, for a file that cannot be read or is not a model.
    """
    if settings.linkage_model.lower() == "off":
        return None
    try:
        return Linker(Model.load(settings.linkage_model or DEFAULT_MODEL))
    except ModelError as exc:
        raise ModelError(f"GSP_LINKAGE_MODEL: {exc}") from None
