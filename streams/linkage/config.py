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
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.linkage.errors import SettingsError

__all__ = ["BLOCK_KEYS", "DEFAULT_SETTINGS", "FORMAT_VERSION", "FORMS", "KINDS", "LEVELS", "PARTS", "Comparison",
           "Field", "Level", "Settings", "Thresholds", "Training", "load_settings"]

FORMAT_VERSION = 1
DEFAULT_SETTINGS = Path(__file__).with_name("settings") / "vn_identity.json"  # Vietnamese identity data
KINDS = ("name", "date", "id", "phone", "province", "exact")
PARTS = ("family", "middle", "given", "full")
FORMS = ("exact", "tone", "folded")  # a name token as written, with tone placement ignored, without marks
LEVELS: dict[str, tuple[str, ...]] = {
    "name": ("exact", "tone", "folded", "jaro_winkler"),
    "date": ("exact", "day_month_swapped", "year_only", "month_day", "year_month", "same_year", "within_years"),
    "id": ("exact", "one_digit", "transposed"),
    "phone": ("exact",), "province": ("exact",), "exact": ("exact",),
}
_NEEDS_THRESHOLD = ("jaro_winkler", "within_years")
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


@dataclass(frozen=True, slots=True)
class Level:
    level: str  # "exact", "tone", "folded", "jaro_winkler", "day_month_swapped", ...
    threshold: float | None = None  # similarity for jaro_winkler, years for within_years
    tf: bool = False  # term-frequency adjusted: agreeing on a rare value counts more

    @property
    def label(self) -> str:
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

    def field_named(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise SettingsError(f"no field named {name!r}")

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "unique_id": {"left": self.unique_id_left, "right": self.unique_id_right},
            "fields": {f.name: {"kind": f.kind, "left": f.left, "right": f.right} for f in self.fields},
            "comparisons": [
                {"name": c.name, "field": c.field, "part": c.part,
                 "levels": [{"level": lv.level, **({"threshold": lv.threshold} if lv.threshold is not None else {}),
                             **({"tf": True} if lv.tf else {})} for lv in c.levels]}
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
    fields = tuple(Field(name, spec["kind"], spec["left"], spec.get("right", spec["left"]))
                   for name, spec in data["fields"].items())
    for f in fields:
        if f.kind not in KINDS:
            raise SettingsError(f"field {f.name!r}: kind {f.kind!r} is not one of {', '.join(KINDS)}")
    names = {f.name for f in fields}
    comparisons = []
    for spec in data["comparisons"]:
        levels = tuple(Level(lv["level"], None if lv.get("threshold") is None else float(lv["threshold"]),
                             bool(lv.get("tf", False))) for lv in spec["levels"])
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
    )
    for c in settings.comparisons:
        _check_levels(settings.field_named(c.field).kind, c)
    for rule in (*settings.blocking_rules, *settings.training.blocking_rules):
        for key in rule:
            _check_block_key(settings, key)
    return settings


def _check_levels(kind: str, comparison: Comparison) -> None:
    for lv in comparison.levels:
        if lv.level not in LEVELS[kind]:
            raise SettingsError(f"comparison {comparison.name!r}: level {lv.level!r} is not one of "
                                f"{', '.join(LEVELS[kind])} for a {kind} field")
        if (lv.threshold is None) == (lv.level in _NEEDS_THRESHOLD):
            raise SettingsError(f"comparison {comparison.name!r}: level {lv.level!r} "
                                f"{'needs' if lv.level in _NEEDS_THRESHOLD else 'takes no'} threshold")
        if lv.tf and (kind not in ("name", "exact") or lv.level != "exact"):
            raise SettingsError(f"comparison {comparison.name!r}: only exact levels of name or exact "
                                "fields can be term-frequency adjusted")


def _check_block_key(settings: Settings, key: str) -> None:
    name, _, suffix = key.partition(".")
    kind = settings.field_named(name).kind
    if suffix not in BLOCK_KEYS[kind]:
        offered = ", ".join(f"{name}.{k}" if k else name for k in BLOCK_KEYS[kind])
        raise SettingsError(f"blocking key {key!r} is not one of {offered}")


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
