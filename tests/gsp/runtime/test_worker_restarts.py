"""gsp serve's supervision of its stream workers: restarted for ever, with a back-off once they keep failing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from gsp.runtime.supervisor import WorkerProcess
from schemas.settings import Settings


class Failing(WorkerProcess):
    """A worker that exits at once with code 3 (a crash on start), counting its starts."""

    starts = 0

    def _spawn(self) -> None:
        self.starts += 1
        self._process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
        self._process.wait(timeout=30)


def test_a_worker_that_keeps_failing_is_restarted_for_ever_with_a_growing_back_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GSP_HOME", str(tmp_path))
    worker = Failing(Settings.from_env(), bootstrap="127.0.0.1:1",
                     registry_url="http://127.0.0.1:1", home=tmp_path)
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    worker.start()
    # The first two exits: started again at once.
    assert worker.restart_if_dead() == 3 and worker.starts == 2 and worker.backoff_s == 0
    assert worker.restart_if_dead() == 3 and worker.starts == 3
    # The third exit in a row: the next start waits 5 s, then 10 s, 20 s, 40 s, 60 s at most.
    waits = []
    for _ in range(6):
        assert worker.restart_if_dead() == 3
        waits.append(worker.backoff_s)
        starts = worker.starts
        clock[0] += worker.backoff_s - 0.5
        assert worker.restart_if_dead() is None and worker.starts == starts  # still waiting
        clock[0] += 0.5
        assert worker.restart_if_dead() is None and worker.starts == starts + 1  # started again
    assert waits == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]
    # A worker that ran two minutes before it exited starts the count over.
    clock[0] += 120
    assert worker.restart_if_dead() == 3 and worker.backoff_s == 0 and worker.restarts == 9
