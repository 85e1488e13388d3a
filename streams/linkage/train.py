"""Training a model against an indexed registry: u from random pairs, m by EM (or from labels).

1. u: `training.random_pairs` pairs of a sampled record and a random registry entry.
2. m, without labels: one EM round per training blocking rule over the pairs it yields, u
   fixed; a comparison on a field the rule blocks on is left out of that round (blocking
   forced its agreement), and each comparison's m is the mean over the rounds that estimated
   it. With labels (record id -> registry id) m is counted on the labelled pairs instead.
3. match_share, the share of records with an entry: EM at the record level over the scoring
   blocking rules' candidates, m and u fixed. A record has one person or nobody, so
   P(match) = a*S / (1 - s + a*S), with a = s/N and S the sum of the candidates' Bayes
   factors, and s is the mean of P(match). (EM over pairs would count, in every candidate,
   the agreement the blocking forced.)
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from streams.linkage.em import expectation_maximisation, initial_m, m_from_pairs, u_from_pairs
from streams.linkage.errors import LinkageError
from streams.linkage.fields import BlockValue, block_value
from streams.linkage.index import Batch, RegistryIndex
from streams.linkage.model import Model
from streams.linkage.score import pair_levels, pair_weights

__all__ = ["pairs_on_rule", "train"]

_SHIFT = 48


def pairs_on_rule(index: RegistryIndex, batch: Batch, rule: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(batch row, slot) pairs that agree on every key of `rule`, whether the index keeps it or not."""
    rule = tuple(rule)
    if rule in index.settings.blocking_rules:
        return index.candidates(batch, rules=[index.settings.blocking_rules.index(rule)])
    record_parts = [block_value(index.settings, k, "right") for k in rule]
    entry_parts = [block_value(index.settings, k, "left") for k in rule]
    enc = batch.encoder

    def key(values: dict[str, int], parts: list[BlockValue]) -> int | None:
        packed = 0
        for part in parts:
            value = part(values, enc)
            if value is None:
                return None
            packed = (packed << _SHIFT) | value
        return packed

    wanted: dict[int, list[int]] = {}
    for i, values in enumerate(batch.rows):
        if (k := key(values, record_parts)) is not None:
            wanted.setdefault(k, []).append(i)
    slots = index.live_slots()
    names = list(batch.columns)
    columns = [index.column(n)[slots].tolist() for n in names]
    rows_out: list[int] = []
    slots_out: list[int] = []
    for slot, row in zip(slots.tolist(), zip(*columns, strict=True), strict=True):
        k = key(dict(zip(names, row, strict=True)), entry_parts)
        if k is not None and (rows := wanted.get(k)):
            rows_out.extend(rows)
            slots_out.extend([slot] * len(rows))
    return index.without_self(batch, np.array(rows_out, dtype=np.int64), np.array(slots_out, dtype=np.int64))


def _record_share(index: RegistryIndex, batch: Batch, model: Model, iterations: int = 100) -> float:
    rows, slots = index.candidates(batch)
    evidence = pair_weights(index, model, pair_levels(index, batch, rows, slots), slots)
    evidence -= model.prior_weight(len(index))
    factors = np.bincount(rows, weights=np.exp2(np.clip(evidence, -200.0, 200.0)), minlength=len(batch))
    share = 0.5
    for _ in range(iterations):
        a = share / len(index) * factors
        new = float(np.mean(a / (1.0 - share + a)))
        if abs(new - share) < 1e-7:
            break
        share = min(max(new, 1e-6), 0.999)
    return share


def _sample(records: Sequence[Mapping[str, Any]], limit: int, rng: np.random.Generator) -> list[Mapping[str, Any]]:
    if len(records) <= limit:
        return list(records)
    return [records[i] for i in sorted(rng.choice(len(records), size=limit, replace=False).tolist())]


def train(index: RegistryIndex, records: Sequence[Mapping[str, Any]], *,
          labels: Mapping[str, str] | None = None) -> Model:
    """A model for `index.settings` from records to be linked to the indexed registry.

    `labels` (record id -> registry unique id of known true pairs) replaces EM for m.
    """
    settings = index.settings
    if len(index) == 0 or not records:
        raise LinkageError("training needs an indexed registry and some records")
    started = time.perf_counter()
    rng = np.random.default_rng(settings.training.seed)
    batch = index.encode(_sample(records, settings.training.max_records, rng))
    comparisons = settings.comparisons
    n_levels = [len(c.labels) for c in comparisons]

    live = index.live_slots()
    k = settings.training.random_pairs
    random_rows = rng.integers(0, len(batch), size=k)
    random_slots = live[rng.integers(0, len(live), size=k)]
    random_rows, random_slots = index.without_self(batch, random_rows, random_slots)
    u = u_from_pairs(pair_levels(index, batch, random_rows, random_slots), n_levels)

    rounds: list[dict[str, Any]] = []
    if labels is not None:
        pairs = [(i, index.slot(labels[rid])) for i, rid in enumerate(batch.record_ids)
                 if rid is not None and rid in labels and labels[rid] in index]
        rows = np.array([p[0] for p in pairs], dtype=np.int64)
        slots = np.array([p[1] for p in pairs], dtype=np.int64)
        m = m_from_pairs(pair_levels(index, batch, rows, slots), n_levels)
        match_share = max(len(pairs) / len(batch), 1e-6)
        rounds.append({"labelled_pairs": len(pairs)})
    else:
        estimates: list[list[np.ndarray]] = [[] for _ in comparisons]
        start = initial_m(n_levels)
        for rule in settings.training.blocking_rules:
            rows, slots = pairs_on_rule(index, batch, rule)
            if len(rows) == 0:
                continue
            blocked = {key.partition(".")[0] for key in rule}
            fixed = {j for j, c in enumerate(comparisons) if c.field in blocked}
            result = expectation_maximisation(pair_levels(index, batch, rows, slots), u, start, ignore=fixed,
                                              max_iterations=settings.training.max_iterations)
            for j in range(len(comparisons)):
                if j not in fixed:
                    estimates[j].append(result.m[j])
            rounds.append({"blocking_rule": list(rule), "pairs": len(rows), "iterations": result.iterations,
                           "converged": result.converged, "match_share_of_pairs": round(result.match_share, 6)})
        m = [np.mean(found, axis=0) if found else first for found, first in zip(estimates, start, strict=True)]
        untrained = [c.name for c, found in zip(comparisons, estimates, strict=True) if not found]
        match_share = _record_share(index, batch, Model.from_estimates(settings, m, u, 0.5))
        if untrained:
            rounds.append({"m_not_estimated": untrained})
    training = {
        "method": "labels" if labels is not None else "em",
        "records": len(batch),
        "registry_entries": len(index),
        "random_pairs": k,
        "rounds": rounds,
        "seconds": round(time.perf_counter() - started, 3),
    }
    return Model.from_estimates(settings, m, u, match_share, training)
