"""The latency benchmark, briefly and at a low rate: every offered row reaches the agency's table and the
percentiles are ordered; how fast is not checked."""

import io
import uuid
from pathlib import Path

from gsp.runtime.embedded import running_broker
from gsp.tools.bench.latency import measure_latency
from schemas.settings import Settings


def test_every_offered_subscriber_row_reaches_the_agencys_table(tmp_path: Path) -> None:
    err = io.StringIO()
    # A broker of its own, as the demo's test: other tests' records on the shared topics must not reach this sink.
    with running_broker(Settings(home=tmp_path / "broker")) as bootstrap:
        settings = Settings(kafka_bootstrap=bootstrap, app_id=f"gsp-latency-{uuid.uuid4().hex[:6]}")
        result = measure_latency(settings, max_rate=16.0, seconds=5, workdir=tmp_path / "run", err=err, citizens=300)
    assert result["offered_rate"] == 8.0
    assert result["offered"] == 40
    assert result["delivered"] == result["offered"], err.getvalue()
    assert 0 < result["p50_s"] <= result["p90_s"] <= result["p99_s"] <= result["max_s"]
    assert result["achieved_rate"] > 0 and result["records"] == 40
    assert isinstance(result["p99_under_2s"], bool)
    assert result["dataset"] == "telecom.subscriber"
    assert "offering 40 rows" in err.getvalue() and "delivered 40 of 40" in err.getvalue()
