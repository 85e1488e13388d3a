"""How a field is stored for comparison: a few integer columns per record, and its blocking keys.

Strings (name tokens, exact values) are interned as int32 codes, so a comparison is an integer
equality over numpy arrays and a registry entry costs a few bytes per field. Codes of registry
values are >= 0; a record's value the registry has never seen gets a negative code local to its
batch (it can equal nothing in the registry, but its string is still there for Jaro-Winkler);
-1 is "missing". The vocabularies are shared by every field of a kind (`NAME_VOCABS`, `EXACT_VOCAB`),
so two columns can be compared with each other (a given name written as the surname).

Columns per kind (``<field>.<column>``):
    name       <part>.exact, <part>.tone, <part>.folded for each part compared or blocked on
    date       ymd = year*10000 + month*100 + day (month and day 0 for a year alone)
    id         value = number*100 + digit count, so a 9-digit CMND never equals a 12-digit id
    phone      value = the 10-digit national number
    province   code = the 2025 province
    exact      code = the NFC, case-folded, trimmed value
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from streams.linkage import text
from streams.linkage.config import FORMS, PARTS, Comparison, Field, Settings, split_key

__all__ = ["EXACT_VOCAB", "MISSING", "NAME_VOCABS", "BlockValue", "Encoder", "FieldLayout", "block_value", "layouts",
           "tf_column"]

MISSING = -1
NAME_VOCABS = {form: f"name.{form}" for form in FORMS}  # shared by every name field
EXACT_VOCAB = "exact"  # shared by every exact field


class Encoder(Protocol):
    """Codes of strings: interning for the registry, look-up plus batch-local codes for records."""

    def code(self, vocab: str, value: str) -> int: ...

    def string(self, vocab: str, code: int) -> str: ...


@dataclass(frozen=True, slots=True)
class FieldLayout:
    """The stored columns of one field and how a raw value becomes them."""

    field: Field
    columns: tuple[str, ...]  # full column names, "full_name.given.exact"
    dtypes: tuple[type, ...]
    prepare: Callable[[Any, Encoder], tuple[int, ...]]


def _name_layout(f: Field, parts: tuple[str, ...]) -> FieldLayout:
    vocabs = tuple(NAME_VOCABS.values())
    missing = (MISSING,) * (3 * len(parts))

    def prepare(raw: Any, enc: Encoder) -> tuple[int, ...]:
        parsed = text.parse_name(raw) if isinstance(raw, str) else None
        if parsed is None:
            return missing
        out: list[int] = []
        for part in parts:
            forms = getattr(parsed, part)
            if forms is None:
                out += (MISSING, MISSING, MISSING)
            else:
                out += (enc.code(vocabs[0], forms.exact), enc.code(vocabs[1], forms.tone),
                        enc.code(vocabs[2], forms.folded))
        return tuple(out)

    columns = tuple(f"{f.name}.{p}.{form}" for p in parts for form in FORMS)
    return FieldLayout(f, columns, (np.int32,) * len(columns), prepare)


def _exact_key(raw: Any) -> str | None:
    if raw is None:
        return None
    value = unicodedata.normalize("NFC", " ".join(str(raw).split())).casefold()
    return value or None


def _simple_layout(f: Field) -> FieldLayout:
    if f.kind == "exact":
        vocab = EXACT_VOCAB

        def prepare_exact(raw: Any, enc: Encoder) -> tuple[int, ...]:
            key = _exact_key(raw)
            return (MISSING if key is None else enc.code(vocab, key),)

        return FieldLayout(f, (f"{f.name}.code",), (np.int32,), prepare_exact)
    if f.kind == "date":
        form = f.format

        def prepare_date(raw: Any, enc: Encoder) -> tuple[int, ...]:
            y, m, d = text.parse_date(raw, form)
            return (y * 10000 + m * 100 + d,)

        return FieldLayout(f, (f"{f.name}.ymd",), (np.int32,), prepare_date)
    if f.kind == "id":
        def prepare_id(raw: Any, enc: Encoder) -> tuple[int, ...]:
            number, digits = text.parse_id(raw)
            return (number * 100 + digits,)

        return FieldLayout(f, (f"{f.name}.value",), (np.int64,), prepare_id)
    if f.kind == "phone":
        return FieldLayout(f, (f"{f.name}.value",), (np.int64,), lambda raw, enc: (text.phone_number(raw),))
    return FieldLayout(f, (f"{f.name}.code",), (np.int16,),
                       lambda raw, enc: (text.province_code(raw) if isinstance(raw, str) else 0,))


def tf_column(c: Comparison, kind: str) -> tuple[str, str]:
    """The stored column a term-frequency adjusted comparison counts values of, and that column's vocabulary."""
    return (f"{c.field}.{c.part}.exact", NAME_VOCABS["exact"]) if kind == "name" else (f"{c.field}.code", EXACT_VOCAB)


def layouts(settings: Settings) -> tuple[FieldLayout, ...]:
    """The layout of every field a comparison or blocking rule uses, in settings order."""
    used: dict[str, set[str]] = {}
    for c in settings.comparisons:
        used.setdefault(c.field, set()).add(c.part)
        for lv in c.levels:
            if lv.with_ is not None:
                used.setdefault(lv.with_, set()).add(c.part)
    for rule in (*settings.blocking_rules, *settings.training.blocking_rules):
        for key in rule:
            for side in split_key(key):
                name, _, suffix = side.partition(".")
                used.setdefault(name, set()).add(suffix.split("_")[0] if suffix else "full")
    out = []
    for f in settings.fields:
        if f.name not in used:
            continue
        parts = tuple(p for p in PARTS if p in used[f.name])
        out.append(_name_layout(f, parts) if f.kind == "name" else _simple_layout(f))
    return tuple(out)


BlockValue = Callable[[dict[str, int], Encoder], int | None]


def block_value(settings: Settings, key: str, side: str = "left") -> BlockValue:
    """A function from one row's column values to this key's part of a blocking key (None: no key).

    ``side``: "left" for registry entries, "right" for records; they differ for a ``left=right`` key."""
    name, _, suffix = split_key(key)[0 if side == "left" else 1].partition(".")
    kind = settings.field_named(name).kind
    if kind == "name":
        part, form = suffix.rsplit("_", 1)
        if form == "initial":
            column, vocab = f"{name}.{part}.folded", NAME_VOCABS["folded"]

            def initial(row: dict[str, int], enc: Encoder) -> int | None:
                code = row[column]
                word = enc.string(vocab, code) if code != MISSING else ""
                return ord(word[0]) if word else None

            return initial
        column = f"{name}.{part}.{form}"
        return lambda row, enc: row[column] if row[column] >= 0 else None
    if kind == "date":
        column = f"{name}.ymd"

        def date_key(row: dict[str, int], enc: Encoder) -> int | None:
            ymd = row[column]
            year, md = divmod(ymd, 10000)
            month, day = divmod(md, 100)
            if year == 0 or (month == 0 and suffix != "year"):
                return None
            if suffix == "unordered":
                return year * 10000 + min(month, day) * 100 + max(month, day)
            return {"date": ymd, "year": year, "year_month": year * 100 + month, "month_day": md}[suffix]

        return date_key
    column = f"{name}.code" if kind in ("province", "exact") else f"{name}.value"
    return lambda row, enc: row[column] if row[column] > 0 or (kind == "exact" and row[column] >= 0) else None
