"""`python -m gsp.tools.bench.verification` with a tiny record count: every figure is produced next to the rules,
and both paths answer exactly what the rules answer; speed is not checked."""

import io
import json

from gsp.tools.bench.verification import main


def test_the_verification_benchmark_measures_each_path_next_to_the_rules() -> None:
    out = io.StringIO()
    assert main(["--records", "300", "--batch", "100", "--json"], out=out) == 0
    report = json.loads(out.getvalue())
    figures = report["figures"]
    assert set(figures) == {"verify_rules", "verify_kafka", "verify_http"}
    for name, figure in figures.items():
        for key in ("records", "records_per_s", "us_per_record", "baseline_records_per_s", "ratio"):
            assert isinstance(figure[key], (int, float)) and figure[key] > 0, (name, key, figure)
        assert figure["records"] == 300 and figure["baseline"], name
    assert figures["verify_kafka"]["agrees_with_rules"] is True
    assert figures["verify_http"]["agrees_with_rules"] is True
    verdicts = figures["verify_rules"]["verdicts"]
    assert sum(verdicts.values()) == 300 and verdicts["MATCHED"] > 0 and verdicts["MISMATCH"] > 0
