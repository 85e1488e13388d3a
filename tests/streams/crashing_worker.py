"""A Faust worker with one guarded agent (`streams.agents.Agents.batches`) copying a topic, for test_agent_crash.

    python -m tests.streams.crashing_worker BOOTSTRAP SOURCE SINK GROUP DATADIR [CRASH_ON]

With CRASH_ON, the batch holding that value raises: the worker must end with `CRASH_EXIT_CODE`.
"""

from __future__ import annotations

import sys
from typing import Any

import faust
from faust.worker import Worker
from prometheus_client import CollectorRegistry

from streams.agents import Agents
from streams.metrics import StageMetrics
from streams.produce import BatchSender, Outbox


def main(bootstrap: str, source: str, sink: str, group: str, datadir: str, crash_on: str = "") -> None:
    app = faust.App(group, broker=f"kafka://{bootstrap}", store="memory://", web_enabled=False, datadir=datadir,
                    topic_partitions=1, broker_commit_interval=0.2,
                    broker_session_timeout=6, broker_heartbeat_interval=1)
    metrics = StageMetrics.create(CollectorRegistry())
    outbox = Outbox(BatchSender(app.producer._ensure_producer), metrics.errors)  # type: ignore[attr-defined]
    agents = Agents(app, outbox, metrics)

    async def copy(events: list[Any]) -> None:
        if crash_on and any(e.value == crash_on.encode() for e in events):
            raise RuntimeError(f"{crash_on!r} cannot be processed")
        await outbox.send("copy", "test", [(sink, e.key or b"-", e.value) for e in events])

    agents.batches("copy", agents.topic(source), copy)
    Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False).execute_from_commandline()


if __name__ == "__main__":
    main(*sys.argv[1:])
