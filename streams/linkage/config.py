"""Linkage settings: the fields, comparisons, blocking rules and thresholds, declared as data.

A settings file is JSON (see ``settings/vn_identity.json``)::

    {"format_version": 1,
     "unique_id": {"left": "personal_id", "right": "record_id"},
     "fields": {"full_name": {"kind": "name", "left": "full_name", "right": "subscriber_name"}, ...},
     "comparisons": [{"name": "given_name", "field": "full_name", "part": "given",
                      "levels": [{"level": "exact", "tf": true}, {"level": "jaro_winkler", "threshold": 0.9}]}],
     "blocking_rules": [["full_name.given_folded", "birth_date.year"], ["phone"]],
     "training": {"blocking_rules": [["birth_date.date"]], "max_records": 20000},
     "thresholds": {"match_probability": 0.99, "review_probability": 0.2}}

"left" is the registry, "right" the records linked to it; column names may be dotted paths
into nested records ("residence.province_code"). Every comparison has an implicit first level
"null" (a side is missing or the values are not comparable: weight 0) and an implicit last
level "else". The levels a kind accepts and the blocking keys a field offers (`LEVELS`,
`BLOCK_KEYS`) are part of this grammar, declared here; `comparators` and `fields` implement them.

Beyond that, for files that are not Vietnamese identity data:

- ``"link_type"``: ``"link_only"`` (the default: each right record has at most one left entry) or
  ``"dedupe_only"`` (one file linked to itself: every pair of its records that is one person);
- a date field may declare its ``"format"`` (``"%Y%m%d"``, any `strptime` format); without one,
  yyyy-mm-dd, dd/mm/yyyy and yyyy are read;
- ``levenshtein`` and ``damerau_levenshtein`` levels (``threshold``: the largest edit distance)
  for id, phone and exact fields (codes, post codes, social security numbers);
- a ``swapped`` level on a name or exact field, ``{"level": "swapped", "with": "surname"}``: the
  two fields' values are crossed (given name and surname written the other way round);
- a cross-column blocking key ``"given_name.full_folded=surname.full_folded"``: the registry's
  given name equals the record's surname (the left key on the registry, the right on records).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.linkage.errors import SettingsError

__all__ = ["BLOCK_KEYS", "DEFAULT_SETTINGS", "FORMAT_VERSION", "FORMS", "KINDS", "LEVELS", "LINK_TYPES", "PARTS",
           "Comparison", "Field", "Level", "Settings", "Thresholds", "Training", "load_settings", "split_key"]

FORMAT_VERSION = 1
DEFAULT_SETTINGS = Path(__file__).with_name("settings") / "vn_identity.json"  # Vietnamese identity data
KINDS = ("name", "date", "id", "phone", "province", "exact")
PARTS = ("family", "middle", "given", "full")
FORMS = ("exact", "tone", "folded")  # a name token as written, with tone placement ignored, without marks
LINK_TYPES = ("link_only", "dedupe_only")
_EDITS = ("levenshtein", "damerau_levenshtein")
LEVELS: dict[str, tuple[str, ...]] = {
    "name": ("exact", "tone", "folded", "jaro_winkler", "swapped"),
    "date": ("exact", "day_month_swapped", "year_only", "month_day", "year_month", "same_year", "within_years"),
    "id": ("exact", "one_digit", "transposed", *_EDITS),
    "phone": ("exact", *_EDITS), "province": ("exact",), "exact": ("exact", *_EDITS, "swapped"),
}
_NEEDS_THRESHOLD = ("jaro_winkler", "within_years", *_EDITS)
BLOCK_KEYS: dict[str, tuple[str, ...]] = {
    "name": tuple(f"{p}_{f}" for p in PARTS for f in (*FORMS, "initial")),
    "date": ("date", "year", "year_month", "month_day", "unordered"),
    "id": ("",), "phone": ("",), "province": ("",), "exact": ("",),
}


@dataclass(frozen=True, slots=True)
class Field:
    name: str  # logical name used by comparisons and blocking rules, "full_name"
    kind: str  # one of KINDS
    left: str  # registry column
    right: str  # record column
    format: str | None = None  # dates: the strptime format of both columns, "%Y%m%d"


@dataclass(frozen=True, slots=True)
class Level:
    level: str  # "exact", "tone", "folded", "jaro_winkler", "day_month_swapped", ...
    threshold: float | None = None  # similarity for jaro_winkler, years for within_years, edits for levenshtein
    tf: bool = False  # term-frequency adjusted: agreeing on a rare value counts more
    with_: str | None = None  # swapped: the other field ("with" in JSON)

    @property
    def label(self) -> str:
        if self.with_ is not None:
            return f"{self.level}:{self.with_}"
        if self.level in _EDITS:
            return f"{self.level}<={self.threshold:g}"
        return self.level if self.threshold is None else f"{self.level}>={self.threshold:g}"


@dataclass(frozen=True, slots=True)
class Comparison:
    name: str  # "given_name"
    field: str  # the Field compared
    levels: tuple[Level, ...]  # strongest first; "null" before and "else" after are implicit
    part: str = "full"  # for name fields: which tokens are compared

    @property
    def labels(self) -> tuple[str, ...]:
        return ("null", *(lv.label for lv in self.levels), "else")


@dataclass(frozen=True, slots=True)
class Training:
    blocking_rules: tuple[tuple[str, ...], ...]  # one EM round each; fields they use keep their m
    max_records: int = 20_000  # records sampled for EM
    random_pairs: int = 1_000_000  # random pairs that estimate u
    max_iterations: int = 30
    seed: int = 42


@dataclass(frozen=True, slots=True)
class Thresholds:
    match_probability: float = 0.99  # at or above: MATCHED
    review_probability: float = 0.2  # at or above (and below match): POSSIBLE, for review


@dataclass(frozen=True, slots=True)
class Settings:
    unique_id_left: str
    unique_id_right: str
    fields: tuple[Field, ...]
    comparisons: tuple[Comparison, ...]
    blocking_rules: tuple[tuple[str, ...], ...]
    training: Training
    thresholds: Thresholds = field(default_factory=Thresholds)
    tf_minimum: float = 1e-4  # floor of a term frequency: no single value proves a match alone
    name: str = ""
    link_type: str = "link_only"  # or "dedupe_only": one file against itself

    @property
    def dedupe(self) -> bool:
        return self.link_type == "dedupe_only"

    def field_named(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise SettingsError(f"no field named {name!r}")

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "link_type": self.link_type,
            "unique_id": {"left": self.unique_id_left, "right": self.unique_id_right},
            "fields": {f.name: {"kind": f.kind, "left": f.left, "right": f.right,
                                **({"format": f.format} if f.format else {})} for f in self.fields},
            "comparisons": [
                {"name": c.name, "field": c.field, "part": c.part,
                 "levels": [{"level": lv.level, **({"threshold": lv.threshold} if lv.threshold is not None else {}),
                             **({"tf": True} if lv.tf else {}), **({"with": lv.with_} if lv.with_ else {})}
                            for lv in c.levels]}
                for c in self.comparisons],
            "blocking_rules": [list(rule) for rule in self.blocking_rules],
            "training": {"blocking_rules": [list(r) for r in self.training.blocking_rules],
                         "max_records": self.training.max_records, "random_pairs": self.training.random_pairs,
                         "max_iterations": self.training.max_iterations, "seed": self.training.seed},
            "thresholds": {"match_probability": self.thresholds.match_probability,
                           "review_probability": self.thresholds.review_probability},
            "tf_minimum": self.tf_minimum,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Settings:
        try:
            return _parse(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SettingsError(f"invalid linkage settings: {exc!r}") from exc


def _rules(value: Any) -> tuple[tuple[str, ...], ...]:
    rules = tuple(tuple(str(k) for k in rule) for rule in value)
    if any(not rule for rule in rules):
        raise ValueError("a blocking rule needs at least one key")
    return rules


def _parse(data: Mapping[str, Any]) -> Settings:
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise SettingsError(f"settings format_version {version!r} is not {FORMAT_VERSION}")
    link_type = str(data.get("link_type", "link_only"))
    if link_type not in LINK_TYPES:
        raise SettingsError(f"link_type {link_type!r} is not one of {', '.join(LINK_TYPES)}")
    fields = tuple(Field(name, spec["kind"], spec["left"], spec.get("right", spec["left"]),
                         None if spec.get("format") is None else str(spec["format"]))
                   for name, spec in data["fields"].items())
    for f in fields:
        if f.kind not in KINDS:
            raise SettingsError(f"field {f.name!r}: kind {f.kind!r} is not one of {', '.join(KINDS)}")
        if f.format is not None and (f.kind != "date" or "%Y" not in f.format):
            raise SettingsError(f"field {f.name!r}: only a date field takes a format, and it needs %Y "
                                f"(got {f.format!r} on a {f.kind} field)")
    names = {f.name for f in fields}
    comparisons = []
    for spec in data["comparisons"]:
        levels = tuple(Level(lv["level"], None if lv.get("threshold") is None else float(lv["threshold"]),
                             bool(lv.get("tf", False)), None if lv.get("with") is None else str(lv["with"]))
                       for lv in spec["levels"])
        comparison = Comparison(spec["name"], spec["field"], levels, spec.get("part", "full"))
        if comparison.field not in names:
            raise SettingsError(f"comparison {comparison.name!r}: no field {comparison.field!r}")
        if comparison.part not in PARTS:
            raise SettingsError(f"comparison {comparison.name!r}: part {comparison.part!r} is not one of {PARTS}")
        comparisons.append(comparison)
    if len({c.name for c in comparisons}) != len(comparisons):
        raise SettingsError("comparison names must be unique")
    training = data.get("training", {})
    thresholds = data.get("thresholds", {})
    settings = Settings(
        unique_id_left=data["unique_id"]["left"],
        unique_id_right=data["unique_id"]["right"],
        fields=fields,
        comparisons=tuple(comparisons),
        blocking_rules=_rules(data["blocking_rules"]),
        training=Training(
            blocking_rules=_rules(training.get("blocking_rules", data["blocking_rules"])),
            max_records=int(training.get("max_records", 20_000)),
            random_pairs=int(training.get("random_pairs", 1_000_000)),
            max_iterations=int(training.get("max_iterations", 30)),
            seed=int(training.get("seed", 42)),
        ),
        thresholds=Thresholds(float(thresholds.get("match_probability", 0.99)),
                              float(thresholds.get("review_probability", 0.2))),
        tf_minimum=float(data.get("tf_minimum", 1e-4)),
        name=str(data.get("name", "")),
        link_type=link_type,
    )
    if settings.dedupe and settings.unique_id_left != settings.unique_id_right:
        raise SettingsError("dedupe_only links one file to itself: unique_id left and right must name the same column")
    for c in settings.comparisons:
        _check_levels(settings, c)
    for rule in (*settings.blocking_rules, *settings.training.blocking_rules):
        for key in rule:
            _check_block_key(settings, key)
    return settings


def _check_levels(settings: Settings, comparison: Comparison) -> None:
    kind = settings.field_named(comparison.field).kind
    for lv in comparison.levels:
        if lv.level not in LEVELS[kind]:
            raise SettingsError(f"comparison {comparison.name!r}: level {lv.level!r} is not one of "
                                f"{', '.join(LEVELS[kind])} for a {kind} field")
        if (lv.with_ is None) == (lv.level == "swapped"):
            raise SettingsError(f"comparison {comparison.name!r}: level {lv.level!r} "
                                f"{'needs' if lv.level == 'swapped' else 'takes no'} \"with\" (the other field)")
        if lv.with_ is not None and (lv.with_ == comparison.field or settings.field_named(lv.with_).kind != kind):
            raise SettingsError(f"comparison {comparison.name!r}: swapped \"with\" must name another {kind} field")
        if lv.level in _EDITS and lv.threshold is not None and not (lv.threshold >= 1 and lv.threshold.is_integer()):
            raise SettingsError(f"comparison {comparison.name!r}: {lv.level} threshold is a number of edits (1, 2, ...)")
        if (lv.threshold is None) == (lv.level in _NEEDS_THRESHOLD):
            raise SettingsError(f"comparison {comparison.name!r}: level {lv.level!r} "
                                f"{'needs' if lv.level in _NEEDS_THRESHOLD else 'takes no'} threshold")
        if lv.tf and (kind not in ("name", "exact") or lv.level != "exact"):
            raise SettingsError(f"comparison {comparison.name!r}: only exact levels of name or exact "
                                "fields can be term-frequency adjusted")


def split_key(key: str) -> tuple[str, str]:
    """The registry's and the records' sides of a blocking key: the same unless it is ``left=right``."""
    left, _, right = key.partition("=")
    return left, right or left


def _check_block_key(settings: Settings, key: str) -> None:
    sides = split_key(key)
    for side in sides:
        name, _, suffix = side.partition(".")
        kind = settings.field_named(name).kind
        if suffix not in BLOCK_KEYS[kind]:
            offered = ", ".join(f"{name}.{k}" if k else name for k in BLOCK_KEYS[kind])
            raise SettingsError(f"blocking key {side!r} is not one of {offered}")
    (left, right) = (side.partition(".")[::2] for side in sides)
    kind = settings.field_named(left[0]).kind
    same = left[1].rsplit("_", 1)[-1] == right[1].rsplit("_", 1)[-1] if kind == "name" else left[1] == right[1]
    if kind != settings.field_named(right[0]).kind or not same:
        raise SettingsError(f"blocking key {key!r}: both sides must be the same kind of key (a name form with a "
                            "name form, a date key with the same date key)")


def load_settings(path: str | Path) -> Settings:
    """Settings from a JSON file; a model file (which embeds its settings) is accepted too."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SettingsError(f"cannot read linkage settings {path}: {exc}") from exc
    if isinstance(data, dict) and "settings" in data and "parameters" in data:
        data = data["settings"]
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: linkage settings must be a JSON object")
    return Settings.from_json(data)
