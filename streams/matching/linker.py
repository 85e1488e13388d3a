"""A worker's copy of the registry for matching: every entry, a search index, stewards' decisions.

Pure (no Faust, no Kafka): the worker feeds it the registry table's changelog and the stewards'
decisions (`streams.replica`), and `streams.matching.decide` asks it about micro-batches.

- `apply_entry` keeps the replica current: a new citizen or an update (re)indexes the entry;
  a death or a deletion takes it out of the search index, so a new record is never proposed
  for a person who has died (the three-field check, `entry`, still sees them).
- `search` proposes the most likely registry entry for records whose id the registry does not
  hold (a 9-digit CMND, a wrong or unknown id).
- `pair` scores records against the entry each one's id points at, so a MISMATCH that is a typo
  or a name typed without diacritics can be told from a different person.
- `decision` is what a steward decided on a pair, so it is not asked again.

`entry` also carries the registry fields an entry holds beyond the check's (the ones linked datasets
map: phone, province_code), as given, so verification (`streams.verify`) compares them exactly as
against the registry table. Values a field repeats a lot (codes) are kept once (see `_shared`).

Records here are linkage records: the model's right-hand columns (`streams.matching.decide`
builds them from a dataset's declaration).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from schemas import topics
from schemas.settings import Settings
from streams.linkage import Link, Model, ModelError, RegistryIndex, score_batch, score_pairs

__all__ = ["DEFAULT_MODEL", "Linker", "load_linker"]

DEFAULT_MODEL = Path(__file__).parent.parent / "linkage" / "models" / "vn_identity.model.json"
_DECEASED = "DECEASED"
_CHECKED = frozenset({"full_name", "name_key", "birth_date", "status"})  # kept in their own slots of an entry
_CODES = 4096  # a field with at most this many distinct values is a code: its values are kept once


class Linker:
    def __init__(self, model: Model, *, extras: bool = True) -> None:
        """``extras``: keep the registry fields beyond the check's for verification (False: what that costs is
        measured by gsp/tools/bench/verification.py)."""
        self.model = model
        self.index = RegistryIndex(model.settings)
        # personal id -> (name key, birth date, status, *the extra fields' values in `_extras` order)
        self._exact: dict[str, tuple[Any, ...]] = {}
        self._extras: tuple[str, ...] | None = None if extras else ()  # fixed by the first entry: a registry's all alike
        self._codes: dict[str, dict[str, str] | None] = {}  # field -> its values, until it shows too many to be a code
        self._decisions: dict[str, str] = {}

    @property
    def entries(self) -> int:
        """Registry entries held, the dead included (the index holds only the living)."""
        return len(self._exact)

    def entry(self, personal_id: str) -> dict[str, Any] | None:
        """What the three-field check compares (see `streams.matching.exact`), or None: a `Lookup`."""
        held = self._exact.get(personal_id)
        if held is None:
            return None
        found = {"name_key": held[0], "birth_date": held[1], "status": held[2]}
        if self._extras:
            found.update(zip(self._extras, held[3:], strict=True))
        return found

    @property
    def review_probability(self) -> float:
        return self.model.settings.thresholds.review_probability

    def apply_entry(self, personal_id: str, entry: Mapping[str, Any] | None) -> None:
        """One change of the registry: an entry (`streams.matching.registry`), or None for a deletion."""
        if entry is None:
            self._exact.pop(personal_id, None)
        else:
            if self._extras is None:
                self._extras = tuple(sorted(k for k in entry if k not in _CHECKED))
                self._codes = {name: {} for name in self._extras}
            self._exact[personal_id] = (entry["name_key"], entry["birth_date"], entry["status"],
                                        *(self._shared(name, entry.get(name)) for name in self._extras))
        if entry is None or entry["status"] == _DECEASED:
            self.index.remove(personal_id)
        else:
            self.index.add({self.model.settings.unique_id_left: personal_id, **entry})

    def _shared(self, name: str, value: Any) -> Any:
        """``value`` itself, or the equal string already held when ``name`` is a code (a province): one string per
        province rather than one per citizen. A field with more distinct values than `_CODES` (a phone) is not."""
        codes = self._codes.get(name)
        if codes is None or not isinstance(value, str):
            return value
        held = codes.setdefault(value, value)
        if len(codes) > _CODES:
            self._codes[name] = None
        return held

    def apply_decision(self, key: str, decision: str | None) -> None:
        """One steward's decision, keyed by `schemas.topics.decision_key`; None withdraws it."""
        if decision is None:
            self._decisions.pop(key, None)
        else:
            self._decisions[key] = decision

    def decision(self, dataset: str, source_key: str, personal_id: str) -> str | None:
        """ACCEPTED, REJECTED, or None when no steward has looked at this pair."""
        return self._decisions.get(topics.decision_key(dataset, source_key, personal_id))

    @property
    def decisions(self) -> int:
        return len(self._decisions)

    def search(self, records: Sequence[Mapping[str, Any]]) -> list[Link]:
        """The most likely registry entry for each linkage record, scored as one micro-batch."""
        return score_batch(self.index, self.model, records)

    def pair(self, records: Sequence[Mapping[str, Any]], personal_ids: Sequence[str | None]) -> list[Link | None]:
        """Each linkage record against the entry its id names (None when the index does not hold it)."""
        return score_pairs(self.index, self.model, records, personal_ids)


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
