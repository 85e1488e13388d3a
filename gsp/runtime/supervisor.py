"""Stream workers as child processes of the control plane (demo and `gsp serve`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from gsp.errors import UserError
from gsp.runtime.embedded import free_port, stop_process
from schemas.settings import Settings

__all__ = ["WorkerProcess"]


class WorkerProcess:
    def __init__(self, settings: Settings, *, bootstrap: str, registry_url: str, home: Path,
                 token: str | None = None) -> None:
        """``token``: the credential the worker reads the control plane's registry with."""
        self.port = free_port()
        self.log_path = home / f"worker-{self.port}.log"
        # The child reads the parent's settings, not only the parent's environment.
        self._env = {**os.environ, **settings.to_env(), "GSP_KAFKA_BOOTSTRAP": bootstrap, "GSP_SCHEMA_REGISTRY_URL": registry_url,
                     "GSP_WORKER_WEB_PORT": str(self.port), "GSP_HOME": str(home)}
        self._env.pop("GSP_TOKEN", None)  # the caller's own credential is not handed down
        if token:
            self._env["GSP_TOKEN"] = token
        self._process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._failures = 0  # exits in a row, each after less than two minutes of running
        self._started_at = time.monotonic()
        self._due: float | None = None  # when a dead worker is started again (crash-loop back-off)

    def start(self) -> None:
        self._started_at = time.monotonic()
        self._spawn()

    def _spawn(self) -> None:
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen([sys.executable, "-m", "gsp", "worker"], env=self._env,
                                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1) as response:
                return dict(json.load(response))
        except (OSError, ValueError):
            return None

    def wait_until(self, ready: Any, *, timeout_s: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            state = self.health()
            if state is not None and ready(state):
                return state
            time.sleep(0.2)
        raise UserError(f"stream worker not {what} after {timeout_s:.0f}s; see {self.log_path}")

    def restart_if_dead(self) -> int | None:
        """Start the worker again if it exited (a supervisor's job, never given up); its exit code when the exit
        is first seen, else None. The first two restarts are immediate; from the third exit in a row (each after
        less than two minutes of running) on, each waits twice as long as the one before (5 s, 10 s, … 60 s at
        most), as Kubernetes' CrashLoopBackOff does, so a worker that keeps failing does not spin
        (``backoff_s`` says how long; the worker's /health answers nothing meanwhile).

        Delivery is at-least-once: the new process resumes from the group's committed offsets
        and the sinks' upsert by event id absorbs what is replayed.
        """
        if self._process is None or self._process.poll() is None:
            return None
        now = time.monotonic()
        if self._due is not None:
            if now >= self._due:
                self._due = None
                self.start()
            return None
        code = self._process.returncode
        self.restarts += 1
        self._failures = 1 if now - self._started_at >= 120.0 else self._failures + 1
        if self.backoff_s:
            self._due = now + self.backoff_s
        else:
            self.start()
        return code

    @property
    def backoff_s(self) -> float:
        """How long the next restart waits: 0 after the first two exits in a row, then 5, 10, 20, 40, 60 s."""
        return 0.0 if self._failures < 3 else min(60.0, 5.0 * 2 ** (self._failures - 3))

    def restart(self) -> None:
        """Kill and start the worker (not counted in ``restarts``): its broker was replaced by an empty one, so
        its group offsets, tables and replicas are gone and it must start over from what the topics hold now.
        Killed, not stopped: see `kill`."""
        self.kill()
        self.start()

    def kill(self) -> None:
        """SIGKILL, no goodbye, and not started again until `start` or `restart`. For a worker whose broker was
        lost: a graceful stop commits the consumer positions it had in the old broker into the new, empty one,
        where the connectors' replays put other records at those offsets, and the next worker starts past them
        (measured: 192 of 1,905 match results never shared, tests/faults/test_kills.py)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    def check_alive(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            raise UserError(f"stream worker exited with code {self._process.returncode}; see {self.log_path}")

    def stop(self) -> None:
        process, self._process = self._process, None
        stop_process(process, grace_s=15)  # Faust commits and leaves the group on SIGTERM
