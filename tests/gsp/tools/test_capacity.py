import json
import math

import pytest

from gsp.tools.bench.capacity import GIB, MIB, Inputs, main, model


@pytest.mark.parametrize("bytes_per_entry,rate", [(864, 800), (300, 5000), (2000, 100)])
def test_the_workers_chosen_fit_in_memory_and_in_time(bytes_per_entry: float, rate: float) -> None:
    inputs = Inputs(bytes_per_entry, rate)
    result = model(inputs)
    assert result["memory_per_worker_gib"] * GIB <= inputs.worker_memory_gib * GIB * 1.001
    assert result["hours_at_workers"] <= inputs.hours + 0.01
    fewer = result["workers"] - 1
    if fewer:  # one worker less breaks memory or time
        too_big = inputs.base_mib * MIB + inputs.people * bytes_per_entry / fewer > inputs.worker_memory_gib * GIB
        too_slow = inputs.verifications / (rate * fewer) / 3600 > inputs.hours
        assert too_big or too_slow
    assert result["partitions"] >= 2 * result["workers"] and math.log2(result["partitions"]).is_integer()


def test_a_full_replica_at_national_scale_does_not_fit_one_worker() -> None:
    result = model(Inputs(864, 1000))
    assert result["one_worker_full_replica_gib"] > 80 and result["workers_for_memory"] > 10


def test_the_command_prints_json_and_refuses_impossible_inputs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--bytes-per-entry", "500", "--records-per-core-s", "1000", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["inputs"]["bytes_per_entry"] == 500
    assert main(["--bytes-per-entry", "500", "--records-per-core-s", "1000", "--worker-memory-gib", "0.1"]) == 2
    assert "exceed its base memory" in capsys.readouterr().err
