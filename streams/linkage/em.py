"""Fellegi–Sunter parameter estimation on level matrices (pairs x comparisons, int8 levels).

Level 0 is "null" and carries no evidence: it is left out of every distribution. A
distribution over levels 1..K is a float array of length K+1 whose entry 0 is unused (1.0).

- `u_from_pairs`: u from pairs drawn at random, almost all of which are non-matches;
- `m_from_pairs`: m (or u) from labelled pairs, counting levels;
- `expectation_maximisation`: m and the share of matches among the pairs, with u held fixed,
  as Splink does. Comparisons in `ignore` take no part (those the pairs were blocked on,
  whose agreement the blocking itself forced); those in `fixed` count but keep their m.

Identical level vectors are collapsed first, so EM runs over a few thousand patterns
whatever the number of pairs.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["EMResult", "expectation_maximisation", "initial_m", "m_from_pairs", "u_from_pairs"]

_FLOOR = 1e-9
_PSEUDO = 0.5  # pairs added to every level: an unseen level is rare, not impossible


def _counts(levels: np.ndarray, n_levels: Sequence[int], pseudo: float) -> list[np.ndarray]:
    out = []
    for c, k in enumerate(n_levels):
        counts = np.bincount(levels[:, c], minlength=k).astype(np.float64)[:k]
        counts[1:] += pseudo
        total = counts[1:].sum()
        dist = counts / total if total > 0 else np.full(k, 1.0 / max(k - 1, 1))
        dist[0] = 1.0
        out.append(dist)
    return out


def u_from_pairs(levels: np.ndarray, n_levels: Sequence[int]) -> list[np.ndarray]:
    """u per comparison from random pairs; a level never seen gets half a pair's share."""
    return _counts(levels, n_levels, pseudo=_PSEUDO)


def m_from_pairs(levels: np.ndarray, n_levels: Sequence[int]) -> list[np.ndarray]:
    """m per comparison from pairs known to match (labelled data)."""
    return _counts(levels, n_levels, pseudo=_PSEUDO)


def initial_m(n_levels: Sequence[int]) -> list[np.ndarray]:
    """A starting point for EM: most matches agree at the strongest level."""
    out = []
    for k in n_levels:
        declared = k - 1  # levels 1..k-1, the last being "else"
        dist = np.empty(k)
        dist[0] = 1.0
        if declared == 1:
            dist[1] = 1.0
        else:
            dist[1] = 0.8
            dist[2:] = 0.2 / (declared - 1)
        out.append(dist)
    return out


@dataclass(frozen=True)
class EMResult:
    m: list[np.ndarray]
    match_share: float  # share of matches among the pairs EM ran on
    iterations: int
    converged: bool


def expectation_maximisation(levels: np.ndarray, u: Sequence[np.ndarray], m: Sequence[np.ndarray], *,
                             ignore: Collection[int] = (), fixed: Collection[int] = (), match_share: float = 0.3,
                             max_iterations: int = 30, tolerance: float = 1e-5) -> EMResult:
    """Estimate m (and the share of matches) from unlabelled pairs, u fixed."""
    patterns, weights = np.unique(levels, axis=0, return_counts=True)
    weights = weights.astype(np.float64)
    used = [c for c in range(len(u)) if c not in ignore]
    log_u = np.zeros(len(patterns))
    for c in used:
        log_u += np.log(np.maximum(u[c], _FLOOR))[patterns[:, c]]
    m = [d.copy() for d in m]
    share = match_share
    converged = False
    iteration = 0
    for iteration in range(1, max_iterations + 1):
        log_m = np.zeros(len(patterns))
        for c in used:
            log_m += np.log(np.maximum(m[c], _FLOOR))[patterns[:, c]]
        log_odds = np.log(share) - np.log1p(-share) + log_m - log_u
        posterior = 1.0 / (1.0 + np.exp(-np.clip(log_odds, -700, 700)))
        expected = posterior * weights
        new_share = float(np.clip(expected.sum() / weights.sum(), 1e-9, 1 - 1e-9))
        change = abs(new_share - share)
        for c in used:
            if c in fixed:
                continue
            dist = m[c]
            k = len(dist)
            by_level = np.bincount(patterns[:, c], weights=expected, minlength=k)[:k]
            total = by_level[1:].sum()
            if total <= 0:
                continue
            new = np.empty(k)
            new[0] = 1.0
            new[1:] = (by_level[1:] + _PSEUDO) / (total + _PSEUDO * (k - 1))
            change = max(change, float(np.abs(new - dist).max()))
            m[c] = new
        share = new_share
        if change < tolerance:
            converged = True
            break
    return EMResult(m, share, iteration, converged)
