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

from collections.abc import Callable, Mapping

import numpy as np
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler, Levenshtein
from rapidfuzz.process import cpdist

from streams.linkage.config import Comparison, Level
from streams.linkage.fields import EXACT_VOCAB, MISSING, NAME_VOCABS, Encoder

__all__ = ["compare", "distance", "similarity"]

_POW10 = 10 ** np.arange(12, dtype=np.int64)

Arrays = Mapping[str, np.ndarray]


def similarity(left: np.ndarray, right: np.ndarray, vocab: str, enc: Encoder) -> np.ndarray:
    """Jaro-Winkler similarity of each pair of codes of `vocab`."""
    return _pairwise(JaroWinkler.similarity, left, right, lambda code: enc.string(vocab, code), np.float64)


def distance(level: str, kind: str, left: np.ndarray, right: np.ndarray, enc: Encoder) -> np.ndarray:
    """Edit distance (`level`: levenshtein or damerau_levenshtein) of each pair's values as text."""
    measure = Levenshtein.distance if level == "levenshtein" else DamerauLevenshtein.distance
    return _pairwise(measure, left, right, lambda value: _as_text(kind, value, enc), np.int32)


def _pairwise(scorer: Callable[..., float], left: np.ndarray, right: np.ndarray, text: Callable[[int], str],
              dtype: type) -> np.ndarray:
    """scorer(text(left[i]), text(right[i])) for every i: each distinct pair once, in rapidfuzz's C loop
    (`cpdist`), each value's string made once; a million random pairs in well under a second."""
    if len(left) == 0:
        return np.zeros(0, dtype=dtype)
    lvalues, li = np.unique(left, return_inverse=True)
    rvalues, ri = np.unique(right, return_inverse=True)
    keys, inverse = np.unique(li.reshape(-1).astype(np.int64) * len(rvalues) + ri.reshape(-1), return_inverse=True)
    at_left, at_right = np.divmod(keys, len(rvalues))
    ltext = [text(v) for v in lvalues.tolist()]
    rtext = [text(v) for v in rvalues.tolist()]
    scores = cpdist([ltext[i] for i in at_left.tolist()], [rtext[i] for i in at_right.tolist()], scorer=scorer,
                    dtype=dtype, workers=1)
    return np.asarray(scores)[inverse.reshape(-1)]


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


def compare(c: Comparison, kind: str, lt: Arrays, rt: Arrays, enc: Encoder) -> np.ndarray:
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
                sim = similarity(lt[col][todo], rt[col][todo], NAME_VOCABS["folded"], enc)
                hit[todo[sim >= (lv.threshold or 0.0)]] = True
            else:
                col = _value_column(kind, field)
                dist = distance(lv.level, kind, lt[col][todo], rt[col][todo], enc)
                hit[todo[dist <= (lv.threshold or 0.0)]] = True
        else:
            hit = pred & ~done
        out[hit] = i
        done |= hit
    return out
