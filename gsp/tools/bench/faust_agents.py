"""The Faust figures of `gsp bench`: one small Faust app per measurement, in a child process.

Faust wants to own its event loop and signals, so each measurement runs as
``python -m gsp.tools.bench.faust_agents '<spec as JSON>'``. The child consumes a pre-filled
topic with a fresh consumer group, times the first to the N-th event (and the
process's CPU seconds over the same span, ``cpu_s``: far below ``elapsed_s``, the
child waited for the broker or for a core another process held), prints
one JSON line and leaves with ``os._exit``: stopping the app from inside an
agent deadlocks on ``wait_empty``. A timer in the child and a hard timeout in
the parent make sure it always ends.

Modes (the agents mirror streams/app.py):
- ``iterate``: ``async for event in stream.events(): pass``, the baseline;
- ``clean``: CleanStage.process over micro-batches (``take_events``) sent with the batch API and the lineage
  headers, as streams/app.py;
- ``registry``: the registry agent's micro-batch (`streams.agents.registry_batch`): RegistryStage.process, then
  the table and its changelog written once per batch;
- ``share`` and ``share_ledger``: the share agent's micro-batch (`streams.agents.share_batch`) over match
  results for one subscription, without and with the audit ledger's reports (waiting for the broker's
  acknowledgement of each batch, then one LedgerFact per batch on ``gsp.ledger``).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gsp.errors import UserError

__all__ = ["measure", "measure_all"]

_ROOT = Path(__file__).resolve().parent.parent


def measure(spec: dict[str, Any], *, workdir: Path, timeout_s: float) -> dict[str, Any]:
    """Run one measurement in a child process; its result, or UserError with the child's last words."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))}
    spec = {**spec, "timeout_s": timeout_s, "datadir": str(workdir / f"faust-{spec['mode']}")}
    try:
        done = subprocess.run([sys.executable, "-m", "gsp.tools.bench.faust_agents", json.dumps(spec)], cwd=workdir, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout_s + 30)
    except subprocess.TimeoutExpired:
        raise UserError(f"Faust {spec['mode']} benchmark did not end within {timeout_s + 30:.0f}s") from None
    # Faust's worker writes terminal control codes to stdout too: the result is the JSON after them.
    lines = [line[line.index('{"mode"'):] for line in done.stdout.splitlines() if '{"mode"' in line]
    if done.returncode != 0 or not lines:
        if lines:
            raise UserError(f"Faust {spec['mode']} benchmark failed: {lines[-1]}")
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise UserError(f"Faust {spec['mode']} benchmark failed (exit {done.returncode}):\n{tail}")
    return dict(json.loads(lines[-1]))


def measure_all(common: dict[str, Any], runs: dict[str, dict[str, Any]], *, workdir: Path, timeout_s: float,
                say: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """One child process per mode, one after the other: they would compete for the same cores."""
    results = {}
    for mode, spec in runs.items():
        say(f"faust: {mode} agent over {spec['records']} events (child process, consumer-group join first)")
        results[mode] = measure({**common, **spec, "mode": mode}, workdir=workdir, timeout_s=timeout_s)
    return results


def _child(spec: dict[str, Any]) -> None:
    import faust
    from faust.worker import Worker
    from prometheus_client import CollectorRegistry, Counter

    from schemas.codec import Codec, contract
    from schemas.datasets import catalog, dataset, registry_dataset
    from streams import ledger
    from streams.agents import BATCH, BATCH_WITHIN_S
    from streams.produce import BatchSender, Outbox
    from streams.stages import CleanStage, RegistryStage, Where

    mode, wanted = spec["mode"], int(spec["records"])
    app = faust.App(
        f"gsp-bench-{mode}-{os.getpid()}", broker=f"kafka://{spec['bootstrap']}", store="memory://",
        topic_partitions=spec["partitions"], broker_session_timeout=spec["session_timeout_s"],
        broker_heartbeat_interval=spec["heartbeat_interval_s"], producer_linger_ms=spec["linger_ms"],
        producer_acks=-1, web_enabled=False, datadir=spec["datadir"], consumer_auto_offset_reset="earliest",
    )
    codec = Codec()
    for schema_id, name in spec["schemas"].items():
        codec.add(int(schema_id), contract(name))
    source = app.topic(spec["topic"], key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    started = time.monotonic()
    clock: dict[str, float] = {}
    seen = 0
    failed = 0
    finished = asyncio.Event()

    def count() -> None:
        nonlocal seen
        if seen == 0:
            clock["first"], clock["first_cpu"] = time.perf_counter(), time.process_time()
            clock["join_s"] = time.monotonic() - started
        seen += 1
        if seen == wanted:
            clock["last"] = time.perf_counter()
            finished.set()

    def refused() -> None:
        nonlocal failed
        failed += 1

    errors = Counter("bench_errors", "", ["stage", "dataset"], registry=CollectorRegistry())
    outbox = Outbox(BatchSender(app.producer._ensure_producer), errors, on_failure=refused)  # type: ignore[attr-defined]

    if mode == "iterate":
        async def agent(stream: Any) -> None:
            async for _ in stream.events():
                count()
    elif mode == "clean":
        ids = spec["ids"]
        stage = CleanStage.for_dataset(dataset(spec["dataset"]), codec, clean_schema_id=ids["clean"],
                                       issue_schema_id=ids["issue"])
        renamed = spec["out_topics"]

        async def agent(stream: Any) -> None:
            async for events in stream.take_events(BATCH, within=BATCH_WITHIN_S):
                outs = []
                for event in events:
                    m = event.message
                    topic, key, value = stage.process(event.key, event.value, Where(m.topic, m.partition, m.offset))
                    outs.append((renamed[topic], key, value))
                await outbox.send("clean", stage.dataset, outs, [  # the lineage headers the clean agent sends
                    ledger.lineage_headers(None, ledger.RAW, ledger.position(e.message.partition, e.message.offset))
                    for e in events])
                for _ in events:
                    count()
    elif mode == "registry":
        from streams.agents import registry_batch

        registry = registry_dataset()
        assert registry is not None
        registry_stage = RegistryStage(codec, registry, [d for d in catalog().values() if d.linked])
        # Only here: a table adds a changelog topic and its recovery to the app.
        table = app.Table("registry", key_type=str, value_type=None, partitions=spec["partitions"])

        async def agent(stream: Any) -> None:
            async for events in stream.take_events(BATCH, within=BATCH_WITHIN_S):
                await registry_batch(events, stage=registry_stage, table=table, outbox=outbox)
                for _ in events:
                    count()
    elif mode in ("share", "share_ledger"):
        from streams.agents import Ledger, share_batch
        from streams.share import Subscription
        from streams.stages import ShareStage

        subscription = Subscription.from_event(spec["subscription"])
        codec.add(subscription.schema_id, json.loads(spec["subscription"]["schema"]))
        codec.add(int(spec["ledger_schema_id"]), contract("vn.gsp.control.LedgerFact"))
        share_stage = ShareStage(codec, lambda dataset: [subscription])
        audit = Ledger(encode=lambda fact: codec.encode(int(spec["ledger_schema_id"]), fact), actor="worker:bench") \
            if mode == "share_ledger" else None

        async def agent(stream: Any) -> None:
            async for events in stream.take_events(BATCH, within=BATCH_WITHIN_S):
                await share_batch(events, source=spec["topic"], dataset=subscription.dataset,
                                  share=share_stage.process, outbox=outbox, audit=audit)
                for _ in events:
                    count()
    else:
        raise SystemExit(f"unknown mode {mode!r}")

    async def guarded(stream: Any) -> None:
        try:
            await agent(stream)
        except Exception as exc:  # a crashed agent would leave Faust idling until the timeout
            _leave({"mode": mode, "error": f"{type(exc).__name__}: {exc}"}, code=3)

    app.agent(source, name=f"bench-{mode}")(guarded)

    @app.task
    async def finish() -> None:
        try:
            await asyncio.wait_for(finished.wait(), spec["timeout_s"])
        except TimeoutError:
            _leave({"mode": mode, "timed_out": True, "seen": seen, "wanted": wanted}, code=2)
        await app.producer.flush()  # the figure includes delivering what the stage sent
        elapsed, cpu = time.perf_counter() - clock["first"], time.process_time() - clock["first_cpu"]
        _leave({"mode": mode, "timed_out": False, "records": seen, "elapsed_s": round(elapsed, 4),
                "last_event_s": round(clock["last"] - clock["first"], 4), "join_s": round(clock["join_s"], 2),
                "records_per_s": round(seen / elapsed, 1), "cpu_s": round(cpu, 4),
                "send_failures": failed}, code=0)

    worker = Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False)
    # Faust's terminal spinner, kept at WARNING, sets the root logger to DEBUG: every debug call of aiokafka and
    # Faust (one or two per send) would build a record for nothing. The worker (`gsp serve`, at its default
    # level, info) runs without it.
    worker.spinner = None
    worker.execute_from_commandline()


def _leave(result: dict[str, Any], *, code: int) -> None:
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the only exit that does not wait for Faust's shutdown


if __name__ == "__main__":
    _child(json.loads(sys.argv[1]))
