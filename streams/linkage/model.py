"""A trained linkage model: the settings plus m and u per comparison level, as one JSON file.

The file carries ``format_version``; a reader refuses other versions rather than guess. The
match weight of a record and one registry entry is

    log2(prior odds) + sum over comparisons of log2(m / u) at the pair's level
                     + term-frequency adjustments on agreeing exact levels,

with prior odds (s / N) / (1 - s): that this entry, of the N the index holds at scoring time,
is the record's person, against the record having nobody in the registry, where s is
`match_share`, the share of records that do have an entry. So a model trained on one registry
size scores a stream against another. The term-frequency adjustment replaces u at an agreeing
level by the share of registry entries holding that value (floored at ``tf_minimum``):
agreeing on "nguyễn" (38% of people) counts little, on "quách" much.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streams.linkage.config import Settings
from streams.linkage.errors import ModelError, SettingsError

__all__ = ["MODEL_FORMAT_VERSION", "Model"]

MODEL_FORMAT_VERSION = 1
_KIND = "gsp.linkage.model"


@dataclass(frozen=True)
class Model:
    settings: Settings
    m: tuple[tuple[float, ...], ...]  # per comparison, per level (index 0 "null" unused)
    u: tuple[tuple[float, ...], ...]
    match_share: float  # share of records with an entry in the registry
    training: Mapping[str, Any] = field(default_factory=dict)  # how the parameters were found

    def __post_init__(self) -> None:
        for c, m, u in zip(self.settings.comparisons, self.m, self.u, strict=True):
            if not (len(m) == len(u) == len(c.labels)):
                raise ModelError(f"comparison {c.name!r}: {len(c.labels)} levels, got {len(m)} m and {len(u)} u")
        if not 0 < self.match_share <= 1:
            raise ModelError(f"match_share {self.match_share} is not in (0, 1]")

    @classmethod
    def from_estimates(cls, settings: Settings, m: Sequence[np.ndarray], u: Sequence[np.ndarray],
                       match_share: float, training: Mapping[str, Any] | None = None) -> Model:
        def rounded(dists: Sequence[np.ndarray]) -> tuple[tuple[float, ...], ...]:
            return tuple(tuple(float(f"{x:.6g}") for x in d) for d in dists)

        return cls(settings, rounded(m), rounded(u), float(f"{match_share:.6g}"), dict(training or {}))

    def level_weights(self) -> list[np.ndarray]:
        """log2(m/u) per comparison level; 0 at "null"."""
        out = []
        for m, u in zip(self.m, self.u, strict=True):
            w = np.log2(np.maximum(m, 1e-12)) - np.log2(np.maximum(u, 1e-12))
            w[0] = 0.0
            out.append(w)
        return out

    def prior_weight(self, registry_size: int) -> float:
        """log2 of the prior odds that one registry entry is the record's person, against nobody."""
        share = min(self.match_share, 0.999)
        return math.log2(share / max(registry_size, 1)) - math.log2(1 - share)

    # --- file ------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": _KIND,
            "format_version": MODEL_FORMAT_VERSION,
            "settings": self.settings.to_json(),
            "parameters": {
                "match_share": self.match_share,
                "comparisons": {
                    c.name: {"levels": list(c.labels), "m": list(m), "u": list(u),
                             "weight": [round(float(w), 3) for w in ws]}
                    for c, m, u, ws in zip(self.settings.comparisons, self.m, self.u, self.level_weights(),
                                           strict=True)},
            },
            "training": dict(self.training),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Model:
        if data.get("kind") != _KIND:
            raise ModelError("not a linkage model file")
        if data.get("format_version") != MODEL_FORMAT_VERSION:
            raise ModelError(f"model format_version {data.get('format_version')!r} is not {MODEL_FORMAT_VERSION}")
        try:
            settings = Settings.from_json(data["settings"])
            params = data["parameters"]["comparisons"]
            m, u = [], []
            for c in settings.comparisons:
                p = params[c.name]
                if list(p["levels"]) != list(c.labels):
                    raise ModelError(f"comparison {c.name!r}: levels {p['levels']} differ from the settings")
                m.append(tuple(float(x) for x in p["m"]))
                u.append(tuple(float(x) for x in p["u"]))
            return cls(settings, tuple(m), tuple(u), float(data["parameters"]["match_share"]),
                       dict(data.get("training", {})))
        except (KeyError, TypeError, ValueError, SettingsError) as exc:
            raise ModelError(f"invalid model file: {exc}") from exc

    def save(self, path: str | Path) -> Path:
        target = Path(path)
        target.write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        return target

    @classmethod
    def load(cls, path: str | Path) -> Model:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read model {path}: {exc}") from exc
        return cls.from_json(data)

