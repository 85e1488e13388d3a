"""Folding the stewards' review decisions into a trained model.

`gsp review export` writes one row per decided pair: ``decision`` (ACCEPTED or REJECTED) and a
``level.<comparison>`` column per comparison with the level the pair reached. An ACCEPTED pair
is a labelled match, so its levels are counts for m. The model's own m (from EM or earlier
labels) weighs as ``strength`` pairs, so a handful of decisions nudges it and thousands take
over:

    m'[level] = (strength * m[level] + accepted pairs at level) / (strength + accepted pairs compared)

u is not changed: rejected pairs are the near misses a steward was shown, not random pairs, and
would bias it. They are used to report how the model judges the stewards' pairs before and
after (pairwise, at the registry size given, without term frequencies: the export holds no
values).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from streams.linkage.errors import LinkageError
from streams.linkage.model import Model

__all__ = ["fold_decisions"]

_ACCEPTED, _REJECTED = "ACCEPTED", "REJECTED"


def _levels(model: Model, row: Mapping[str, str]) -> list[int | None] | None:
    """The level index per comparison of one exported decision (None where it has none); None if a level is
    unknown to this model (the decision was made under other settings)."""
    out: list[int | None] = []
    for c in model.settings.comparisons:
        label = (row.get(f"level.{c.name}") or "").strip()
        if not label:
            out.append(None)
        elif label in c.labels:
            out.append(c.labels.index(label))
        else:
            return None
    return out if any(level is not None for level in out) else None


def _agreement(model: Model, pairs: Sequence[list[int | None]], registry_size: int) -> int:
    """How many of `pairs` the model MATCHES alone (pairwise probability, no term frequencies)."""
    weights = model.level_weights()
    prior = model.prior_weight(registry_size)
    threshold = model.settings.thresholds.match_probability
    hits = 0
    for levels in pairs:
        w = prior + sum(float(weights[j][lv]) for j, lv in enumerate(levels) if lv is not None)
        hits += 1.0 / (1.0 + 2.0 ** -min(max(w, -60.0), 60.0)) >= threshold
    return hits


def fold_decisions(model: Model, rows: Sequence[Mapping[str, str]], *, strength: float = 100.0,
                   registry_size: int = 1_000_000) -> tuple[Model, dict[str, Any]]:
    """A model whose m also counts the ACCEPTED decisions in `rows`, and a report of what changed.

    Raises LinkageError when no row is a decision this model's comparisons can read."""
    if strength < 0:
        raise LinkageError("strength is a number of pairs, 0 or more")
    accepted: list[list[int | None]] = []
    rejected: list[list[int | None]] = []
    skipped = 0
    for row in rows:
        decision = (row.get("decision") or "").strip().upper()
        levels = _levels(model, row)
        if decision not in (_ACCEPTED, _REJECTED) or levels is None:
            skipped += 1
            continue
        (accepted if decision == _ACCEPTED else rejected).append(levels)
    if not accepted and not rejected:
        names = ", ".join(f"level.{c.name}" for c in model.settings.comparisons)
        raise LinkageError(f"none of the {len(rows)} rows is a decision this model can read: it needs a decision "
                           f"column (ACCEPTED/REJECTED) and level columns {names} with this model's level labels")
    m = []
    for j, (c, old) in enumerate(zip(model.settings.comparisons, model.m, strict=True)):
        seen = [level for levels in accepted if (level := levels[j]) is not None]
        counts = np.bincount(np.asarray(seen, dtype=np.int64), minlength=len(c.labels)).astype(float)
        counts[0] = 0.0  # "null": no evidence either way, weight 0 by definition
        new = (strength * np.asarray(old, dtype=np.float64) + counts) / (strength + counts.sum())
        new[0] = 1.0
        m.append(new)
    training = {**model.training, "labels": {"accepted": len(accepted), "rejected": len(rejected),
                                             "skipped": skipped, "strength": strength}}
    folded = Model.from_estimates(model.settings, m, [np.asarray(u) for u in model.u], model.match_share, training)
    report = {
        "accepted": len(accepted), "rejected": len(rejected), "skipped": skipped, "strength": strength,
        "registry_size": registry_size,
        "accepted_matched_before": _agreement(model, accepted, registry_size),
        "accepted_matched_after": _agreement(folded, accepted, registry_size),
        "rejected_matched_before": _agreement(model, rejected, registry_size),
        "rejected_matched_after": _agreement(folded, rejected, registry_size),
    }
    return folded, report
