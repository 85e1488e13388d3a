"""How a worker is seen from outside: its gauges, its health, its quality snapshots.

The ops server answers /metrics and /health from another thread than the worker's event loop.
So the gauges are set by a timer on the loop (`WorkerGauges.refresh`), and scraping reads only
the Prometheus registry; `health` reads plain counters and lengths, never the consumer.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from streams.book import SubscriptionBook
from streams.metrics import REWIND_REASONS, StageMetrics
from streams.quality import QualityTally
from streams.replica import Replica
from streams.supervise import LoopState

__all__ = ["LOOP_LATE_S", "QualitySnapshots", "WorkerGauges"]

LOOP_LATE_S = 10.0  # the gauges are refreshed every second on the event loop; later than this, it is stuck


class WorkerGauges:
    """The worker's gauges and its /health content."""

    def __init__(self, metrics: StageMetrics, book: SubscriptionBook, *, registry_records: Callable[[], int],
                 replica: Replica | None, waiting: Mapping[str, str] | None = None,
                 loops: Mapping[str, LoopState] | None = None) -> None:
        """``waiting``: agent -> what it waits for (a schema registry out of reach); ``loops``: the supervised
        background loops (`streams.supervise`); both shown in /health and the metrics."""
        self._loops = loops or {}
        self._restarts_seen: dict[str, int] = {}
        for name in self._loops:  # every series from the start
            metrics.background_up.labels(name).set(0)
            metrics.background_restarts.labels(name)
        for reason in REWIND_REASONS:
            metrics.rewinds.labels(reason)
        self._metrics = metrics
        self._waiting = waiting if waiting is not None else {}
        self._book = book
        self._registry_records = registry_records
        self._replica = replica
        self._assigned = 0
        self.refreshed_at: float | None = None  # monotonic time of the last refresh: the event loop turns

    def refresh(self, assigned: Iterable[Any], lag: Mapping[str, int]) -> None:
        """On the event loop: the partitions this worker holds, and its uncommitted records per topic."""
        m = self._metrics
        self.refreshed_at = time.monotonic()
        self._assigned = sum(1 for _ in assigned)
        m.registry_size.set(self._registry_records())
        m.subscriptions.set(len(self._book))
        if self._replica is not None:
            m.linkage_index.set(len(self._replica.linker.index))
        for name, state in self._loops.items():
            m.background_up.labels(name).set(1 if state.up else 0)
            m.background_restarts.labels(name).inc(state.restarts - self._restarts_seen.get(name, 0))
            self._restarts_seen[name] = state.restarts
        m.lag.clear()  # a topic this worker no longer holds must not keep its last value
        for topic, records in lag.items():
            m.lag.labels(topic).set(records)

    def health(self) -> dict[str, Any]:
        """Safe from any thread: plain counters, no consumer or event-loop state."""
        waiting = dict(self._waiting)
        loops = {name: state.as_dict() for name, state in self._loops.items()}
        down = sorted(name for name, state in loops.items() if not state["up"])
        late = None if self.refreshed_at is None else round(time.monotonic() - self.refreshed_at, 1)
        stalled = late is not None and late > LOOP_LATE_S  # answered from another thread: the loop is stuck
        if stalled:
            down.append(f"event loop (stalled {late:.0f} s)")
        status = "waiting" if waiting and not stalled else f"degraded: {', '.join(down)} down" if down else "ok"
        return {"status": status, "event_loop_late_s": late, "background": loops, "pid": os.getpid(), "assigned_partitions": self._assigned,
                "subscriptions": len(self._book), "registry_records": self._registry_records(),
                "linkage": None if self._replica is None else self._replica.health(), "waiting": waiting}


class QualitySnapshots:
    """The quality tallies as QualitySnapshot events, each one only when it changed since the last."""

    def __init__(self, tallies: Mapping[str, QualityTally], *, worker: str,
                 clock: Callable[[], float] = time.time) -> None:
        self._tallies = tallies
        self._worker = worker
        self._clock = clock
        self._published: dict[str, int] = {}

    def changed(self) -> list[tuple[str, bytes, dict[str, Any]]]:
        """(dataset, key, snapshot) for every tally that moved since the last call."""
        out = []
        for dataset, tally in self._tallies.items():
            seen = tally.records + sum(tally.cells.values())
            if tally.records == 0 or self._published.get(dataset) == seen:
                continue
            self._published[dataset] = seen
            out.append((dataset, f"{dataset}/{self._worker}".encode(), {
                "worker": self._worker, "dataset": dataset, "taken_at": int(self._clock() * 1000),
                "records": tally.records, "cells": tally.snapshot_cells(), "rules": dict(tally.rules)}))
        return out
