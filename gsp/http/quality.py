"""The quality scorecards over HTTP, mounted by the control-plane API for the console's overview and dataset pages.

    GET /api/quality?points=20        every dataset: its four scores ("đúng, đủ, sạch, sống": correct, complete,
                                      clean, live), their trend (the last ``points`` snapshots, oldest first),
                                      open quarantine and review items, and freshness
    GET /api/quality/{dataset}        the same for one dataset, plus the field x dimension matrix of its latest
                                      snapshot and its worst rules (rule, field, count, severity, open items)

Every declared dataset is listed, scored or not (a dataset not yet scored has null scores and an empty trend);
a dataset with snapshots but no declaration is listed too. Freshness: ``last_seen_at`` is when the dataset's
record count last grew (the first snapshot holding the latest count: records are counted as they pass the
clean stage, so the snapshot after the last arrival), ``snapshot_at`` when it was last scored, and the declared
``freshness_days`` (an older ``updated_at`` counts as not live) and ``delivery_s``. Scores and counts are
aggregates, no record: every reader of this route (steward, ops, owner, admin) sees every dataset.
Open counts are null when the control plane runs without that desk.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import sqlalchemy as sa

from gsp.desks.quality import latest_scores
from gsp.errors import NotFound
from gsp.governance.catalog import DATASETS
from gsp.http.errors import BadRequest
from gsp.http.routes import Call, Query, Route, in_thread
from streams.quality import DIMENSIONS

__all__ = ["MAX_POINTS", "quality_routes", "scorecards"]

MAX_POINTS = 100
_SEVERITY_ORDER = ("reject", "warn", "fix")

# The recorder's table (gsp.desks.quality), read here a few rows per dataset: the trend needs the last N
# snapshots, which `latest_snapshots` cannot give without walking every snapshot ever taken.
_snapshots = sa.table("quality_snapshots", sa.column("id"), sa.column("dataset"), sa.column("taken_at"),
                      sa.column("records"), sa.column("scores"), sa.column("cells"), sa.column("rules"))


class _Counting(Protocol):
    def counts(self) -> Mapping[str, Any]: ...


def _history(conn: sa.Connection, points: int, dataset: str | None) -> dict[str, list[sa.Row[Any]]]:
    """Dataset -> its last ``points`` snapshots, newest first."""
    s = _snapshots.c
    rank = sa.func.row_number().over(partition_by=s.dataset, order_by=(s.taken_at.desc(), s.id.desc())).label("rank")
    ranked = sa.select(s.dataset, s.taken_at, s.records, s.scores, s.cells, s.rules, rank)
    if dataset is not None:
        ranked = ranked.where(s.dataset == dataset)
    inner = ranked.subquery()
    query = sa.select(inner).where(inner.c.rank <= points).order_by(inner.c.dataset, inner.c.rank)
    out: dict[str, list[sa.Row[Any]]] = {}
    for row in conn.execute(query):
        out.setdefault(row.dataset, []).append(row)
    return out


def _last_seen(conn: sa.Connection, dataset: str, records: int) -> int | None:
    """When the record count last grew: the first snapshot after the last one holding another count."""
    s = _snapshots.c
    before = sa.select(sa.func.coalesce(sa.func.max(s.taken_at), -1)).where(
        s.dataset == dataset, s.records != records).scalar_subquery()
    found = conn.execute(sa.select(sa.func.min(s.taken_at)).where(
        s.dataset == dataset, s.records == records, s.taken_at > before)).scalar()
    return None if found is None else int(found)


def _rule_details(name: str) -> dict[str, list[tuple[str, str]]]:
    """Rule id -> (field, severity) wherever the dataset's cleaning contract applies it."""
    declared = DATASETS.get(name)
    if declared is None:
        return {}
    from streams.contracts import ContractError, contract_of  # the contracts bring the rules: read only here

    try:
        rules = contract_of(declared).rules()
    except (ContractError, KeyError):
        return {}
    out: dict[str, list[tuple[str, str]]] = {}
    for field, rule, severity in rules:
        out.setdefault(rule, []).append((field, severity))
    return out


def _worst_rules(name: str, rules: Mapping[str, int], open_by_rule: Mapping[str, int], limit: int) -> list[dict[str, Any]]:
    """The rules that fired most, with the field(s) and the most serious severity the contract gives them. A rule
    no contract declares (a connector's or the reader's: schema.required, decode errors) quarantines the record."""
    details = _rule_details(name)
    out = []
    for rule, count in sorted(rules.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]:
        applied = details.get(rule, [])
        severities = {severity for _, severity in applied}
        severity = next((s for s in _SEVERITY_ORDER if s in severities), "reject" if not applied else None)
        out.append({"rule": rule, "field": ", ".join(f for f, _ in applied) or None, "count": int(count),
                    "severity": severity, "open": open_by_rule.get(rule, 0)})
    return out


def _matrix(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """Field x dimension: each measured cell's score (1 - failures / checks), checks and failures; null where the
    snapshot did not measure that field on that dimension. Fields in the snapshot's order (by name)."""
    fields: dict[str, dict[str, Any]] = {}
    for c in cells:
        score = round(1 - c["failures"] / c["checks"], 6) if c["checks"] else None
        fields.setdefault(c["field"], {d: None for d in DIMENSIONS})[c["dimension"]] = {
            "score": score, "checks": c["checks"], "failures": c["failures"]}
    return {"dimensions": list(DIMENSIONS), "fields": [{"field": f, "cells": row} for f, row in fields.items()]}


def _open_total(found: Any) -> int:
    return sum(found.values()) if isinstance(found, Mapping) else int(found or 0)


def scorecards(engine: sa.Engine, *, points: int = 20, dataset: str | None = None,
               quarantine: Callable[[], Mapping[str, Any]] | None = None,
               review: Callable[[], Mapping[str, Any]] | None = None, worst: int = 10) -> list[dict[str, Any]]:
    """The scorecards of every dataset (or of ``dataset``, with its matrix and worst rules); BadRequest for
    ``points`` out of range, NotFound for a dataset neither declared nor scored."""
    if not 1 <= points <= MAX_POINTS:
        raise BadRequest(f"points: must be between 1 and {MAX_POINTS}, not {points}")
    scored = latest_scores(engine)  # also makes the table on a new database
    if dataset is not None and dataset not in DATASETS and dataset not in scored:
        raise NotFound(f"no dataset {dataset!r} in the catalog; known: {', '.join(DATASETS)}")
    with engine.connect() as conn:
        history = _history(conn, points, dataset)
        seen = {name: _last_seen(conn, name, rows[0].records) for name, rows in history.items()}
    held = quarantine() if quarantine is not None else None
    waiting = review() if review is not None else None
    names = [dataset] if dataset is not None else sorted({*DATASETS, *scored})
    out = []
    for name in names:
        rows = history.get(name, [])
        latest = rows[0] if rows else None
        declared = DATASETS.get(name)
        card: dict[str, Any] = {
            "dataset": name,
            "records": latest.records if latest else 0,
            "scores": json.loads(latest.scores) if latest else {d: None for d in DIMENSIONS},
            "trend": [{"taken_at": r.taken_at, "records": r.records, "scores": json.loads(r.scores)} for r in reversed(rows)],
            "quarantine": None if held is None else _open_total(held.get(name, {})),
            "review": None if waiting is None else _open_total(waiting.get(name, 0)),
            "freshness": {
                "last_seen_at": seen.get(name), "snapshot_at": latest.taken_at if latest else None,
                "freshness_days": declared.quality.freshness_s / 86_400 if declared else None,
                "delivery_s": declared.quality.delivery_s if declared else None,
            },
        }
        if dataset is not None:
            by_rule = held.get(name, {}) if held is not None else {}
            card["matrix"] = _matrix(json.loads(latest.cells) if latest else [])
            card["worst_rules"] = _worst_rules(name, json.loads(latest.rules) if latest else {},
                                               by_rule if isinstance(by_rule, Mapping) else {}, worst)
        out.append(card)
    return out


def quality_routes(engine: sa.Engine, *, quarantine: _Counting | None = None,
                   review: _Counting | None = None) -> list[Route]:
    """``quarantine`` and ``review``: the stewards' desks, whose ``counts()`` give the open items (quarantine:
    dataset -> rule -> n; review: dataset -> n)."""
    counts = {"quarantine": quarantine.counts if quarantine is not None else None,
              "review": review.counts if review is not None else None}
    points = Query("points", f"how many snapshots the trend holds (1 to {MAX_POINTS})", kind="integer", default=20)

    async def list_(call: Call) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await in_thread(scorecards, engine, points=call.query["points"], **counts)
        return result

    async def show(call: Call) -> dict[str, Any]:
        [card] = await in_thread(scorecards, engine, points=call.query["points"], dataset=call.path["dataset"], **counts)
        return card

    tag = "quality"
    return [
        Route("GET", "/api/quality", list_, summary="Every dataset's quality scorecard", tag=tag, query=(points,),
              responds="per dataset: scores (correct, complete, clean, live), trend (the last snapshots, oldest "
                       "first), open quarantine and review items, freshness"),
        Route("GET", "/api/quality/{dataset}", show, summary="One dataset's scorecard, by field and rule", tag=tag,
              query=(points,), responds="the scorecard with matrix (field x dimension: score, checks, failures) and "
                                        "worst_rules (rule, field, count, severity, open)"),
    ]
