"""``gsp clean``: apply a dataset's cleaning contract to JSON Lines, one result line per input line.

Each output line is ``{"record": {...}, "findings": [...], "rejected": bool}`` (plus
``"enriched"`` when the contract asks for enrichments), in input order. A line that is not a
JSON object gets ``"record": null`` and an ``input.json`` finding; the run goes on. Exit status:
0 when every line was read (rejections are results, not errors); an unknown dataset is a UserError.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from gsp.cli._common import Commands, add_command
from gsp.errors import UserError
from schemas.settings import Settings
from streams.contracts import ContractError, load_contract
from streams.rules import REJECT, Cleaned, Finding

__all__ = ["register", "run", "run_clean"]

_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean",
          type(None): "null"}


def _unreadable(number: int, line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        reason = f"line {number} is not valid JSON: {exc.msg} (column {exc.colno})"
    else:
        reason = f"line {number} is {_KINDS.get(type(value), 'not an object')}, not a JSON object"
    finding = Finding("input.json", "$", REJECT, reason)
    return {"record": None, "findings": [asdict(finding)], "rejected": True}


def _result(cleaned: Cleaned) -> dict[str, Any]:
    out: dict[str, Any] = {"record": cleaned.record, "findings": [asdict(f) for f in cleaned.findings],
                           "rejected": cleaned.rejection is not None}
    if cleaned.enriched:
        out["enriched"] = cleaned.enriched
    return out


def run_clean(dataset: str, source: TextIO, out: TextIO, *, err: TextIO, today: date | None = None,
              extra: Path | None = None) -> int:
    """Clean every JSON Lines record of `source` by the contract of `dataset`, writing results to `out`."""
    try:
        contract = load_contract(dataset, extra)
    except ContractError as exc:
        raise UserError(str(exc)) from None
    lines = rejected = fixed = 0
    for lines, line in enumerate(source, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            cleaned = contract.clean(record, today=today)
            result = _result(cleaned)
            fixed += any(f.severity == "fix" for f in cleaned.findings)
        else:
            result = _unreadable(lines, line)
        rejected += result["rejected"]
        out.write(json.dumps(result, ensure_ascii=False, default=str) + "\n")
    print(f"gsp clean: {dataset}: {lines} records, {rejected} rejected, {fixed} fixed", file=err)
    return 0


def register(commands: Commands) -> None:
    clean = add_command(
        commands, "clean", summary="apply a dataset's cleaning contract to JSON Lines (a file or standard input)",
        about="""\
            Writes one JSON line per input line, in input order: {"record": …, "findings": […], "rejected": …},
            plus "enriched" when the contract asks for enrichments. A line that is not a JSON object is a
            finding (input.json), not an error. A summary line goes to standard error. Needs no broker.""",
        example=["gsp clean --dataset telecom.subscriber subscribers.jsonl > cleaned.jsonl",
                 "head -100 citizens.jsonl | gsp clean --dataset population.citizen | grep '\"rejected\": true'"])
    clean.add_argument("--dataset", required=True, help="e.g. population.citizen or telecom.subscriber")
    clean.add_argument("file", nargs="?", type=Path, help="JSON Lines file (default: standard input)")
    clean.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.file is None:
        return run_clean(args.dataset, sys.stdin, sys.stdout, err=sys.stderr, extra=settings.datasets_dir)
    try:
        source = args.file.open(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UserError(f"cannot read {args.file}: {exc.strerror}") from None
    with source:
        return run_clean(args.dataset, source, sys.stdout, err=sys.stderr, extra=settings.datasets_dir)
