"""The agents: one Faust agent per stage and dataset, each a loop from a topic to a stage to the outbox.

Agents work in micro-batches (`take_events`): up to ``BATCH`` events, or what arrived within
``BATCH_WITHIN_S``. Faust acks a batch only after the loop body returned, and flushes the
producer before it commits, so delivery stays at-least-once (see `streams.produce`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import faust

from schemas import topics
from schemas.codec import Codec, CodecError
from streams import ledger
from streams.metrics import StageMetrics
from streams.produce import Outbox
from streams.quality import QualityTally
from streams.replica import Replica
from streams.stages import CleanStage, MatchStage, Out, RegistryStage, Where
from streams.stages.share import Shared

__all__ = ["BATCH", "BATCH_WITHIN_S", "Agents", "Ledger", "share_batch"]

BATCH, BATCH_WITHIN_S = 500, 0.05

Share = Callable[[bytes], list[Shared]]


@dataclass(frozen=True)
class Ledger:
    """Where the share agents report what they delivered: ``encode(fact) -> bytes`` (a LedgerFact) and the worker's name."""

    encode: Callable[[dict[str, Any]], bytes]
    actor: str
    clock: Callable[[], float] = time.time


class Agents:
    """Adds the agents of each stage to one Faust app."""

    def __init__(self, app: faust.App, outbox: Outbox, metrics: StageMetrics, *, audit: Ledger | None = None) -> None:
        """``audit``: where deliveries are reported (None: not reported, for a benchmark's comparison only)."""
        self._app = app
        self._outbox = outbox
        self._metrics = metrics
        self._audit = audit

    def _topic(self, *names: str) -> Any:
        return self._app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    def _add(self, name: str, source: Any, agent: Callable[[Any], Any]) -> None:
        agent.__name__ = name.replace("-", "_").replace(".", "_")  # Faust names the agent's task after it
        self._app.agent(source, name=name)(agent)

    def clean(self, stage: CleanStage) -> None:
        """raw.<dataset> -> clean.<dataset> | quarantine.<dataset>."""
        dataset, outbox = stage.dataset, self._outbox
        counted, out, held = (self._metrics.records.labels("clean", dataset, d) for d in ("in", "out", "quarantined"))

        async def agent(stream: Any) -> None:
            async for events in stream.take_events(BATCH, within=BATCH_WITHIN_S):
                outs = [stage.process(e.key, e.value, Where(e.message.topic, e.message.partition, e.message.offset))
                        for e in events]
                quarantined = sum(1 for topic, _, _ in outs if topic == stage.quarantine_topic)
                counted.inc(len(outs))
                held.inc(quarantined)
                out.inc(len(outs) - quarantined)
                await outbox.send("clean", dataset, outs, [
                    ledger.lineage_headers(None, ledger.RAW, ledger.position(e.message.partition, e.message.offset))
                    for e in events])

        self._add(f"clean-{dataset}", self._topic(topics.raw(dataset)), agent)

    def registry(self, stage: RegistryStage, table: Any) -> None:
        """clean.<registry> -> the registry table (personal id -> entry), whose changelog every worker reads."""
        counted = self._metrics.records.labels("registry", stage.dataset, "in")

        async def agent(stream: Any) -> None:
            async for event in stream.events():
                personal_id, entry = stage.process(event.value)
                table[personal_id] = entry
                counted.inc()

        self._add("registry", self._topic(topics.clean(stage.dataset)), agent)

    def match(self, stage: MatchStage, replica: Replica | None) -> None:
        """clean.<linked dataset> -> match.<dataset> (+ review.<dataset>), once the replica is rebuilt."""
        dataset, outbox, metrics = stage.dataset, self._outbox, self._metrics
        counted = metrics.records.labels("match", dataset, "in")

        async def agent(stream: Any) -> None:
            async for events in stream.take_events(BATCH, within=BATCH_WITHIN_S):
                if replica is not None:
                    await replica.wait_ready()  # after a restart: nothing is decided on a half-read registry
                outs: list[Out] = []
                headers = []
                for event, (sent, verdict) in zip(events, stage.process_batch([event.value for event in events]),
                                                  strict=True):
                    metrics.verdicts.labels(dataset, verdict).inc()
                    outs.extend(sent)
                    way = ledger.lineage_headers(event.headers, ledger.CLEAN,
                                                 ledger.position(event.message.partition, event.message.offset))
                    headers.extend([way] * len(sent))
                counted.inc(len(events))
                await outbox.send("match", dataset, outs, headers)

        self._add(f"match-{dataset}", self._topic(topics.clean(dataset)), agent)

    def share(self, dataset: str, source: str, share: Share,
              before: Callable[[], Awaitable[None]] | None = None) -> None:
        """``source`` (match.<linked> or clean.<plain>) -> share.<agency>.<dataset> for every covering subscription,
        then what was delivered, where, to the audit ledger (`streams.ledger`). ``before`` is awaited before each
        micro-batch (the consent barrier, `streams.consent`)."""
        outbox, metrics, audit = self._outbox, self._metrics, self._audit
        counted = metrics.records.labels("share", dataset, "in")

        def delivered(item: Shared) -> None:
            metrics.delivered.labels(item.subscription.agency, item.subscription.dataset).inc()

        async def agent(stream: Any) -> None:
            async for events in stream.take_events(BATCH, within=BATCH_WITHIN_S):
                counted.inc(len(events))
                if before is not None:
                    await before()
                await share_batch(events, source=source, dataset=dataset, share=share, outbox=outbox, audit=audit,
                                  delivered=delivered)

        self._add(f"share-{dataset}", self._topic(source), agent)

    def connector_issues(self, codec: Codec, tallies: Mapping[str, QualityTally], datasets: Iterable[str]) -> None:
        """Rows the connector quarantined never reach a stage, but they count against completeness."""
        async def agent(stream: Any) -> None:
            async for event in stream.events():
                try:
                    _, issue = codec.decode(event.value)
                except CodecError:
                    continue
                if issue["stage"] == "connector" and issue["dataset"] in tallies:
                    tallies[issue["dataset"]].observe_connector_issue(issue["rule"], issue["field"])

        self._add("quality-quarantine", self._topic(*(topics.quarantine(d) for d in datasets)), agent)


async def share_batch(events: list[Any], *, source: str, dataset: str, share: Share, outbox: Outbox,
                      audit: Ledger | None, delivered: Callable[[Shared], None] = lambda item: None) -> int:
    """One micro-batch of the share agent (the benchmark runs it too): each record to every subscription that
    covers it, then, once the broker has them all, what went where to the audit ledger. How many were sent."""
    shared: list[Shared] = []
    ways: list[dict[str, str]] = []
    for event in events:
        items = share(event.value)
        if not items:
            continue
        way = ledger.way(source, event.headers, event.message.partition, event.message.offset)
        for item in items:
            delivered(item)
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
