"""The registry index split by personal id: each partition scores a batch against its share, a merge decides.

An entry lives in exactly one partition, the registry changelog's (`partition_of`: Kafka's
default partitioner on the personal id), so a worker holding some partitions holds about the
registry divided by the number of workers. A record's blocking keys can point anywhere, so
every partition sees every record: it looks the keys up in its own blocking dictionaries, and
the union of the partitions' candidates is exactly the whole index's. Each partition returns,
per record, a partial result (`Partials`): its best candidate (id, weight, level vector), the
sum of 2^w over its candidates and their count. `merge` takes the best weight over the
partitions, adds the odds and the counts, and decides as `score_batch` does:

    p = 2^w_best / (1 + sum over every partition's candidates of 2^w)

Weights are the whole index's only if two inputs are the registry's, not the partition's: N,
the registry size the prior divides by, and the term frequencies (share of the registry holding
a name). Codes are per partition (each interns its own strings), so each partition counts its
values by string (`PartitionIndex.local_counts`), the counts are added up (`TermCounts.total`,
a table of a few thousand names) and handed back to every partition (`use_counts`). Counts are
those of the last exchange: a value first indexed since then weighs as the rarest
(`tf_minimum`) until the next.

Equal best weights in two entries (twins differing only in what the record lacks) go to the
smaller personal id, in a partition and in the merge, so the choice does not depend on how the
registry is split. `score_batch` takes the entry indexed first: the same when the index was
filled in personal-id order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from schemas.envelope import Verdict
from streams.linkage.config import Settings
from streams.linkage.errors import LinkageError
from streams.linkage.index import RegistryIndex
from streams.linkage.model import Model
from streams.linkage.score import Link, best_pairs, level_labels, pair_levels, pair_weights, probability, verdict

__all__ = ["Partials", "PartitionIndex", "TermCounts", "merge", "partition_of", "score_partial"]

_MASK = 0xFFFFFFFF


def _murmur2(data: bytes) -> int:
    """Kafka's murmur2 (seed 0x9747b28c), unsigned: what its default partitioner hashes a key with."""
    m, length = 0x5BD1E995, len(data)
    h = (0x9747B28C ^ length) & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = (int.from_bytes(data[i:i + 4], "little") * m) & _MASK
        k = ((k ^ (k >> 24)) * m) & _MASK
        h = ((h * m) & _MASK) ^ k
    tail = data[whole:]
    if len(tail) >= 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h = ((h ^ tail[0]) * m) & _MASK
    h = ((h ^ (h >> 13)) * m) & _MASK
    return h ^ (h >> 15)


def partition_of(personal_id: str, partitions: int) -> int:
    """The partition of a topic keyed by `personal_id` (UTF-8) that holds it, as Kafka places it."""
    return (_murmur2(personal_id.encode()) & 0x7FFFFFFF) % partitions


@dataclass(frozen=True)
class TermCounts:
    """How many entries hold each value a comparison adjusts for, by string, and how many entries in all."""

    registry_size: int  # entries counted: a partition's, or the registry's in a total
    values: Mapping[str, Mapping[str, int]]  # term-frequency column -> value -> entries holding it

    @classmethod
    def total(cls, parts: Iterable[TermCounts]) -> TermCounts:
        """The registry's counts: the sum of its partitions'."""
        size = 0
        values: dict[str, Counter[str]] = {}
        for part in parts:
            size += part.registry_size
            for column, counts in part.values.items():
                values.setdefault(column, Counter()).update(counts)
        return cls(size, {column: dict(counts) for column, counts in values.items()})


class PartitionIndex(RegistryIndex):
    """The entries of some partitions, weighing pairs with the registry's size and term counts.

    ``len()`` is what the prior reads: the registry's size once `use_counts` gave it, before
    that this index's; `entries` is always this index's.
    """

    def __init__(self, settings: Settings, *, capacity: int = 1024) -> None:
        super().__init__(settings, capacity=capacity)
        self.counts: TermCounts | None = None
        self._by_code: dict[str, np.ndarray] = {}  # column -> registry-wide count of each local code

    @property
    def entries(self) -> int:
        return super().__len__()

    def __len__(self) -> int:
        return self.counts.registry_size if self.counts is not None else super().__len__()

    def local_counts(self) -> TermCounts:
        """This index's share of the registry's counts, by string (codes mean nothing elsewhere)."""
        live = self.live_slots()
        values: dict[str, dict[str, int]] = {}
        for column, vocab in self.tf_vocabs.items():
            codes = self.column(column)[live]
            found = np.bincount(codes[codes >= 0])
            strings = self.vocabs[vocab].strings if len(found) else []
            values[column] = {strings[code]: int(found[code]) for code in np.flatnonzero(found).tolist()}
        return TermCounts(self.entries, values)

    def use_counts(self, counts: TermCounts) -> None:
        """Weigh pairs with the registry's counts (`TermCounts.total` of every partition's) from now on."""
        self.counts = counts
        self._by_code = {column: self._code_counts(column, counts) for column in self.tf_vocabs}

    def _code_counts(self, column: str, counts: TermCounts) -> np.ndarray:
        vocab = self.vocabs.get(self.tf_vocabs[column])
        table = counts.values.get(column, {})
        strings = vocab.strings if vocab is not None else []
        return np.fromiter((table.get(s, 0) for s in strings), dtype=np.int64, count=len(strings))

    def term_frequency(self, column: str, codes: np.ndarray) -> np.ndarray:
        """Share of the registry's entries holding each code's value, by the last counts received."""
        if self.counts is None:
            return super().term_frequency(column, codes)
        counts = self._by_code[column]
        if len(codes) and int(codes.max()) >= len(counts):  # strings interned since the counts came
            counts = self._by_code[column] = self._code_counts(column, self.counts)
        out = np.zeros(len(codes), dtype=np.float64)
        known = codes >= 0
        out[known] = counts[codes[known]] / max(self.counts.registry_size, 1)
        return out


@dataclass(frozen=True)
class Partials:
    """One partition's view of a batch, row i for record i: its best candidate, its odds, its count."""

    record_ids: tuple[str | None, ...]
    registry_size: int  # the N its weights were computed with
    best_id: tuple[str | None, ...]  # the best candidate's personal id, None without candidates
    best_weight: np.ndarray  # float64, -inf without candidates
    best_levels: np.ndarray  # int8, records x comparisons
    odds: np.ndarray  # float64, sum of 2^w over the candidates
    candidates: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.record_ids)


def score_partial(index: PartitionIndex, model: Model, records: Sequence[Mapping[str, Any]]) -> Partials:
    """Every record against this partition's entries; `merge` the partials of every partition."""
    if index.counts is None:
        raise LinkageError("a partition scores with the registry's term counts: call use_counts first")
    batch = index.encode(records)
    rows, slots = index.candidates(batch)
    levels = pair_levels(index, batch, rows, slots)
    weights = pair_weights(index, model, levels, slots)
    best, counts, _ = best_pairs(rows, weights, len(batch))
    has = best >= 0
    top = np.full(len(batch), -np.inf)
    top[has] = weights[best[has]]
    tied = np.flatnonzero(weights == top[rows])
    for row in np.flatnonzero(np.bincount(rows[tied], minlength=len(batch)) > 1).tolist():
        best[row] = min(tied[rows[tied] == row].tolist(), key=lambda at: index.unique_id(int(slots[at])) or "")
    odds = np.bincount(rows, weights=np.exp2(np.clip(weights, -200.0, 200.0)), minlength=len(batch))
    vectors = np.zeros((len(batch), len(model.settings.comparisons)), dtype=np.int8)
    vectors[has] = levels[best[has]]
    ids = tuple(index.unique_id(int(slots[at])) if at >= 0 else None for at in best.tolist())
    return Partials(tuple(batch.record_ids), len(index), ids, top, vectors, odds, counts.astype(np.int64))


def merge(model: Model, parts: Sequence[Partials]) -> list[Link]:
    """Each record's verdict over every partition, as `score_batch` gives it on the whole index."""
    if not parts:
        raise ValueError("nothing to merge")
    first = parts[0]
    if any(p.record_ids != first.record_ids or p.registry_size != first.registry_size for p in parts):
        raise ValueError("partials of different batches, or weighed with different registry sizes")
    weights = np.stack([p.best_weight for p in parts])
    winner = np.argmax(weights, axis=0)
    top = weights[winner, np.arange(len(first))]
    for i in np.flatnonzero(((weights == top) & np.isfinite(top)).sum(axis=0) > 1).tolist():
        winner[i] = min((k for k in range(len(parts)) if weights[k, i] == top[i]),
                        key=lambda k: parts[k].best_id[i] or "")
    total = np.sum([p.odds for p in parts], axis=0)
    candidates = np.sum([p.candidates for p in parts], axis=0)
    probabilities = np.exp2(np.clip(top, -200.0, 200.0)) / (1.0 + total)
    prior = model.prior_weight(first.registry_size)
    labels: dict[bytes, tuple[tuple[str, str], ...]] = {}
    links = []
    for i, (record_id, k) in enumerate(zip(first.record_ids, winner.tolist(), strict=True)):
        part = parts[k]
        if part.best_id[i] is None:
            links.append(Link(record_id, Verdict.NO_MATCH, None, prior, probability(prior), (), 0))
            continue
        vector = part.best_levels[i]
        found = labels.get(key := vector.tobytes())
        if found is None:
            found = labels[key] = level_labels(model, vector.tolist())
        p = float(probabilities[i])
        links.append(Link(record_id, verdict(p, model), part.best_id[i], float(top[i]), p, found, int(candidates[i])))
    return links
