"""`gsp bench` end to end with a tiny record count: every figure is produced; speed is not checked."""

import io
import json
import re
from pathlib import Path

import pytest

from gsp.tools.bench.platform import run_bench
from schemas.settings import Settings

FIGURES = {"codec_encode", "codec_decode", "stage_clean", "stage_match", "stage_match_linked", "stage_match_single", "stage_share", "connector_publish",
           "faust_iterate", "faust_clean", "faust_registry", "end_to_end", "clean_contract_citizen", "clean_contract_subscriber",
           "stage_share_ledger", "faust_share", "faust_share_ledger", "latency"}


def test_bench_reports_every_figure_next_to_its_baseline(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = run_bench(Settings(home=tmp_path), records=300, as_json=True, splink=False, latency_seconds=3, out=out,
                     err=err)
    report = json.loads(out.getvalue())
    assert code == 0, report["figures"].get("end_to_end")
    assert set(report["figures"]) == FIGURES
    for name, figure in report["figures"].items():
        for key in ("records", "records_per_s", "us_per_record", "baseline_records_per_s", "ratio"):
            assert isinstance(figure[key], (int, float)) and figure[key] > 0, (name, key, figure)
        assert figure["baseline"], name
    assert report["figures"]["end_to_end"]["agrees_with_truth"] is True
    assert "bench: connector" in err.getvalue()
    latency = report["figures"]["latency"]
    assert latency["delivered"] == latency["offered"] > 0 and 0 < latency["p50_s"] <= latency["p99_s"]
    capacity = report["capacity"]
    assert capacity["inputs"]["bytes_per_entry"] == report["figures"]["stage_match_linked"]["registry_bytes_per_citizen"]
    assert capacity["workers"] >= capacity["workers_for_memory"] >= 1



def test_the_revocation_benchmark_times_a_decision_reaching_the_worker(capsys: pytest.CaptureFixture[str]) -> None:
    from gsp.tools.bench.revocation import main

    assert main(["--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"round 1: worker has the approval \d+\.\d{3} s after .*drops the suspension \d+\.\d{3} s", out), out
    assert out.splitlines()[-1].startswith("worst: approval ")
