"""The agents: one Faust agent per stage and dataset, each a loop from a topic to a stage to the outbox.

Agents work in micro-batches (`take_events`): up to ``BATCH`` events, or what arrived within
``BATCH_WITHIN_S``. Faust acks a batch once the loop body is done with it, and flushes the
producer before it commits, so delivery stays at-least-once (see `streams.produce`).

Every batch runs under `Agents._guard`. Faust acks a ``take_events`` batch in a ``finally``, even
when the body raised, so an agent that lets an exception out would have its batch committed
unprocessed, and then sit dead while the worker looks healthy. Instead: a schema registry that
cannot be reached is waited for (the batch is retried with back-off, never quarantined), and any
other exception is logged and ends the process at once (`crash`, before anything is acked), so
the supervisor restarts the worker from the last committed offsets: nothing after a crash is skipped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import faust

from schemas import topics
from schemas.codec import Codec, CodecError, SchemaUnavailable
from schemas.envelope import Verdict
from streams import ledger
from streams.dedupe import RecentDeliveries
from streams.metrics import StageMetrics
from streams.produce import Outbox
from streams.quality import QualityTally
from streams.replica import Replica
from streams.stages import CleanStage, MatchStage, Out, RegistryStage, Where
from streams.stages.share import Shared

__all__ = ["BATCH", "BATCH_WITHIN_S", "Agents", "Ledger", "registry_batch", "share_batch", "write_table"]

BATCH, BATCH_WITHIN_S = 500, 0.05
CRASH_EXIT_CODE = 70  # EX_SOFTWARE: the supervisor restarts the worker

log = logging.getLogger("gsp.streams")

Share = Callable[[bytes], list[Shared]]


@dataclass(frozen=True)
class Ledger:
    """Where the share agents report what they delivered: ``encode(fact) -> bytes`` (a LedgerFact) and the worker's name."""

    encode: Callable[[dict[str, Any]], bytes]
    actor: str
    clock: Callable[[], float] = time.time


def exit_now() -> None:
    """End the worker process at once: no ack, no commit, no shutdown hook (see the module's docstring)."""
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(CRASH_EXIT_CODE)


class Agents:
    """Adds the agents of each stage to one Faust app."""

    def __init__(self, app: faust.App, outbox: Outbox, metrics: StageMetrics, *, audit: Ledger | None = None,
                 recent: RecentDeliveries | None = None, crash: Callable[[], None] = exit_now,
                 max_backoff_s: float = 30.0) -> None:
        """``audit``: where deliveries are reported (None: not reported, for a benchmark's comparison only);
        ``recent``: the window of deliveries a replay is checked against (None: every replay is shared again)."""
        self._app = app
        self._outbox = outbox
        self._metrics = metrics
        self._audit = audit
        self._recent = recent
        self._crash = crash
        self._max_backoff_s = max_backoff_s
        self.waiting: dict[str, str] = {}  # agent -> what it waits for (shown in /health)

    async def _guard(self, agent: str, batch: Callable[[], Awaitable[Any]]) -> None:
        """One micro-batch: retried while the schema registry is unreachable; any other failure ends the worker."""
        delay = 0.5
        while True:
            try:
                await batch()
            except SchemaUnavailable as exc:
                self.waiting[agent] = f"schema registry unreachable: {str(exc)[:200]}"
                log.warning("schema registry unreachable; the batch waits and is retried",
                            extra={"agent": agent, "retry_in_s": delay, "error": str(exc)[:200]})
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_backoff_s)
                continue
            except Exception:
                log.critical("agent crashed; the worker exits so that it restarts from its last committed offsets",
                             exc_info=True, extra={"agent": agent})
                self._crash()
                raise
            if self.waiting.pop(agent, None) is not None:
                log.info("schema registry reachable again", extra={"agent": agent})
            return

    async def _wait(self, agent: str, what: str, ready: Awaitable[Any]) -> None:
        """Await ``ready``, declared in ``waiting`` meanwhile (a declared wait is not a stopped worker)."""
        self.waiting[f"{agent}:ready"] = what
        try:
            await ready
        finally:
            self.waiting.pop(f"{agent}:ready", None)

    def topic(self, *names: str) -> Any:
        return self._app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    def _add(self, name: str, source: Any, agent: Callable[[Any], Any]) -> None:
        agent.__name__ = name.replace("-", "_").replace(".", "_")  # Faust names the agent's task after it
        self._app.agent(source, name=name)(agent)

    def batches(self, name: str, source: Any, batch: Callable[[list[Any]], Awaitable[Any]]) -> None:
        """An agent named ``name`` that hands each micro-batch of ``source`` (a topic, `topic`) to ``batch``, guarded."""
        async def agent(stream: Any) -> None:
            async for events in stream.take_events(BATCH, within=BATCH_WITHIN_S):
                await self._guard(name, partial(batch, events))

        self._add(name, source, agent)

    def clean(self, stage: CleanStage) -> None:
        """raw.<dataset> -> clean.<dataset> | quarantine.<dataset>."""
        dataset, outbox = stage.dataset, self._outbox
        counted, out, held = (self._metrics.records.labels("clean", dataset, d) for d in ("in", "out", "quarantined"))

        async def batch(events: list[Any]) -> None:
            outs = [stage.process(e.key, e.value, Where(e.message.topic, e.message.partition, e.message.offset))
                    for e in events]
            quarantined = sum(1 for topic, _, _ in outs if topic == stage.quarantine_topic)
            counted.inc(len(outs))
            held.inc(quarantined)
            out.inc(len(outs) - quarantined)
            await outbox.send("clean", dataset, outs, [
                ledger.lineage_headers(None, ledger.RAW, ledger.position(e.message.partition, e.message.offset))
                for e in events])

        self.batches(f"clean-{dataset}", self.topic(topics.raw(dataset)), batch)

    def registry(self, stage: RegistryStage, table: Any) -> None:
        """clean.<registry> -> the registry table (personal id -> entry), whose changelog every worker reads."""
        counted, outbox = self._metrics.records.labels("registry", stage.dataset, "in"), self._outbox

        async def batch(events: list[Any]) -> None:
            await registry_batch(events, stage=stage, table=table, outbox=outbox)
            counted.inc(len(events))

        self.batches("registry", self.topic(topics.clean(stage.dataset)), batch)

    def match(self, stage: MatchStage, replica: Replica | None) -> None:
        """clean.<linked dataset> -> match.<dataset> (+ review.<dataset>), once the replica is rebuilt."""
        dataset, outbox, metrics = stage.dataset, self._outbox, self._metrics
        counted, held = (metrics.records.labels("match", dataset, d) for d in ("in", "quarantined"))
        for verdict in Verdict:  # every verdict's series from the start, at zero
            metrics.verdicts.labels(dataset, verdict.value)

        async def batch(events: list[Any]) -> None:
            if replica is not None and not replica.ready:  # after a restart: nothing is decided on a half-read registry
                await self._wait(f"match-{dataset}", "the registry replica being read", replica.wait_ready())
            outs: list[Out] = []
            headers = []
            wheres = [Where(e.message.topic, e.message.partition, e.message.offset) for e in events]
            for event, (sent, verdict) in zip(events, stage.process_batch([e.value for e in events], wheres),
                                              strict=True):
                if verdict is None:
                    held.inc()  # not a readable clean record: quarantined with its reason
                else:
                    metrics.verdicts.labels(dataset, verdict).inc()
                outs.extend(sent)
                way = ledger.lineage_headers(event.headers, ledger.CLEAN,
                                             ledger.position(event.message.partition, event.message.offset))
                headers.extend([way] * len(sent))
            counted.inc(len(events))
            await outbox.send("match", dataset, outs, headers)

        self.batches(f"match-{dataset}", self.topic(topics.clean(dataset)), batch)

    def share(self, dataset: str, source: str, share: Share,
              before: Callable[[], Awaitable[None]] | None = None) -> None:
        """``source`` (match.<linked> or clean.<plain>) -> share.<agency>.<dataset> for every covering subscription,
        then what was delivered, where, to the audit ledger (`streams.ledger`). ``before`` is awaited before each
        micro-batch (the subscriptions read, the recent deliveries read back, the consent barrier). A delivery
        already in the window of recent ones (a replay) is dropped and counted."""
        outbox, metrics, audit, recent = self._outbox, self._metrics, self._audit, self._recent
        counted = metrics.records.labels("share", dataset, "in")
        replayed = metrics.records.labels("share", dataset, "replayed")

        def delivered(item: Shared) -> bool:
            if recent is not None and not recent.first_time(item.subscription.subscription_id,
                                                            item.record["agency_event_id"]):
                replayed.inc()
                return False
            metrics.delivered.labels(item.subscription.agency, item.subscription.dataset).inc()
            return True

        async def batch(events: list[Any]) -> None:
            if before is not None:
                await self._wait(f"share-{dataset}", "the subscriptions, recent deliveries and consents being read",
                                 before())
            counted.inc(len(events))
            await share_batch(events, source=source, dataset=dataset, share=share, outbox=outbox, audit=audit,
                              delivered=delivered)

        self.batches(f"share-{dataset}", self.topic(source), batch)

    def connector_issues(self, codec: Codec, tallies: Mapping[str, QualityTally], datasets: Iterable[str]) -> None:
        """Rows the connector quarantined never reach a stage, but they count against completeness."""
        async def batch(events: list[Any]) -> None:
            for event in events:
                try:
                    _, issue = codec.decode(event.value)
                except CodecError:
                    continue
                # Another contract's record on a quarantine topic has none of these: not an issue to count.
                rule, field = issue.get("rule"), issue.get("field")
                if (issue.get("stage") == "connector" and issue.get("dataset") in tallies and isinstance(rule, str)
                        and (field is None or isinstance(field, str))):
                    tallies[issue["dataset"]].observe_connector_issue(rule, field)

        self.batches("quality-quarantine", self.topic(*(topics.quarantine(d) for d in datasets)), batch)


async def registry_batch(events: list[Any], *, stage: RegistryStage, table: Any, outbox: Outbox) -> int:
    """One micro-batch of the registry agent (the benchmark runs it too): every event's entry into ``table``
    (`write_table`), the last one of a person winning. How many entries were written."""
    changes: dict[str, tuple[int, dict[str, Any]]] = {}
    for event in events:
        entry = stage.process(event.value)
        if entry is not None:  # not a registry record: logged by the stage, the table keeps what it had
            changes.pop(entry[0], None)  # a person's last entry is written last
            changes[entry[0]] = (event.message.partition, entry[1])
    await write_table(table, outbox, stage.dataset, changes)
    return len(changes)


async def write_table(table: Any, outbox: Outbox, dataset: str, changes: Mapping[Any, tuple[int, Any]]) -> None:
    """``table[key] = value`` for every key -> (partition, value) of ``changes``, a micro-batch at a time.

    Faust sends each change on its own (`Table.on_key_set`: a ``send_soon`` and an aiokafka ``send`` per key,
    about 110 µs, half of what the registry agent took per event when it wrote so; `gsp bench`). Here the
    table's data is set in order and the changes go to its changelog in one batch (`Outbox`), each to
    ``partition`` (the input event's, where Faust sends it), in the table's own serialization (what Faust's
    table recovery and `streams.replica` read). A refused delivery ends the worker before the input is
    committed (the outbox's ``on_failure``), so a restart rebuilds the table from the changelog and writes
    the batch again.
    """
    if not changes:
        return
    serializers, data, topic = table.app.serializers, table.data, table.changelog_topic.get_topic_name()
    outs, partitions = [], []
    for key, (partition, value) in changes.items():
        data[key] = value
        outs.append((topic, serializers.dumps_key(table.key_type, key, serializer=table.key_serializer),
                     serializers.dumps_value(table.value_type, value, serializer=table.value_serializer)))
        partitions.append(partition)
    await outbox.send("registry", dataset, outs, partitions=partitions)


async def share_batch(events: list[Any], *, source: str, dataset: str, share: Share, outbox: Outbox,
                      audit: Ledger | None, delivered: Callable[[Shared], bool] = lambda item: True) -> int:
    """One micro-batch of the share agent (the benchmark runs it too): each record to every subscription that
    covers it (and that ``delivered`` lets through), then, once the broker has them all, what went where to the
    audit ledger. How many were sent."""
    shared: list[Shared] = []
    ways: list[dict[str, str]] = []
    for event in events:
        items = share(event.value)
        if not items:
            continue
        way = ledger.way(source, event.headers, event.message.partition, event.message.offset)
        for item in items:
            if not delivered(item):
                continue
            shared.append(item)
            ways.append(way)
    if not shared:
        return 0
    sent = await outbox.send("share", dataset, [item.out for item in shared])
    if audit is not None:
        # Reported once the broker has every record: a fact says where each one is (a refused batch raises
        # here, the agent fails, and the batch is shared again after the restart).
        facts = ledger.facts(shared, await sent.positions(), ways, at_ms=int(audit.clock() * 1000), actor=audit.actor)
        await outbox.send("ledger", dataset, [(topics.LEDGER, key, audit.encode(fact)) for key, fact in facts])
    return len(shared)
