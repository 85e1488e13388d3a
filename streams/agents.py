"""The agents: one Faust agent per stage and dataset, each a loop from a topic to a stage to the outbox.

Agents work in micro-batches (`take_events`): up to ``BATCH`` events, or what arrived within
``BATCH_WITHIN_S``. Faust acks a batch only after the loop body returned, and flushes the
producer before it commits, so delivery stays at-least-once (see `streams.produce`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import faust

from schemas import topics
from schemas.codec import Codec, CodecError
from streams.metrics import StageMetrics
from streams.produce import Outbox
from streams.quality import QualityTally
from streams.replica import Replica
from streams.share import Subscription
from streams.stages import CleanStage, MatchStage, Out, RegistryStage, Where

__all__ = ["BATCH", "BATCH_WITHIN_S", "Agents"]

BATCH, BATCH_WITHIN_S = 500, 0.05

Share = Callable[[bytes], list[tuple[Out, Subscription]]]


class Agents:
    """Adds the agents of each stage to one Faust app."""

    def __init__(self, app: faust.App, outbox: Outbox, metrics: StageMetrics) -> None:
        self._app = app
        self._outbox = outbox
        self._metrics = metrics

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
                await outbox.send("clean", dataset, outs)

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
                for sent, verdict in stage.process_batch([event.value for event in events]):
                    metrics.verdicts.labels(dataset, verdict).inc()
                    outs.extend(sent)
                counted.inc(len(events))
                await outbox.send("match", dataset, outs)

        self._add(f"match-{dataset}", self._topic(topics.clean(dataset)), agent)

    def share(self, dataset: str, source: str, share: Share) -> None:
        """``source`` (match.<linked> or clean.<plain>) -> share.<agency>.<dataset> for every covering subscription."""
        outbox, metrics = self._outbox, self._metrics
        counted = metrics.records.labels("share", dataset, "in")

        async def agent(stream: Any) -> None:
            async for events in stream.take_events(BATCH, within=BATCH_WITHIN_S):
                counted.inc(len(events))
                outs = []
                for event in events:
                    for out, subscription in share(event.value):
                        metrics.delivered.labels(subscription.agency, subscription.dataset).inc()
                        outs.append(out)
                await outbox.send("share", dataset, outs)

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
