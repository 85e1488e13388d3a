"""Evaluate a linkage settings file on any two CSV files with known links, and generate such files.

`evaluate` indexes the left file (the registry), trains a model without labels on the right
file (or loads one), scores the right file in micro-batches as a stream would, and compares
the MATCHED verdicts with the true links. The settings name the columns, so any pair of CSV
files works. With ``"link_type": "dedupe_only"`` there is one file, linked to itself, and the
truth is every pair of its rows that is one person.

The truth file holds (right id, left id) pairs. Its columns are found by header: ``right_id`` and
``left_id``, or Splink's ``unique_id_r`` and ``unique_id_l``, or the settings' two unique id
columns when their names differ. Otherwise, with exactly two columns, by content: the column
whose values are ids of the right file is the right one; when both columns could be either (the
two files share their ids), the file is refused in one line rather than read backwards. An
evaluation whose truth ids never meet the files' ids is refused too (an F1 of 0.0 would only
say the columns were wrong); ids met only in part are a warning.

Timings: `index_seconds` (building the registry index), `training_seconds` (u, EM, match
share), `scoring_seconds` (micro-batches only). `records_per_second_scoring` divides the
right-hand records by the scoring time; `records_per_second_with_training` by all three.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gsp.errors import UserError
from gsp.tools.synth.linkage import generate_linkage, write_linkage
from schemas.envelope import Verdict
from streams.linkage import LinkageError, Model, RegistryIndex, Settings, load_settings, score_batch, train
from streams.linkage.checks import coverage_warnings
from streams.linkage.score import duplicate_pairs

__all__ = ["evaluate", "evaluate_rows", "run_evaluate", "run_generate", "run_train"]


def _read_csv(path: str | Path) -> list[dict[str, str]]:
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as f:
            return list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read {path}: {exc}") from exc


_NAMED_SIDES = (("right_id", "left_id"), ("unique_id_r", "unique_id_l"), ("right", "left"))


def _read_truth(path: str | Path, settings: Settings, left_ids: set[str], right_ids: set[str],
                warn: Callable[[str], None]) -> list[tuple[str, str]]:
    """(right id, left id) pairs, the columns found by header or content (see the module's docstring)."""
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as f:
            header, *rows = list(csv.reader(f))
    except ValueError:  # no header line at all
        return []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read {path}: {exc}") from exc
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if len(header) < 2:
        raise UserError(f"{path}: a truth file needs two id columns (right_id, left_id)")
    if any(len(row) < len(header) for row in rows):
        raise UserError(f"{path}: some rows have fewer cells than the header")
    at = _sides_by_header(header, settings)
    if at is None and len(header) == 2:
        at = _sides_by_content(path, rows, left_ids, right_ids, settings.dedupe)
    if at is None:
        raise UserError(f"{path}: cannot tell which column holds the right ids and which the left ones "
                        f"(header {','.join(header)}): name them right_id and left_id")
    pairs = [(row[at[0]], row[at[1]]) for row in rows]
    met_right = sum(1 for r, _ in pairs if r in right_ids)
    met_left = sum(1 for _, lid in pairs if lid in left_ids)
    if pairs and (met_right == 0 or met_left == 0):
        raise UserError(f"{path}: its ids never meet the files': {met_right} of {len(pairs)} right ids are in the "
                        f"right file, {met_left} of {len(pairs)} left ids in the left file (columns "
                        f"{header[at[0]]!r}, {header[at[1]]!r}; wrong files, or the unique_id columns?)")
    if met_right < len(pairs) or met_left < len(pairs):
        warn(f"{path}: {len(pairs) - met_right} right ids and {len(pairs) - met_left} left ids of its {len(pairs)} "
             "pairs are not in the files: those links count as missed")
    return pairs


def _sides_by_header(header: list[str], settings: Settings) -> tuple[int, int] | None:
    names = [h.strip() for h in header]
    candidates = [*_NAMED_SIDES]
    if settings.unique_id_right != settings.unique_id_left:
        candidates.append((settings.unique_id_right, settings.unique_id_left))
    for right, left in candidates:
        if names.count(right) == 1 and names.count(left) == 1:
            return names.index(right), names.index(left)
    return None


def _sides_by_content(path: str | Path, rows: list[list[str]], left_ids: set[str], right_ids: set[str],
                      dedupe: bool) -> tuple[int, int] | None:
    if dedupe:  # pairs of one file: unordered
        return 0, 1
    met = [[sum(1 for row in rows if row[c] in ids) for ids in (right_ids, left_ids)] for c in (0, 1)]
    forward, backward = met[0][0] + met[1][1], met[1][0] + met[0][1]
    if max(forward, backward) == 0:
        return 0, 1  # nothing meets either way: refused as such, naming the columns
    if 2 * min(forward, backward) > max(forward, backward):
        return None  # both orders fit: the two files share their ids
    return (0, 1) if forward > backward else (1, 0)


def evaluate_rows(settings: Settings, left: Sequence[Mapping[str, Any]], right: Sequence[Mapping[str, Any]],
                  truth: Sequence[tuple[str, str]], *, batch_size: int = 1000, model: Model | None = None,
                  supervised: bool = False, warn: Callable[[str], None] = lambda line: None,
                  ) -> tuple[dict[str, Any], Model]:
    """Index `left`, train (unless `model` is given), score `right`; metrics and the model used.

    With dedupe settings `right` is `left` itself and `truth` the pairs of its rows that are one person."""
    started = time.perf_counter()
    index = RegistryIndex(settings, capacity=len(left) + 1024)
    index.add_many(left)
    indexed = time.perf_counter()
    warnings = coverage_warnings(index, index.encode(right[:_COVERAGE_SAMPLE]), left_name="left rows",
                                 right_name="right rows")
    for line in warnings:
        warn(line)
    if model is None:
        model = train(index, right, labels=dict(truth) if supervised else None)
    trained = time.perf_counter()
    matched, possible = _score(index, model, right, batch_size)
    scored = time.perf_counter()
    found, candidates = _blocked(index, right, batch_size)
    true = {_unordered(pair) for pair in truth} if settings.dedupe else set(truth)
    tp = len(matched & true)
    precision = tp / len(matched) if matched else 1.0
    recall = tp / len(true) if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    score_s, train_s, index_s = scored - trained, trained - indexed, indexed - started
    result = {
        "settings": settings.name,
        "link_type": settings.link_type,
        "registry_records": len(index),
        "records": len(right),
        "true_links": len(true),
        "matched": len(matched),
        "possible": len(possible - matched),
        "true_positives": tp,
        "false_positives": len(matched) - tp,
        "false_negatives": len(true) - tp,
        "precision": round(precision, 6),
        "recall": round(recall, 6),
        "f1": round(f1, 6),
        "recall_with_review": round(len(possible & true) / len(true), 6) if true else 1.0,
        "candidate_pairs": candidates,
        "pairs_per_record": round(candidates / max(len(right), 1), 2),
        "blocking_recall": round(len(found & true) / len(true), 6) if true else 1.0,
        "match_share": model.match_share,
        "index_seconds": round(index_s, 3),
        "training_seconds": round(train_s, 3),
        "scoring_seconds": round(score_s, 3),
        "batch_size": batch_size,
        "records_per_second_scoring": round(len(right) / score_s) if score_s > 0 else None,
        "records_per_second_with_training": round(len(right) / (score_s + train_s + index_s)),
        "warnings": warnings,
    }
    return result, model


_COVERAGE_SAMPLE = 5000  # records looked at for fields missing on most rows


def _unordered(pair: tuple[str, str]) -> tuple[str, str]:
    return (pair[0], pair[1]) if pair[0] <= pair[1] else (pair[1], pair[0])


Pairs = set[tuple[str, str]]  # (right id, left id); unordered pairs when deduplicating


def _score(index: RegistryIndex, model: Model, right: Sequence[Mapping[str, Any]], batch_size: int) -> tuple[Pairs, Pairs]:
    """Every right record scored in micro-batches, as a stream would (link), or every pair above review (dedupe):
    the MATCHED pairs, and those at or above the review threshold (MATCHED included)."""
    matched: Pairs = set()
    possible: Pairs = set()
    thresholds = model.settings.thresholds
    for start in range(0, len(right), batch_size):
        chunk = right[start:start + batch_size]
        if model.settings.dedupe:
            for record_id, entry_id, p in duplicate_pairs(index, model, chunk, threshold=thresholds.review_probability):
                possible.add(_unordered((record_id, entry_id)))
                if p >= thresholds.match_probability:
                    matched.add(_unordered((record_id, entry_id)))
            continue
        for link in score_batch(index, model, chunk):
            pair = (link.record_id or "", link.personal_id or "")
            if link.verdict is Verdict.MATCHED:
                matched.add(pair)
            if link.verdict in (Verdict.MATCHED, Verdict.POSSIBLE):
                possible.add(pair)
    return matched, possible


def _blocked(index: RegistryIndex, right: Sequence[Mapping[str, Any]], batch_size: int) -> tuple[Pairs, int]:
    """The pairs blocking proposes (for blocking recall), and how many candidate pairs were compared."""
    found: Pairs = set()
    count = 0
    for start in range(0, len(right), batch_size):
        batch = index.encode(right[start:start + batch_size])
        rows, slots = index.candidates(batch)
        count += len(rows)
        for r, s in zip(rows.tolist(), slots.tolist(), strict=True):
            pair = (batch.record_ids[r] or "", index.unique_id(s) or "")
            found.add(_unordered(pair) if index.settings.dedupe else pair)
    return found, count


def _ids(rows: Sequence[Mapping[str, str]], column: str, path: str | Path) -> set[str]:
    if rows and column not in rows[0]:
        raise UserError(f"{path}: no column {column!r} (the settings' unique id); it has {', '.join(rows[0])}")
    missing = [i for i, row in enumerate(rows) if not row.get(column)]
    if missing:
        raise UserError(f"{path}: {len(missing)} rows without {column} (first: line {missing[0] + 2})")
    return {row[column] for row in rows}


def _warn(line: str) -> None:
    print(f"warning: {line}", file=sys.stderr, flush=True)


def evaluate(settings_path: str | Path, left_csv: str | Path, right_csv: str | Path | None, truth_csv: str | Path, *,
             batch_size: int = 1000, model_path: str | Path | None = None, save_model: str | Path | None = None,
             supervised: bool = False, warn: Callable[[str], None] = _warn) -> dict[str, Any]:
    """Metrics of a settings file (or a trained model file) on CSV files with known links.

    `right_csv` None (or the left file) with dedupe settings: the left file linked to itself."""
    try:
        model = Model.load(model_path) if model_path is not None else None
        settings = model.settings if model is not None else load_settings(settings_path)
        left = _read_csv(left_csv)
        left_ids = _ids(left, settings.unique_id_left, left_csv)
        if right_csv is None and not settings.dedupe:
            raise UserError("--right is needed: the settings' link_type is link_only (dedupe_only links one file)")
        if settings.dedupe and right_csv is not None and Path(right_csv).resolve() != Path(left_csv).resolve():
            raise UserError("the settings' link_type is dedupe_only: give one file (--left), not --right")
        right = left if settings.dedupe else _read_csv(right_csv or "")
        right_ids = left_ids if settings.dedupe else _ids(right, settings.unique_id_right, right_csv or "")
        truth = _read_truth(truth_csv, settings, left_ids, right_ids, warn)
        result, model = evaluate_rows(settings, left, right, truth, batch_size=batch_size, model=model,
                                      supervised=supervised, warn=warn)
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


def run_evaluate(settings: str | Path, left: str | Path, right: str | Path | None, truth: str | Path, *,
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


def run_train(labels: str | Path, out: str | Path, *, model: str | Path | None = None, strength: float = 100.0,
              as_json: bool = False) -> int:
    """`gsp match train --labels`: the stewards' decisions folded into a model, written to `out`; 0 on success."""
    from streams.linkage.labels import fold_decisions
    from streams.matching.linker import DEFAULT_MODEL

    try:
        base = Model.load(model or DEFAULT_MODEL)
        folded, report = fold_decisions(base, _read_csv(labels), strength=strength)
    except LinkageError as exc:
        raise UserError(f"{labels}: {exc}") from exc
    try:
        folded.save(out)
    except OSError as exc:
        raise UserError(f"cannot save the model to {out}: {exc.strerror}") from None
    report["model_file"] = str(out)
    if as_json:
        print(json.dumps(report))
        return 0
    print(f"{report['accepted']} accepted and {report['rejected']} rejected decisions folded into "
          f"{model or 'the shipped model'} (its m weighs as {strength:g} pairs; {report['skipped']} rows skipped) "
          f"-> {out}")
    print(f"  accepted pairs the model matches: {report['accepted_matched_before']} before, "
          f"{report['accepted_matched_after']} after")
    print(f"  rejected pairs the model matches: {report['rejected_matched_before']} before, "
          f"{report['rejected_matched_after']} after")
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
