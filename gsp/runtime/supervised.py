"""Background loops of the control plane, each on a thread that is restarted when its loop dies.

A loop is a function of the stop event that returns only when told to stop. If it
raises, the exception is logged once with its traceback, the loop is marked down, and
it is started again after a back-off that doubles from ``first_s`` to ``max_s``; a run
that stayed up for ``healthy_s`` resets the back-off. So an infrastructure failure a loop
does not handle itself costs one log line per back-off step, never one per poll, and a
loop never dies silently: its state is on ``/health`` (:meth:`Supervisor.health`) and in
the metrics ``gsp_background_up{loop}`` and ``gsp_background_restarts_total{loop}``.
The worker's coroutines are supervised alike, with the same state (`streams.supervise`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from streams.supervise import DEFAULT_BACKOFF, Backoff, LoopState

__all__ = ["Backoff", "LoopState", "Supervisor"]

log = logging.getLogger("gsp.supervised")

Loop = Callable[[threading.Event], None]


class Supervisor:
    """Runs named loops on daemon threads until :meth:`stop`, restarting each one that raises."""

    def __init__(self, registry: CollectorRegistry, *, backoff: Backoff = DEFAULT_BACKOFF) -> None:
        self._backoff = backoff
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.states: dict[str, LoopState] = {}
        self._up = Gauge("gsp_background_up", "1 while a background loop runs, 0 while it waits to be restarted",
                         ["loop"], registry=registry)
        self._restarts = Counter("gsp_background_restarts_total", "Restarts of a background loop after it raised",
                                 ["loop"], registry=registry)

    def start(self, name: str, loop: Loop) -> None:
        """Run ``loop(stop)`` on a thread named ``name``; its metrics exist (at 0) from now on."""
        self.states[name] = LoopState()
        self._up.labels(name).set(0)
        self._restarts.labels(name)
        thread = threading.Thread(target=self._supervise, args=(name, loop), name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _supervise(self, name: str, loop: Loop) -> None:
        state, delay = self.states[name], self._backoff.first_s
        while not self._stop.is_set():
            state.mark(up=True)
            self._up.labels(name).set(1)
            started = time.monotonic()
            try:
                loop(self._stop)
            except Exception as exc:
                delay = self._backoff.next(delay, time.monotonic() - started)
                state.mark(up=False, error=exc)
                self._up.labels(name).set(0)
                log.exception("background loop failed; restarting", extra={"loop": name, "retry_in_s": delay})
                if self._stop.wait(delay):
                    break
                state.restarts += 1
                self._restarts.labels(name).inc()
                continue
            break  # returned: it was told to stop
        state.mark(up=False)
        self._up.labels(name).set(0)

    def health(self) -> dict[str, Any]:
        """For /health: ``up`` False while any loop is down, and every loop's state."""
        loops = {name: state.as_dict() for name, state in self.states.items()}
        return {"up": all(s["up"] for s in loops.values()), "loops": loops}

    def stop(self, *, timeout_s: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=timeout_s)
