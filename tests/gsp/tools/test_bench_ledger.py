"""`python -m gsp.tools.bench.ledger` with a tiny ledger: every figure is produced and sensible; speed is not checked."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_the_ledger_benchmark_reports_every_figure() -> None:
    done = subprocess.run([sys.executable, "-m", "gsp.tools.bench.ledger", "--deliveries", "5000", "--queries", "50",
                           "--json"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    ledger = report["ledger"]
    assert report["deliveries"] == ledger["delivered_records"] == 5000   # counted back from the database
    assert report["people"] == 1000
    assert ledger["delivery_entries"] >= 5000 // 500 and ledger["verification_records"] > 0
    assert ledger["chains"]["control"] == ledger["other_entries"] > 0 and ledger["heads"] > 0
    append = report["append"]
    assert append["records"] == ledger["delivered_records"] + ledger["verification_records"]
    for key in ("elapsed_s", "records_per_s", "us_per_record", "baseline_elapsed_s", "baseline_records_per_s", "ratio"):
        assert isinstance(append[key], (int, float)) and append[key] > 0, (key, append)
    assert 0 < append["fact_entry_share"] < 1
    who = report["who_saw"]
    assert who["queries"] == 50 and who["answers_agree"] is True
    assert 0 < who["p50_ms"] <= who["p99_ms"] <= who["max_ms"] and who["target_ms"] == 1000
    assert abs(who["ratio_to_target"] - who["max_ms"] / 1000) <= 1e-4
    assert who["records_per_answer"] > 1   # 5 records per person on average
    frequent = report["who_saw_frequent"]   # one person in every delivery entry
    assert frequent["delivery_entries"] == ledger["delivery_entries"] == frequent["records_found"]
    assert frequent["complete"] is True and frequent["ms"] > 0
    verify = report["verify"]
    assert verify["ok"] is True and verify["findings"] == 0 and verify["entries"] == sum(ledger["chains"].values())
    assert verify["elapsed_s"] > 0 and report["database"]["bytes"] > report["database"]["baseline_bytes"] > 0
    progress = done.stderr.splitlines()
    assert progress[-3].startswith("ledger bench: 5,000 / 5,000 delivered records (100%)"), progress
    assert sum("delivered records (" in line for line in progress) >= 10


def test_the_ledger_benchmark_prints_a_table_by_default() -> None:
    done = subprocess.run([sys.executable, "-m", "gsp.tools.bench.ledger", "--deliveries", "600", "--queries", "5",
                           "--per-append", "3"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("GSP ledger bench: 600 delivered records in ")
    for label in ("append: fact_entry + Ledger.append", "who saw my data, p99", "verify, whole ledger", "database size"):
        assert any(line.strip().startswith(label) for line in lines), (label, done.stdout)
    assert "answers agree with what was generated" in done.stdout and "entries, ok;" in done.stdout
    assert "3 fact(s) per append" in done.stdout
