"""Scoring a micro-batch: blocking, vectorised comparison levels, match weights, one verdict each.

All pairs of a batch are compared column by column with numpy; Python only prepares each
record once (name forms are cached) and looks its blocking keys up. Each record keeps its
best-weighted registry entry. Its match probability weighs that entry against every other
candidate and against "nobody in the registry" (a record is one person):

    p = 2^w_best / (1 + sum over candidates of 2^w)

so two entries that fit equally well both stay below the match threshold. Verdicts:

    MATCHED    p >= thresholds.match_probability
    POSSIBLE   p >= thresholds.review_probability: a person should look (the review queue)
    NO_MATCH   below, or no candidate at all (then the weight is the prior alone)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from schemas.envelope import Verdict
from streams.linkage.comparators import compare
from streams.linkage.fields import tf_column
from streams.linkage.index import Batch, RegistryIndex
from streams.linkage.model import Model

__all__ = ["Link", "best_pairs", "duplicate_pairs", "level_labels", "pair_levels", "pair_weights", "probability", "score_batch",
           "score_pairs", "verdict"]


@dataclass(frozen=True, slots=True)
class Link:
    """A record's verdict against the registry and the evidence for it."""

    record_id: str | None
    verdict: Verdict  # MATCHED | POSSIBLE | NO_MATCH, by the thresholds
    personal_id: str | None  # the best registry entry, None when no entry was a candidate
    match_weight: float  # log2 of the posterior odds
    match_probability: float
    levels: tuple[tuple[str, str], ...]  # (comparison, level label) for that entry
    candidates: int  # registry entries compared


class _Gathered(Mapping[str, np.ndarray]):
    """Columns of one side taken at the pairs' rows, gathered on first use."""

    def __init__(self, columns: Mapping[str, np.ndarray], at: np.ndarray) -> None:
        self._columns, self._at = columns, at
        self._done: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._done:
            self._done[name] = self._columns[name][self._at]
        return self._done[name]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


class _IndexColumns(Mapping[str, np.ndarray]):
    def __init__(self, index: RegistryIndex) -> None:
        self._index = index

    def __getitem__(self, name: str) -> np.ndarray:
        return self._index.column(name)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(())

    def __len__(self) -> int:
        return 0


def pair_levels(index: RegistryIndex, batch: Batch, rows: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """Level index of every comparison (columns) for every pair (rows) of batch row x index slot."""
    left, right = _Gathered(_IndexColumns(index), slots), _Gathered(batch.columns, rows)
    comparisons = index.settings.comparisons
    out = np.empty((len(rows), len(comparisons)), dtype=np.int8)
    for j, c in enumerate(comparisons):
        out[:, j] = compare(c, index.kinds[c.field], left, right, batch.encoder)
    return out


def pair_weights(index: RegistryIndex, model: Model, levels: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """Match weight of every pair: prior + level weights + term-frequency adjustments."""
    settings = model.settings
    total = np.full(len(levels), model.prior_weight(len(index)), dtype=np.float64)
    for j, (c, weights) in enumerate(zip(settings.comparisons, model.level_weights(), strict=True)):
        total += weights[levels[:, j]]
        for i, lv in enumerate(c.levels, start=1):
            if not lv.tf:
                continue
            at = np.flatnonzero(levels[:, j] == i)
            if len(at) == 0:
                continue
            column = tf_column(c, index.kinds[c.field])[0]
            freq = index.term_frequency(column, index.column(column)[slots[at]])
            total[at] += np.log2(model.u[j][i]) - np.log2(np.maximum(freq, settings.tf_minimum))
    return total


def probability(weight: float) -> float:
    """Probability of a match weight taken alone (no competing candidates)."""
    return float(1.0 / (1.0 + np.exp2(-np.clip(weight, -60.0, 60.0))))


def verdict(p: float, model: Model) -> Verdict:
    t = model.settings.thresholds
    return (Verdict.MATCHED if p >= t.match_probability else Verdict.POSSIBLE if p >= t.review_probability
            else Verdict.NO_MATCH)


class _Labels:
    """(comparison, level label) tuples of a level vector, built once per distinct vector."""

    def __init__(self, model: Model) -> None:
        self._names = [c.name for c in model.settings.comparisons]
        self._labels = [c.labels for c in model.settings.comparisons]
        self._known: dict[bytes, tuple[tuple[str, str], ...]] = {}

    def __call__(self, levels: np.ndarray) -> tuple[tuple[str, str], ...]:
        key = levels.tobytes()
        found = self._known.get(key)
        if found is None:
            found = self._known[key] = tuple(
                (name, labels[lv]) for name, labels, lv in zip(self._names, self._labels, levels.tolist(), strict=True))
        return found


def level_labels(model: Model, levels: Sequence[int]) -> tuple[tuple[str, str], ...]:
    return _Labels(model)(np.asarray(levels, dtype=np.int8))


def best_pairs(rows: np.ndarray, weights: np.ndarray, n_records: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per record: position of its best pair (-1: none), candidate count, match probability."""
    best = np.full(n_records, -1, dtype=np.int64)
    p = np.zeros(n_records, dtype=np.float64)
    if len(rows):
        order = np.lexsort((-weights, rows))
        first = order[np.r_[True, rows[order][1:] != rows[order][:-1]]]
        best[rows[first]] = first
        odds = np.exp2(np.clip(weights, -200.0, 200.0))
        total = np.bincount(rows, weights=odds, minlength=n_records)
        p[rows[first]] = odds[first] / (1.0 + total[rows[first]])
    return best, np.bincount(rows, minlength=n_records), p


def score_batch(index: RegistryIndex, model: Model, records: Sequence[Mapping[str, Any]]) -> list[Link]:
    """The best registry entry for every record, with its verdict, in input order."""
    batch = index.encode(records)
    rows, slots = index.candidates(batch)
    levels = pair_levels(index, batch, rows, slots)
    weights = pair_weights(index, model, levels, slots)
    best, counts, probabilities = best_pairs(rows, weights, len(batch))
    prior = model.prior_weight(len(index))
    labels = _Labels(model)
    links = []
    for i, at in enumerate(best.tolist()):
        if at < 0:
            links.append(Link(batch.record_ids[i], Verdict.NO_MATCH, None, prior, float(probability(prior)), (), 0))
            continue
        p = float(probabilities[i])
        links.append(Link(batch.record_ids[i], verdict(p, model), index.unique_id(int(slots[at])),
                          float(weights[at]), p, labels(levels[at]), int(counts[i])))
    return links


def score_pairs(index: RegistryIndex, model: Model, records: Sequence[Mapping[str, Any]],
                unique_ids: Sequence[str | None]) -> list[Link | None]:
    """Each record against the one registry entry named for it (None where the index holds no such entry).

    The pair's probability is against that entry alone (no other candidates): how likely a
    record whose id points at an entry, but whose name or date disagrees, is that person.
    """
    at = [(i, slot) for i, uid in enumerate(unique_ids) if uid is not None and (slot := index.slot(uid)) is not None]
    out: list[Link | None] = [None] * len(records)
    if not at:
        return out
    batch = index.encode([records[i] for i, _ in at])
    rows = np.arange(len(at), dtype=np.int64)
    slots = np.array([slot for _, slot in at], dtype=np.int64)
    levels = pair_levels(index, batch, rows, slots)
    weights = pair_weights(index, model, levels, slots)
    _, _, probabilities = best_pairs(rows, weights, len(at))
    labels = _Labels(model)
    for j, (i, _) in enumerate(at):
        p = float(probabilities[j])
        out[i] = Link(batch.record_ids[j], verdict(p, model), unique_ids[i], float(weights[j]), p, labels(levels[j]), 1)
    return out


def duplicate_pairs(index: RegistryIndex, model: Model, records: Sequence[Mapping[str, Any]], *,
                    threshold: float) -> list[tuple[str, str, float]]:
    """Deduplication: every (record id, entry id, probability) pair at or above `threshold`.

    The index holds the same file (settings ``dedupe_only``, so a record never meets its own
    entry). Unlike `score_batch` a record may have several duplicates, so each pair's
    probability is its weight alone. Both orders of a pair can appear; callers normalise.
    """
    batch = index.encode(records)
    rows, slots = index.candidates(batch)
    weights = pair_weights(index, model, pair_levels(index, batch, rows, slots), slots)
    p = 1.0 / (1.0 + np.exp2(-np.clip(weights, -60.0, 60.0)))
    keep = np.flatnonzero(p >= threshold)
    return [(batch.record_ids[r] or "", index.unique_id(s) or "", float(q))
            for r, s, q in zip(rows[keep].tolist(), slots[keep].tolist(), p[keep].tolist(), strict=True)]
