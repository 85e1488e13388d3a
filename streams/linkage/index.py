"""The in-memory registry index: personal_id -> a compact columnar entry; blocking key -> entries.

An entry is one slot in a set of numpy columns (a few integers per field, see `fields`), so an
indexed citizen costs a few hundred bytes, most of it the blocking dictionaries. Entries are
added, replaced (a move, a corrected name) and removed (a death) one at a time; a removed slot
is reused. Blocking dictionaries map a packed integer key to one slot or a list of slots.
Term frequencies of the values a comparison adjusts for are counted as entries come and go.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from streams.linkage.config import Settings
from streams.linkage.fields import MISSING, block_value, layouts, tf_column
from streams.linkage.vocab import BatchEncoder, Interner, Vocab

__all__ = ["Batch", "RegistryIndex", "column_value"]

_SHIFT = 48  # every blocking key part is below 2**48 (ids are below 10**14)


def column_value(record: Mapping[str, Any], path: str) -> Any:
    """`record[path]`, following dots into nested mappings; None when absent."""
    if "." not in path:
        return record.get(path)
    value: Any = record
    for step in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(step)
    return value


class Batch:
    """Records prepared for comparison: the same columns as the index, one row per record."""

    __slots__ = ("columns", "encoder", "record_ids", "rows")

    def __init__(self, columns: dict[str, np.ndarray], encoder: BatchEncoder, record_ids: list[str | None],
                 rows: list[dict[str, int]]) -> None:
        self.columns, self.encoder, self.record_ids, self.rows = columns, encoder, record_ids, rows

    def __len__(self) -> int:
        return len(self.record_ids)


class RegistryIndex:
    """Registry entries by unique id, with blocking dictionaries and term counts, updated in place."""

    def __init__(self, settings: Settings, *, capacity: int = 1024) -> None:
        self.settings = settings
        self.layouts = layouts(settings)
        self.kinds = {f.name: f.kind for f in settings.fields}
        self.vocabs: dict[str, Vocab] = {}
        self._interner = Interner(self.vocabs)
        specs = [(c, t) for lay in self.layouts for c, t in zip(lay.columns, lay.dtypes, strict=True)]
        self._columns: dict[str, np.ndarray] = {
            c: np.full(capacity, MISSING if t is np.int32 else 0, dtype=t) for c, t in specs}
        self._missing = {c: MISSING if t is np.int32 else 0 for c, t in specs}
        self._live = np.zeros(capacity, dtype=bool)
        self._ids: list[str | None] = []
        self._slots: dict[str, int] = {}
        self._free: list[int] = []
        self._rules = settings.blocking_rules
        self._key_parts = [[block_value(settings, k) for k in rule] for rule in self._rules]
        self._record_key_parts = [[block_value(settings, k, "right") for k in rule] for rule in self._rules]
        self._blocks: list[dict[int, int | list[int]]] = [{} for _ in self._rules]
        # term-frequency column -> its vocabulary, for every comparison with a term-frequency adjusted level
        self.tf_vocabs = dict(sorted(tf_column(c, self.kinds[c.field]) for c in settings.comparisons
                                     if any(lv.tf for lv in c.levels)))
        self._counts = {c: np.zeros(capacity, dtype=np.int64) for c in self.tf_vocabs}

    # --- entries ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, unique_id: object) -> bool:
        return unique_id in self._slots

    def slot(self, unique_id: str) -> int | None:
        return self._slots.get(unique_id)

    def unique_id(self, slot: int) -> str | None:
        return self._ids[slot]

    def live_slots(self) -> np.ndarray:
        return np.flatnonzero(self._live[: len(self._ids)])

    def add(self, record: Mapping[str, Any]) -> str:
        """Index (or re-index) one registry record; returns its unique id.

        Raises ValueError for a record without a unique id: the registry is keyed by it.
        """
        raw = column_value(record, self.settings.unique_id_left)
        if raw is None or raw == "":
            raise ValueError(f"registry record without {self.settings.unique_id_left}")
        uid = str(raw)
        if uid in self._slots:
            self.remove(uid)
        values = self._prepare(record, self._interner)
        slot = self._free.pop() if self._free else self._append()
        for column, value in values.items():
            self._columns[column][slot] = value
        self._live[slot] = True
        self._ids[slot] = uid
        self._slots[uid] = slot
        for blocks, key in zip(self._blocks, self._keys(values, self._interner), strict=True):
            if key is None:
                continue
            held = blocks.get(key)
            if held is None:
                blocks[key] = slot
            elif isinstance(held, int):
                blocks[key] = [held, slot]
            else:
                held.append(slot)
        for column, counts in self._counts.items():
            code = values[column]
            if code >= 0:
                if code >= len(counts):
                    counts = self._counts[column] = np.concatenate([counts, np.zeros(code + len(counts), np.int64)])
                counts[code] += 1
        return uid

    def add_many(self, records: Iterable[Mapping[str, Any]]) -> int:
        count = 0
        for record in records:
            self.add(record)
            count += 1
        return count

    update = add

    def remove(self, unique_id: str) -> bool:
        """Take an entry out (a death, a withdrawn record); False if it was not indexed."""
        slot = self._slots.pop(unique_id, None)
        if slot is None:
            return False
        values = {c: int(a[slot]) for c, a in self._columns.items()}
        for blocks, key in zip(self._blocks, self._keys(values, self._interner), strict=True):
            held = blocks.get(key) if key is not None else None
            if key is None or held is None:
                continue
            if isinstance(held, int):
                del blocks[key]
            else:
                held.remove(slot)
                if len(held) == 1:
                    blocks[key] = held[0]
        for column, counts in self._counts.items():
            if values[column] >= 0:
                counts[values[column]] -= 1
        for column, array in self._columns.items():
            array[slot] = self._missing[column]
        self._live[slot] = False
        self._ids[slot] = None
        self._free.append(slot)
        return True

    def _append(self) -> int:
        slot = len(self._ids)
        self._ids.append(None)
        if slot >= len(self._live):
            grow = max(1024, len(self._live))
            for column, array in self._columns.items():
                self._columns[column] = np.concatenate([array, np.full(grow, self._missing[column], array.dtype)])
            self._live = np.concatenate([self._live, np.zeros(grow, dtype=bool)])
        return slot

    def _prepare(self, record: Mapping[str, Any], enc: Interner | BatchEncoder, side: str = "left") -> dict[str, int]:
        values: dict[str, int] = {}
        for lay in self.layouts:
            column = lay.field.left if side == "left" else lay.field.right
            values.update(zip(lay.columns, lay.prepare(column_value(record, column), enc), strict=True))
        return values

    def _keys(self, values: dict[str, int], enc: Interner | BatchEncoder, *, record: bool = False) -> list[int | None]:
        keys: list[int | None] = []
        for parts in self._record_key_parts if record else self._key_parts:
            key = 0
            for part in parts:
                value = part(values, enc)
                if value is None:
                    key = -1
                    break
                key = (key << _SHIFT) | value
            keys.append(None if key < 0 else key)
        return keys

    # --- batches ---------------------------------------------------------------------------

    def missing_shares(self, batch: Batch) -> dict[str, tuple[float, float]]:
        """Per field: the share of live entries and of the batch's records with no readable value."""
        live = self.live_slots()
        out = {}
        for lay in self.layouts:
            column = lay.columns[0]
            missing = MISSING if lay.field.kind in ("name", "exact") else 0  # what `fields` prepares for no value
            entries = float(np.mean(self._columns[column][live] == missing)) if len(live) else 0.0
            records = float(np.mean(batch.columns[column] == missing)) if len(batch) else 0.0
            out[lay.field.name] = (entries, records)
        return out

    def column(self, name: str) -> np.ndarray:
        return self._columns[name]

    def term_frequency(self, column: str, codes: np.ndarray) -> np.ndarray:
        """Share of indexed entries holding each code (0 for codes the registry never held)."""
        counts = self._counts[column]
        known = (codes >= 0) & (codes < len(counts))
        out = np.zeros(len(codes), dtype=np.float64)
        out[known] = counts[codes[known]] / max(len(self._slots), 1)
        return out

    def encode(self, records: Sequence[Mapping[str, Any]]) -> Batch:
        """Records (right-hand columns) prepared for comparison; the index is not changed."""
        encoder = BatchEncoder(self.vocabs)
        rows = [self._prepare(r, encoder, side="right") for r in records]
        columns = {c: np.fromiter((row[c] for row in rows), dtype=a.dtype, count=len(rows))
                   for c, a in self._columns.items()}
        ids = [None if (v := column_value(r, self.settings.unique_id_right)) is None else str(v) for r in records]
        return Batch(columns, encoder, ids, rows)

    def candidates(self, batch: Batch, rules: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(record row, slot) of every distinct pair some blocking rule puts together."""
        rows: list[int] = []
        slots: list[int] = []
        chosen = range(len(self._rules)) if rules is None else rules
        for i, values in enumerate(batch.rows):
            keys = self._keys(values, batch.encoder, record=True)
            for r in chosen:
                key = keys[r]
                held = self._blocks[r].get(key) if key is not None else None
                if held is None:
                    continue
                if isinstance(held, int):
                    rows.append(i)
                    slots.append(held)
                else:
                    rows.extend([i] * len(held))
                    slots.extend(held)
        pairs = np.unique(np.array(rows, dtype=np.int64) << 32 | np.array(slots, dtype=np.int64))
        return self.without_self(batch, (pairs >> 32).astype(np.int64), (pairs & 0xFFFFFFFF).astype(np.int64))

    def without_self(self, batch: Batch, rows: np.ndarray, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The pairs less those of a record with its own entry, when the settings link a file to itself."""
        if not self.settings.dedupe or len(rows) == 0:
            return rows, slots
        own = np.array([-1 if rid is None else self._slots.get(rid, -1) for rid in batch.record_ids], dtype=np.int64)
        keep = own[rows] != slots
        return rows[keep], slots[keep]
