"""Comparison levels, computed for many pairs at once over the integer columns of `fields`.

Each comparison maps a pair to a level index: 0 "null" (missing or not comparable), then the
declared levels in order (the first that holds wins), then "else". Levels by field kind:

    name      exact (NFC), tone (tone placement ignored), folded (no marks, đ->d),
              jaro_winkler (on the folded form, threshold 0..1), swapped (with another name
              field: each side's value is the other's on the other side, folded)
    date      exact, day_month_swapped, year_only (either side has the year alone),
              month_day (same day and month, another year), year_month, same_year,
              within_years (threshold in years)
    id        exact, one_digit (one digit differs), transposed (two adjacent digits swapped);
              ids of different lengths (9-digit CMND, 12-digit personal id) are "null"
    phone, province, exact    exact
    id, phone, exact          levenshtein, damerau_levenshtein (at most `threshold` edits; a
              transposition is one edit for Damerau-Levenshtein, two for Levenshtein)
    exact     swapped (with another exact field)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler, Levenshtein

from streams.linkage.config import Comparison, Level
from streams.linkage.fields import EXACT_VOCAB, MISSING, NAME_VOCABS, Encoder

__all__ = ["JaroWinklerCache", "compare"]

_POW10 = 10 ** np.arange(12, dtype=np.int64)

Arrays = Mapping[str, np.ndarray]


class JaroWinklerCache:
    """Jaro-Winkler similarity of folded strings, remembered by code pair (registry codes only)."""

    def __init__(self, limit: int = 2_000_000) -> None:
        self._known: dict[int, float] = {}
        self._edits: dict[str, dict[tuple[int, int], float]] = {}
        self._limit = limit

    def similarity(self, left: np.ndarray, right: np.ndarray, vocab: str, enc: Encoder) -> np.ndarray:
        keys = (left.astype(np.int64) << 32) | (right.astype(np.int64) & 0xFFFFFFFF)
        unique, inverse = np.unique(keys, return_inverse=True)
        if len(self._known) > self._limit:
            self._known.clear()
            self._edits.clear()
        known, out = self._known, np.empty(len(unique), dtype=np.float64)
        for i, key in enumerate(unique.tolist()):
            sim = known.get(key)
            if sim is None:
                a, b = key >> 32, (key & 0xFFFFFFFF) - ((key & 0x80000000) << 1)
                sim = JaroWinkler.similarity(enc.string(vocab, a), enc.string(vocab, b))
                if b >= 0:
                    known[key] = sim
            out[i] = sim
        return out[inverse]

    def distance(self, level: str, kind: str, left: np.ndarray, right: np.ndarray, enc: Encoder) -> np.ndarray:
        """Edit distance (`level`: levenshtein or damerau_levenshtein) of each pair's values as text."""
        measure = Levenshtein.distance if level == "levenshtein" else DamerauLevenshtein.distance
        if len(left) == 0:
            return np.zeros(0, dtype=np.float64)
        pairs, inverse = np.unique(np.stack([left, right], axis=1), axis=0, return_inverse=True)
        known = self._edits.setdefault(level, {})
        out = np.empty(len(pairs), dtype=np.float64)
        for i, (a, b) in enumerate(pairs.tolist()):
            found = known.get((a, b))
            if found is None:
                found = measure(_as_text(kind, a, enc), _as_text(kind, b, enc))
                if kind != "exact" or b >= 0:  # a batch's own codes mean other strings in the next batch
                    known[(a, b)] = found
            out[i] = found
        return out[inverse.reshape(-1)]


def _as_text(kind: str, value: int, enc: Encoder) -> str:
    if kind == "exact":
        return enc.string(EXACT_VOCAB, value)
    if kind == "id":
        number, digits = divmod(value, 100)
        return str(number).zfill(digits)
    return str(value).zfill(10)  # a phone's national number


_EDIT_LEVELS = ("levenshtein", "damerau_levenshtein")


def _value_column(kind: str, field: str) -> str:
    return f"{field}.value" if kind in ("phone", "id") else f"{field}.code"


def _split_date(ymd: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    year, md = np.divmod(ymd, 10000)
    month, day = np.divmod(md, 100)
    return year, month, day


def _name_levels(c: Comparison, field: str, lt: Arrays, rt: Arrays) -> tuple[np.ndarray, list[np.ndarray | None]]:
    col = f"{field}.{c.part}."
    le, re_ = lt[col + "exact"], rt[col + "exact"]
    null = (le == MISSING) | (re_ == MISSING)
    preds: list[np.ndarray | None] = []
    for lv in c.levels:
        if lv.level == "jaro_winkler":
            preds.append(None)  # computed on what is left, see compare()
        elif lv.with_ is not None:
            other = f"{lv.with_}.{c.part}.folded"
            preds.append((lt[col + "folded"] == rt[other]) & (lt[other] == rt[col + "folded"]))
        else:
            preds.append(lt[col + lv.level] == rt[col + lv.level])
    return null, preds


def _date_pred(lv: Level, lt: tuple[np.ndarray, ...], rt: tuple[np.ndarray, ...]) -> np.ndarray:
    (ly, lm, ld), (ry, rm, rd) = lt, rt
    same_year = ly == ry
    if lv.level == "exact":
        pred = same_year & (lm == rm) & (ld == rd) & (lm > 0)
    elif lv.level == "day_month_swapped":
        pred = same_year & (lm == rd) & (ld == rm) & (lm > 0) & (rm > 0)
    elif lv.level == "year_only":
        pred = same_year & ((lm == 0) | (rm == 0))
    elif lv.level == "month_day":
        pred = (lm == rm) & (ld == rd) & (lm > 0)
    elif lv.level == "year_month":
        pred = same_year & (lm == rm)
    elif lv.level == "same_year":
        pred = same_year
    else:
        pred = np.abs(ly - ry) <= (lv.threshold or 0)
    return np.asarray(pred, dtype=bool)


def _id_levels(c: Comparison, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, list[np.ndarray | None]]:
    ln, ll = np.divmod(left, 100)
    rn, rl = np.divmod(right, 100)
    null = (left == 0) | (right == 0) | (ll != rl)
    exact = left == right
    needs_digits = any(lv.level in ("one_digit", "transposed") for lv in c.levels)
    if needs_digits:
        ld, rd = (ln[:, None] // _POW10) % 10, (rn[:, None] // _POW10) % 10
        differ = ld != rd
        hamming = differ.sum(axis=1)
        swapped = (differ[:, :-1] & differ[:, 1:] & (ld[:, :-1] == rd[:, 1:]) & (ld[:, 1:] == rd[:, :-1])).any(axis=1)
    preds: list[np.ndarray | None] = []
    for lv in c.levels:
        if lv.level == "exact":
            preds.append(exact)
        elif lv.level in _EDIT_LEVELS:
            preds.append(None)
        elif lv.level == "one_digit":
            preds.append(hamming == 1)
        else:
            preds.append((hamming == 2) & swapped)
    return null, preds


def compare(c: Comparison, kind: str, lt: Arrays, rt: Arrays, enc: Encoder, jw: JaroWinklerCache) -> np.ndarray:
    """Level index (int8) of comparison `c` for every pair; `lt`/`rt` hold the pairs' columns."""
    field = c.field
    if kind == "name":
        null, preds = _name_levels(c, field, lt, rt)
    elif kind == "date":
        ls, rs = _split_date(lt[f"{field}.ymd"]), _split_date(rt[f"{field}.ymd"])
        null = (ls[0] == 0) | (rs[0] == 0)
        preds = [_date_pred(lv, ls, rs) for lv in c.levels]
    elif kind == "id":
        null, preds = _id_levels(c, lt[f"{field}.value"], rt[f"{field}.value"])
    else:
        column = _value_column(kind, field)
        left, right = lt[column], rt[column]
        missing = MISSING if kind == "exact" else 0
        null = (left == missing) | (right == missing)
        preds = [None if lv.level in _EDIT_LEVELS else left == right if lv.with_ is None else
                 (left == rt[_value_column(kind, lv.with_)]) & (lt[_value_column(kind, lv.with_)] == right)
                 for lv in c.levels]
    out = np.full(len(null), len(c.levels) + 1, dtype=np.int8)
    done = null.copy()
    out[null] = 0
    for i, (lv, pred) in enumerate(zip(c.levels, preds, strict=True), start=1):
        if pred is None:  # similarity or distance, only for the pairs no stronger level took
            todo = np.flatnonzero(~done)
            hit = np.zeros(len(out), dtype=bool)
            if lv.level == "jaro_winkler":
                col = f"{field}.{c.part}.folded"
                sim = jw.similarity(lt[col][todo], rt[col][todo], NAME_VOCABS["folded"], enc)
                hit[todo[sim >= (lv.threshold or 0.0)]] = True
            else:
                col = _value_column(kind, field)
                dist = jw.distance(lv.level, kind, lt[col][todo], rt[col][todo], enc)
                hit[todo[dist <= (lv.threshold or 0.0)]] = True
        else:
            hit = pred & ~done
        out[hit] = i
        done |= hit
    return out
