"""Evaluate a linkage settings file on any two CSV files with known links, and generate such files.

`evaluate` indexes the left file (the registry), trains a model without labels on the right
file (or loads one), scores the right file in micro-batches as a stream would, and compares
the MATCHED verdicts with the true links. The settings name the columns, so any pair of CSV
files works; the truth file holds (right id, left id) pairs: columns named like the settings'
unique ids, else its first two columns in that order.

Timings: `index_seconds` (building the registry index), `training_seconds` (u, EM, match
share), `scoring_seconds` (micro-batches only). `records_per_second_scoring` divides the
right-hand records by the scoring time; `records_per_second_with_training` by all three.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gsp.errors import UserError
from gsp.tools.synth.linkage import generate_linkage, write_linkage
from schemas.envelope import Verdict
from streams.linkage import LinkageError, Model, RegistryIndex, Settings, load_settings, score_batch, train

__all__ = ["evaluate", "evaluate_rows", "run_evaluate", "run_generate"]


def _read_csv(path: str | Path) -> list[dict[str, str]]:
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as f:
            return list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read {path}: {exc}") from exc


def _read_truth(path: str | Path, settings: Settings) -> list[tuple[str, str]]:
    rows = _read_csv(path)
    if not rows:
        return []
    columns = list(rows[0])
    right, left = settings.unique_id_right, settings.unique_id_left
    if not (right in columns and left in columns and right != left):
        if len(columns) < 2:
            raise UserError(f"{path}: a truth file needs two columns (right id, left id)")
        right, left = columns[0], columns[1]
    return [(r[right], r[left]) for r in rows]


def evaluate_rows(settings: Settings, left: Sequence[Mapping[str, Any]], right: Sequence[Mapping[str, Any]],
                  truth: Sequence[tuple[str, str]], *, batch_size: int = 1000, model: Model | None = None,
                  supervised: bool = False) -> tuple[dict[str, Any], Model]:
    """Index `left`, train (unless `model` is given), score `right`; metrics and the model used."""
    started = time.perf_counter()
    index = RegistryIndex(settings, capacity=len(left) + 1024)
    index.add_many(left)
    indexed = time.perf_counter()
    if model is None:
        model = train(index, right, labels=dict(truth) if supervised else None)
    trained = time.perf_counter()
    links = []
    for start in range(0, len(right), batch_size):
        links.extend(score_batch(index, model, right[start:start + batch_size]))
    scored = time.perf_counter()

    true = dict(truth)
    matched = [link for link in links if link.verdict is Verdict.MATCHED]
    tp = sum(1 for link in matched if true.get(link.record_id or "") == link.personal_id)
    reviewed = sum(1 for link in links if link.verdict in (Verdict.MATCHED, Verdict.POSSIBLE)
                   and true.get(link.record_id or "") == link.personal_id)
    precision = tp / len(matched) if matched else 1.0
    recall = tp / len(true) if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    batch = index.encode(right)
    rows, slots = index.candidates(batch)
    found = {(batch.record_ids[r], index.unique_id(s)) for r, s in zip(rows.tolist(), slots.tolist(), strict=True)}
    score_s, train_s, index_s = scored - trained, trained - indexed, indexed - started
    result = {
        "settings": settings.name,
        "registry_records": len(index),
        "records": len(right),
        "true_links": len(true),
        "matched": len(matched),
        "possible": sum(1 for link in links if link.verdict is Verdict.POSSIBLE),
        "true_positives": tp,
        "false_positives": len(matched) - tp,
        "false_negatives": len(true) - tp,
        "precision": round(precision, 6),
        "recall": round(recall, 6),
        "f1": round(f1, 6),
        "recall_with_review": round(reviewed / len(true), 6) if true else 1.0,
        "candidate_pairs": len(rows),
        "pairs_per_record": round(len(rows) / max(len(right), 1), 2),
        "blocking_recall": round(sum(1 for pair in true.items() if pair in found) / len(true), 6) if true else 1.0,
        "match_share": model.match_share,
        "index_seconds": round(index_s, 3),
        "training_seconds": round(train_s, 3),
        "scoring_seconds": round(score_s, 3),
        "batch_size": batch_size,
        "records_per_second_scoring": round(len(right) / score_s) if score_s > 0 else None,
        "records_per_second_with_training": round(len(right) / (score_s + train_s + index_s)),
    }
    return result, model


def evaluate(settings_path: str | Path, left_csv: str | Path, right_csv: str | Path, truth_csv: str | Path, *,
             batch_size: int = 1000, model_path: str | Path | None = None, save_model: str | Path | None = None,
             supervised: bool = False) -> dict[str, Any]:
    """Metrics of a settings file (or a trained model file) on CSV files with known links."""
    try:
        model = Model.load(model_path) if model_path is not None else None
        settings = model.settings if model is not None else load_settings(settings_path)
        left = _read_csv(left_csv)
        missing = [i for i, row in enumerate(left) if not row.get(settings.unique_id_left)]
        if missing:
            raise UserError(f"{left_csv}: {len(missing)} rows without {settings.unique_id_left} "
                            f"(first: line {missing[0] + 2})")
        result, model = evaluate_rows(settings, left, _read_csv(right_csv),
                                      _read_truth(truth_csv, settings), batch_size=batch_size, model=model,
                                      supervised=supervised)
    except LinkageError as exc:
        raise UserError(str(exc)) from exc
    if save_model is not None:
        try:
            model.save(save_model)
        except OSError as exc:
            raise UserError(f"cannot save the model to {save_model}: {exc.strerror}") from None
        result["model_file"] = str(save_model)
    return result


_SHOWN = (("precision", "precision (MATCHED)"), ("recall", "recall (MATCHED)"), ("f1", "F1"),
          ("recall_with_review", "recall with review (MATCHED+POSSIBLE)"), ("matched", "MATCHED"),
          ("possible", "POSSIBLE (review queue)"), ("true_links", "true links"),
          ("candidate_pairs", "candidate pairs compared"), ("pairs_per_record", "pairs per record"),
          ("blocking_recall", "blocking recall"), ("match_share", "estimated match share"),
          ("index_seconds", "index build s"), ("training_seconds", "training s"), ("scoring_seconds", "scoring s"),
          ("records_per_second_scoring", "records/s scoring only"),
          ("records_per_second_with_training", "records/s incl. index + training"))


def run_evaluate(settings: str | Path, left: str | Path, right: str | Path, truth: str | Path, *,
                 as_json: bool = False, batch_size: int = 1000, model: str | Path | None = None,
                 save_model: str | Path | None = None, supervised: bool = False) -> int:
    """`gsp match evaluate`: print the metrics (one JSON object with `as_json`); 0 on success.

    `model` scores with a saved model instead of training; `save_model` writes the trained one;
    `supervised` estimates m from the true links instead of EM (an upper bound for EM).
    """
    result = evaluate(settings, left, right, truth, batch_size=batch_size, model_path=model, save_model=save_model,
                      supervised=supervised)
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    print(f"{result['records']} records against {result['registry_records']} registry entries "
          f"({result['settings'] or settings})")
    for key, label in _SHOWN:
        print(f"  {label:<40} {result[key]}")
    return 0


def run_generate(directory: str | Path, *, registry: int = 100_000, records: int | None = None,
                 match_share: float = 0.8, seed: int = 7) -> int:
    """`gsp match generate`: write left.csv, right.csv and links.csv into `directory`; 0 on success."""
    if registry < 1 or (records is not None and records < 0) or not 0 <= match_share <= 1:
        raise UserError("need --registry >= 1, --records >= 0 and 0 <= --match-share <= 1")
    data = generate_linkage(registry, records=records, match_share=match_share, seed=seed)
    try:
        paths = write_linkage(data, directory)
    except OSError as exc:
        raise UserError(f"cannot write to {directory}: {exc}") from exc
    print(f"{len(data.registry)} registry rows -> {paths[0]}", file=sys.stdout)
    print(f"{len(data.records)} records ({len(data.links)} with a registry entry) -> {paths[1]}")
    print(f"{len(data.links)} true links -> {paths[2]}")
    return 0
