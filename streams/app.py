"""The Faust app: wires topics to the stages in :mod:`streams.stages`, and nothing else.

Agents:
- ``clean-<dataset>``: raw -> clean | quarantine, per source dataset;
- ``registry``: clean citizens -> the ``registry`` table (personal id -> entry), whose
  changelog is the registry every worker reads;
- ``match``: clean subscribers -> match results: the three-field check when the id is a
  registry key, a probabilistic search (`streams.linking`) when it is wrong or missing;
  pairs for stewards go to the review topic as well;
- ``share``: match results -> each covering subscription's topic.

Partitioning: the registry table is keyed by personal id, and so are the clean
topics (subscribers by the id number they gave), with the same partition count.
The table spreads the writing of the registry over the workers. The reading is
not partitioned: the search cannot use personal-id partitions (blocking keys are
not personal ids), so every worker keeps a full replica of the registry, read from
the table's changelog (all partitions), and the stewards' decisions from
``gsp.review.decisions``; both are rebuilt from those topics after a restart before
the match agent decides anything. Exact lookups use the same replica: on the
embedded broker Faust's own table recovery stops short (its end offsets are wrong,
see `streams.follow`) and would forget citizens after a restart. A worker therefore
holds the whole registry (about 1 kB per citizen, see gsp/tools/bench/linkage.py): fine for a
ministry or a province, not for 100 million; `streams.linkage` describes the
partitioned alternative. With GSP_LINKAGE_MODEL=off the table is read directly.
Exactly-once is not used (see DESIGN.md): delivery is at-least-once and every sink
upserts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import Any

import faust
from prometheus_client import CollectorRegistry, generate_latest

from schemas import topics
from schemas.codec import Codec, CodecError
from schemas.registry import RegistryClient
from schemas.settings import Settings
from streams import clean as cleaning
from streams.book import SubscriptionBook
from streams.follow import follow_topic
from streams.linking import load_linker
from streams.metrics import QualityCollector, StageMetrics
from streams.produce import BatchSender
from streams.quality import PROFILES, QualityTally
from streams.stages import CleanStage, MatchStage, RegistryStage, ShareStage, Where

__all__ = ["create_app"]

log = logging.getLogger("gsp.streams")

CITIZEN, SUBSCRIBER = "population.citizen", "telecom.subscriber"
# Agents work in micro-batches: up to BATCH events, or what arrived within BATCH_WITHIN_S.
BATCH, BATCH_WITHIN_S = 500, 0.05


def _raw_topic(app: faust.App, name: str) -> Any:
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")


def create_app(settings: Settings, *, bootstrap: str, registry_url: str) -> faust.App:
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        topic_partitions=settings.partitions,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_max_poll_interval=settings.max_poll_interval_s,
        producer_linger_ms=settings.linger_ms,
        broker_commit_interval=1.0,  # progress (and consumer lag) visible within a second
        producer_acks=-1,
        web_port=settings.worker_web_port,
        web_bind="127.0.0.1" if settings.embedded else "0.0.0.0",
        web_in_thread=False,
        datadir=str(settings.home / "worker-data"),
        table_cleanup_interval=60.0,
    )
    registry = RegistryClient(registry_url)
    codec = Codec(resolve=registry.schema_by_id)
    metrics_registry = CollectorRegistry()
    metrics = StageMetrics.create(metrics_registry)
    book = SubscriptionBook(codec)
    tallies = {name: QualityTally(profile) for name, profile in PROFILES.items()}
    metrics_registry.register(QualityCollector(tallies))  # type: ignore[arg-type]
    worker_id = f"{socket.gethostname()}-{os.getpid()}"

    def schema_id(topic: str) -> int:
        schema_id_, _, text = registry.latest(topics.subject(topic))
        codec.add(schema_id_, text)
        return schema_id_

    issue_id = schema_id(topics.quarantine(CITIZEN))
    clean_stages = {
        CITIZEN: CleanStage(CITIZEN, codec, clean=cleaning.clean_citizen, key_of=lambda r: r["personal_id"],
                            clean_schema_id=schema_id(topics.clean(CITIZEN)), issue_schema_id=issue_id,
                            tally=tallies[CITIZEN]),
        SUBSCRIBER: CleanStage(SUBSCRIBER, codec, clean=cleaning.clean_subscriber, key_of=lambda r: r["id_number"],
                               clean_schema_id=schema_id(topics.clean(SUBSCRIBER)), issue_schema_id=issue_id,
                               tally=tallies[SUBSCRIBER]),
    }
    registry_stage = RegistryStage(codec)
    linker = load_linker(settings)
    match_stage = MatchStage(codec, result_schema_id=schema_id(topics.match(SUBSCRIBER)), tally=tallies[SUBSCRIBER],
                             linker=linker)
    schema_id(topics.REVIEW_DECISIONS)
    share_stage = ShareStage(codec, book.for_dataset, tallies=tallies)
    quality_schema_id = schema_id(topics.QUALITY)
    table = app.Table("registry", key_type=str, value_type=None, partitions=settings.partitions)

    def on_sent(stage: str, dataset: str) -> Any:
        def done(fut: asyncio.Future[Any]) -> None:
            if fut.cancelled() or fut.exception() is not None:
                metrics.errors.labels(stage, dataset).inc()
                log.error("delivery failed", extra={"stage": stage, "dataset": dataset})
        return done

    async def send(stage: str, dataset: str, topic: str, key: bytes, value: bytes) -> None:
        fut = await app.producer.send(topic, key, value, None, None, None)
        fut.add_done_callback(on_sent(stage, dataset))  # type: ignore[attr-defined]

    sender = BatchSender(app.producer._ensure_producer)  # type: ignore[attr-defined]  # faust exposes no public accessor for the aiokafka producer

    async def send_many(stage: str, dataset: str, outs: list[tuple[str, bytes, bytes]]) -> None:
        for fut in await sender.send(outs):
            fut.add_done_callback(on_sent(stage, dataset))

    def clean_agent(dataset: str) -> None:
        stage = clean_stages[dataset]

        async def agent(stream: Any) -> None:
            counted = metrics.records.labels("clean", dataset, "in")
            out = metrics.records.labels("clean", dataset, "out")
            held = metrics.records.labels("clean", dataset, "quarantined")
            async for events in stream.take_events(BATCH, within=BATCH_WITHIN_S):
                outs = [stage.process(e.key, e.value, Where(e.message.topic, e.message.partition, e.message.offset))
                        for e in events]
                counted.inc(len(outs))
                quarantined = sum(1 for topic, _, _ in outs if topic == stage.quarantine_topic)
                held.inc(quarantined)
                out.inc(len(outs) - quarantined)
                await send_many("clean", dataset, outs)

        agent.__name__ = f"clean_{dataset.replace('.', '_')}"
        app.agent(_raw_topic(app, topics.raw(dataset)), name=f"clean-{dataset}")(agent)

    for dataset in clean_stages:
        clean_agent(dataset)

    @app.agent(_raw_topic(app, topics.clean(CITIZEN)), name="registry")
    async def registry_agent(stream: Any) -> None:
        async for event in stream.events():
            personal_id, entry = registry_stage.process(event.value)
            table[personal_id] = entry
            metrics.records.labels("registry", CITIZEN, "in").inc()

    # The matcher's replica of the registry and the stewards' decisions: read whole by every worker.
    replica_ready, decisions_ready = asyncio.Event(), asyncio.Event()

    def apply_registry_change(key: bytes | None, value: bytes | None) -> None:
        if key is not None and linker is not None:
            try:
                # The changelog holds the table's own serialization (JSON for str keys and dict values).
                personal_id = app.serializers.loads_key(table.key_type, key, serializer=table.key_serializer)  # type: ignore[attr-defined]
                entry = None if value is None else app.serializers.loads_value(
                    table.value_type, value, serializer=table.value_serializer)  # type: ignore[attr-defined]
                linker.apply_entry(str(personal_id), entry)
            except (ValueError, TypeError, KeyError, faust.exceptions.DecodeError) as exc:  # one bad changelog entry must not stop the worker
                metrics.errors.labels("registry", CITIZEN).inc()
                log.error("registry change not indexed", extra={"stage": "registry", "error": str(exc)})

    def apply_decision(key: bytes | None, value: bytes | None) -> None:
        if key is None or linker is None:
            return
        try:
            linker.apply_decision(key.decode(), None if value is None else codec.decode(value)[1]["decision"])
        except CodecError as exc:
            log.error("unreadable review decision ignored", extra={"stage": "match", "error": str(exc)})

    @app.agent(_raw_topic(app, topics.clean(SUBSCRIBER)), name="match")
    async def match_agent(stream: Any) -> None:
        async for events in stream.take_events(BATCH, within=BATCH_WITHIN_S):
            if linker is not None and not (replica_ready.is_set() and decisions_ready.is_set()):
                await asyncio.gather(replica_ready.wait(), decisions_ready.wait())  # rebuilt after a restart first
            items = []
            for event in events:
                subscriber, personal_id = match_stage.id_of(event.value)
                # The replica, not the table: on the embedded broker Faust's own table recovery stops
                # short after a restart (see streams.follow), the replica does not.
                entry = linker.entry(personal_id) if linker is not None else table.get(personal_id)
                items.append((subscriber, event.value, entry))
            outs = []
            for sent, verdict in match_stage.process_batch(items):
                metrics.verdicts.labels(SUBSCRIBER, verdict).inc()
                outs.extend(sent)
            metrics.records.labels("match", SUBSCRIBER, "in").inc(len(items))
            await send_many("match", SUBSCRIBER, outs)

    @app.agent(_raw_topic(app, topics.match(SUBSCRIBER)), name="share")
    async def share_agent(stream: Any) -> None:
        async for events in stream.take_events(BATCH, within=BATCH_WITHIN_S):
            metrics.records.labels("share", SUBSCRIBER, "in").inc(len(events))
            outs = []
            for event in events:
                for out, subscription in share_stage.process(event.value):
                    metrics.delivered.labels(subscription.agency, subscription.dataset).inc()
                    outs.append(out)
            await send_many("share", SUBSCRIBER, outs)

    @app.agent(app.topic(*[topics.quarantine(d) for d in clean_stages], key_type=bytes, value_type=bytes,
                         key_serializer="raw", value_serializer="raw"), name="quality-quarantine")
    async def quality_quarantine(stream: Any) -> None:
        # Rows the connector quarantined never reach a stage, but they count against completeness.
        async for event in stream.events():
            try:
                _, issue = codec.decode(event.value)
            except CodecError:
                continue
            if issue["stage"] == "connector" and issue["dataset"] in tallies:
                tallies[issue["dataset"]].observe_connector_issue(issue["rule"], issue["field"])

    published: dict[str, int] = {}

    @app.timer(interval=2.0)
    async def publish_quality() -> None:
        for dataset, tally in tallies.items():
            if tally.records == 0 or published.get(dataset) == tally.records + sum(tally.cells.values()):
                continue
            published[dataset] = tally.records + sum(tally.cells.values())
            snapshot = {"worker": worker_id, "dataset": dataset, "taken_at": int(time.time() * 1000),
                        "records": tally.records, "cells": tally.snapshot_cells(), "rules": dict(tally.rules)}
            await send("quality", dataset, topics.QUALITY, f"{dataset}/{worker_id}".encode(),
                       codec.encode(quality_schema_id, snapshot))

    stopped = asyncio.Event()

    @app.task
    async def follow_subscriptions() -> None:
        await book.follow(bootstrap, stopped)

    if linker is not None:
        @app.task
        async def follow_registry() -> None:
            await follow_topic(bootstrap, table.changelog_topic.get_topic_name(), apply_registry_change, stopped,
                               caught_up=replica_ready, client_id="gsp-registry-replica")

        @app.task
        async def follow_decisions() -> None:
            await follow_topic(bootstrap, topics.REVIEW_DECISIONS, apply_decision, stopped, caught_up=decisions_ready,
                               client_id="gsp-review-decisions")

    def refresh_gauges() -> None:
        metrics.registry_size.set(len(table))
        if linker is not None:
            metrics.linkage_index.set(len(linker.index))
        metrics.subscriptions.set(len(book))
        lag: dict[str, int] = {}
        for tp in app.consumer.assignment():
            highwater = app.consumer.highwater(tp)
            committed = app.consumer._committed_offset.get(tp) or 0  # type: ignore[attr-defined]  # faust keeps no public accessor
            if highwater is not None:
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, highwater - committed)
        metrics.lag.clear()  # a topic this worker no longer holds must not keep its last value
        for topic, records in lag.items():
            metrics.lag.labels(topic).set(records)

    @app.timer(interval=5.0)
    async def observe() -> None:
        refresh_gauges()

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        refresh_gauges()
        return web.bytes(generate_latest(metrics_registry), content_type="text/plain; version=0.0.4")

    @app.page("/health")
    async def health_page(web: Any, request: Any) -> Any:
        return web.json({"status": "ok", "pid": os.getpid(), "assigned_partitions": len(app.consumer.assignment()),
                         "subscriptions": len(book), "registry_records": len(table), "linkage": linkage_health()})

    def linkage_health() -> dict[str, Any] | None:
        if linker is None:
            return None
        return {"ready": replica_ready.is_set() and decisions_ready.is_set(), "registry_entries": linker.entries,
                "indexed": len(linker.index), "decisions": linker.decisions}

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def _stop(app_: Any, **_: Any) -> None:
        stopped.set()

    return app
