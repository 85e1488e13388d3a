"""Three-field verification (id, full name, birth date) with a probabilistic fallback.

The telecom check the programme ran, as `streams.match.verify` does it, then more:

- the record's id is a 12-digit personal id the index holds: MATCHED when the full name (NFC,
  case folded, tone placement ignored, as `streams.clean.name_key` compares) and the birth
  date agree exactly, else MISMATCH; the pair's match weight and
  levels come along, so a MISMATCH that is a typo can be told from another person;
- the id is a 9-digit CMND, missing, malformed or unknown: the index is searched with the
  blocking rules and the most likely entry is proposed, POSSIBLE (for review) when its match
  probability reaches the review threshold, else NO_MATCH. A search never says MATCHED: only
  an exact three-field check does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from streams.linkage.errors import SettingsError
from streams.linkage.index import RegistryIndex, column_value
from streams.linkage.model import Model
from streams.linkage.score import (MATCHED, MISMATCH, POSSIBLE, Link, best_pairs, level_labels, pair_levels,
                                   pair_weights, score_batch)
from streams.linkage.config import Field
from streams.linkage.text import parse_id

__all__ = ["verify", "verify_batch"]


def _field_of_kind(index: RegistryIndex, kind: str) -> Field:
    for f in index.settings.fields:
        if f.kind == kind:
            return f
    raise SettingsError(f"three-field verification needs a field of kind {kind!r}")


def _personal_id(raw: object) -> str | None:
    number, digits = parse_id(raw)
    return f"{number:012d}" if digits == 12 else None


def verify_batch(index: RegistryIndex, model: Model, records: Sequence[Mapping[str, Any]]) -> list[Link]:
    """Verify each record by id, full name and birth date; search the index when the id fails."""
    id_field, name_field, date_field = (_field_of_kind(index, k) for k in ("id", "name", "date"))
    found_rows: list[int] = []
    found_slots: list[int] = []
    for i, record in enumerate(records):
        pid = _personal_id(column_value(record, id_field.right))
        slot = index.slot(pid) if pid is not None else None
        if slot is not None:
            found_rows.append(i)
            found_slots.append(slot)
    out: dict[int, Link] = {}
    if found_rows:
        found = [records[i] for i in found_rows]
        batch = index.encode(found)
        rows = np.arange(len(found), dtype=np.int64)
        slots = np.array(found_slots, dtype=np.int64)
        levels = pair_levels(index, batch, rows, slots)
        weights = pair_weights(index, model, levels, slots)
        _, _, probabilities = best_pairs(rows, weights, len(found))
        name_columns = [c for c in batch.columns if c.startswith(f"{name_field.name}.") and c.endswith(".tone")]
        same = np.ones(len(found), dtype=bool)
        for column in name_columns:
            same &= index.column(column)[slots] == batch.columns[column]
        ymd = f"{date_field.name}.ymd"
        same &= (index.column(ymd)[slots] == batch.columns[ymd]) & (batch.columns[ymd] > 0)
        for j, i in enumerate(found_rows):
            out[i] = Link(batch.record_ids[j], MATCHED if same[j] else MISMATCH, index.unique_id(int(slots[j])),
                          float(weights[j]), float(probabilities[j]), level_labels(model, levels[j]), 1)
    rest = [i for i in range(len(records)) if i not in out]
    if rest:
        for i, link in zip(rest, score_batch(index, model, [records[i] for i in rest]), strict=True):
            out[i] = replace(link, verdict=POSSIBLE) if link.verdict == MATCHED else link
    return [out[i] for i in range(len(records))]


def verify(index: RegistryIndex, model: Model, record: Mapping[str, Any]) -> Link:
    """`verify_batch` for one record."""
    return verify_batch(index, model, [record])[0]
