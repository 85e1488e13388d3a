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
        self._restarted_at: list[float] = []

    def start(self) -> None:
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
        """Start the worker again if it exited (a supervisor's job); the exit code, or None if it was running.

        Delivery is at-least-once: the new process resumes from the group's committed offsets
        and the sinks' upsert by event id absorbs what is replayed.
        """
        if self._process is None or self._process.poll() is None:
            return None
        code = self._process.returncode
        self.restarts += 1
        self._restarted_at.append(time.monotonic())
        self.start()
        return code

    def crash_looping(self, *, restarts: int = 5, within_s: float = 120.0) -> bool:
        """Whether it was restarted ``restarts`` times within ``within_s``: restarting it again would not help
        (a worker killed now and then, or crashing on a rare poison, is restarted for ever)."""
        recent = [at for at in self._restarted_at if at > time.monotonic() - within_s]
        self._restarted_at = recent
        return len(recent) >= restarts

    def restart(self) -> None:
        """Stop and start the worker (not counted in ``restarts``): its broker was replaced by an empty one, so
        its group offsets, tables and replicas are gone and it must start over from what the topics hold now."""
        self.stop()
        self.start()

    def check_alive(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            raise UserError(f"stream worker exited with code {self._process.returncode}; see {self.log_path}")

    def stop(self) -> None:
        process, self._process = self._process, None
        stop_process(process, grace_s=15)  # Faust commits and leaves the group on SIGTERM
