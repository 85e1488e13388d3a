"""The stream worker: the declared datasets wired to the stages in `streams.stages`, and nothing else.

For every dataset in the catalog (`schemas.datasets`):
- ``clean-<dataset>``: raw -> clean | quarantine;
- the ``registry`` dataset: ``registry``, clean records -> the registry table (personal id ->
  entry), whose changelog every worker reads into its replica (`streams.replica`);
- a ``linked`` dataset: ``match-<dataset>``, clean -> match results (+ the review topic), decided
  by `streams.matching`; when shareable, ``share-<dataset>`` from its match topic;
- a shareable ``plain`` dataset: ``share-<dataset>`` from its clean topic.
Plus ``quality-quarantine`` (rows the connectors held back count against completeness), the
quality snapshots, the gauges, the background readers (subscriptions, replica) and the verification
consumer (`streams.verifying`: agencies' identity checks against the registry, answered over Kafka).

Partitioning: the registry table is keyed by personal id, and so are the clean topics of linked
datasets (`Dataset.partition_key`), with the same partition count. Exactly-once is not used (see
docs/architecture.md): delivery is at-least-once and every sink upserts. The worker's HTTP (/metrics,
/health) is the platform's ops server, not Faust's: `create_app` hands it `StreamApp.metrics`
and `StreamApp.health`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import faust
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from schemas import topics
from schemas.codec import Codec
from schemas.datasets import Role, catalog
from schemas.registry import RegistryClient
from schemas.settings import Settings
from streams import ledger
from streams.agents import Agents, Ledger, exit_now
from streams.book import SubscriptionBook
from streams.consent import ConsentBook, ConsentUnavailable
from streams.consumer import ProgressWatch, task_stacks
from streams.consumer import install as install_consumer
from streams.dedupe import RecentDeliveries
from streams.matching import Linker, Lookup, load_linker
from streams.metrics import QualityCollector, StageMetrics
from streams.observe import QualitySnapshots, WorkerGauges
from streams.produce import BatchSender, Outbox
from streams.quality import QualityTally
from streams.replica import DecodeChange, Replica
from streams.share import Subscription
from streams.stages import CleanStage, MatchStage, RegistryStage, ShareStage
from streams.supervise import LoopState, supervised, watch_event_loop
from streams.verify import Verifier
from streams.verifying import OnAnswered, VerificationLoop, Verifications

__all__ = ["StreamApp", "create_app"]

log = logging.getLogger("gsp.streams")


@dataclass(frozen=True)
class StreamApp:
    """A stream worker: the Faust app to run, and what its ops server shows."""

    faust: faust.App
    metrics: CollectorRegistry  # safe to scrape from any thread: the gauges are set on the worker's loop
    health: Callable[[], dict[str, Any]]  # status, pid, assigned_partitions, subscriptions, registry_records, linkage


def create_app(settings: Settings, *, bootstrap: str, registry_url: str,
               on_answered: OnAnswered | None = None) -> StreamApp:
    """``on_answered``: what to report of every verification batch answered (`streams.verifying`); default its
    LedgerFact for the audit ledger."""
    datasets = catalog(settings.datasets_dir)
    app = _faust_app(settings, bootstrap)
    registry = RegistryClient(registry_url, token=settings.token, cafile=settings.tls_ca)
    codec = Codec(resolve=registry.schema_by_id)
    schema_id = partial(_schema_id, registry, codec)
    prometheus = CollectorRegistry()
    metrics = StageMetrics.create(prometheus)
    install_consumer(app, on_rewind=lambda reason: metrics.rewinds.labels(reason).inc())
    tallies = {name: QualityTally.for_dataset(d) for name, d in datasets.items()}
    prometheus.register(QualityCollector(tallies))
    book = SubscriptionBook(codec)
    # Private: Faust has no public accessor for its started aiokafka producer, and its batch API is what
    # lets a worker forward thousands of events a second (see streams.produce).
    outbox = Outbox(BatchSender(app.producer._ensure_producer), metrics.errors,  # type: ignore[attr-defined]
                    on_failure=exit_now)
    ledger_schema_id = schema_id(topics.LEDGER)
    worker = f"{socket.gethostname()}-{os.getpid()}"
    audit = Ledger(encode=partial(codec.encode, ledger_schema_id), actor=f"worker:{worker}")
    recent = RecentDeliveries(settings.share_dedupe_window)
    agents = Agents(app, outbox, metrics, audit=audit, recent=recent)
    table = app.Table("registry", key_type=str, value_type=None, partitions=settings.partitions)
    linker = load_linker(settings)
    replica = None if linker is None else Replica(
        linker, codec, decode_change=_changelog_decoder(app, table),
        on_error=metrics.errors.labels("registry", next((d.name for d in datasets.values()
                                                         if d.role is Role.REGISTRY), "")).inc)
    consents = ConsentBook(codec)
    share = ShareStage(codec, book.for_dataset, tallies=tallies, consented=consents.allows)
    linked = [d for d in datasets.values() if d.linked]
    for d in datasets.values():
        agents.clean(CleanStage.for_dataset(d, codec, clean_schema_id=schema_id(topics.clean(d.name)),
                                            issue_schema_id=schema_id(topics.quarantine(d.name)), tally=tallies[d.name]))
        if d.role is Role.REGISTRY:
            agents.registry(RegistryStage(codec, d, linked), table)
        elif d.linked:
            agents.match(MatchStage(codec, d, result_schema_id=schema_id(topics.match(d.name)),
                                    issue_schema_id=schema_id(topics.quarantine(d.name)),
                                    lookup=_lookup(linker, table), linker=linker, tally=tallies[d.name]), replica)
            if d.shareable:
                agents.share(d.name, topics.match(d.name), share.process,
                             before=partial(_before_sharing, book, recent, consents, d.name))
        elif d.shareable:
            agents.share(d.name, topics.clean(d.name), partial(share.process_clean, d.name),
                         before=partial(_before_sharing, book, recent, None, d.name))
    agents.connector_issues(codec, tallies, datasets)
    if linker is not None:
        schema_id(topics.REVIEW_DECISIONS)  # known before the first decision arrives
    loops = _background(bootstrap, book, replica, table, consents)

    @app.task
    async def read_back_deliveries() -> None:  # once, at start; it never fails (a failure means more duplicates)
        await recent.prime(bootstrap, codec)

    registry_dataset = next((d for d in datasets.values() if d.role is Role.REGISTRY), None)
    if registry_dataset is not None:
        verifications = Verifications(Verifier(registry_dataset, linked), codec, subscriptions=book.verifying,
                                      lookup=_lookup(linker, table), reply_schema_id=schema_id(topics.VERIFY_REPLIES))
        group = {"session_timeout_ms": settings.session_timeout_s * 1000,
                 "heartbeat_interval_ms": settings.heartbeat_interval_s * 1000,
                 "max_poll_interval_ms": settings.max_poll_interval_s * 1000}
        verification = VerificationLoop(verifications, bootstrap=bootstrap, group_id=f"{settings.app_id}-verify",
                                        counted=metrics.verifications,
                                        on_answered=on_answered or partial(_report_verification, audit),
                                        consumer_config=group)
        # From when the registry is readable: the replica, or Faust's table recovery when the table is the lookup
        # (its manager's type does not declare it).
        ready = replica.wait_ready if replica is not None else app.tables.recovery.completed.wait  # type: ignore[attr-defined]
        loops["verify-identities"] = lambda stopped: verification.run(stopped, ready)
    gauges = WorkerGauges(metrics, book, registry_records=table.__len__, replica=replica, waiting=agents.waiting,
                          loops=_supervise(app, loops))
    _observe(app, gauges, QualitySnapshots(tallies, worker=worker), outbox,
             codec, quality_schema_id=schema_id(topics.QUALITY))
    _watch_progress(app, agents.waiting, stuck_s=settings.worker_stuck_s)
    if settings.worker_stuck_s:
        watch_event_loop(lambda: gauges.refreshed_at, stuck_s=settings.worker_stuck_s, on_stuck=_event_loop_stuck)
    return StreamApp(faust=app, metrics=prometheus, health=gauges.health)


def _report_verification(audit: Ledger, subscription: Subscription, channel: str, requests: list[dict[str, Any]],
                         answers: list[dict[str, Any]]) -> list[tuple[str, bytes, bytes]]:
    """An answered verification batch, as the audit ledger is told of it (sent and acknowledged with the reply)."""
    key, fact = ledger.verification_fact(subscription, channel, requests, answers, at_ms=int(audit.clock() * 1000),
                                         actor=audit.actor)
    return [(topics.LEDGER, key, audit.encode(fact))]


def _faust_app(settings: Settings, bootstrap: str) -> faust.App:
    return faust.App(
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
        web_enabled=False,  # /metrics and /health are the platform's ops server (StreamApp)
        datadir=str(settings.home / "worker-data"),
        table_cleanup_interval=60.0,
    )


def _schema_id(registry: RegistryClient, codec: Codec, topic: str) -> int:
    """The latest schema of a topic's values, known to the codec from now on."""
    schema_id, _, text = registry.latest(topics.subject(topic))
    codec.add(schema_id, text)
    return schema_id


def _lookup(linker: Linker | None, table: Any) -> Lookup:
    # The replica, not the table, when there is one: on the embedded broker Faust's own table recovery
    # stops short after a restart (see streams.follow); the replica does not. GSP_LINKAGE_MODEL=off reads the table.
    return linker.entry if linker is not None else table.get


def _changelog_decoder(app: faust.App, table: Any) -> DecodeChange:
    """The registry changelog in the table's own serialization (Faust's, JSON for str keys and dict values)."""
    def decode(key: bytes, value: bytes | None) -> tuple[str, Mapping[str, Any] | None]:
        try:
            personal_id = app.serializers.loads_key(table.key_type, key, serializer=table.key_serializer)
            entry = None if value is None else app.serializers.loads_value(
                table.value_type, value, serializer=table.value_serializer)
        except faust.exceptions.DecodeError as exc:
            raise ValueError(str(exc)) from exc
        return str(personal_id), entry
    return decode


async def _before_sharing(book: SubscriptionBook, recent: RecentDeliveries, consents: ConsentBook | None,
                          dataset: str) -> None:
    """Before a micro-batch is shared: the subscriptions on record when the worker started are known (else its
    first records would be shared with nobody, and committed), the recent deliveries are read back (else a
    replay is shared twice), and every consent withdrawal acknowledged so far is applied (only when one
    matters). Until the worker can tell (the broker unreachable), nothing of the dataset is shared: it waits,
    and says so."""
    await book.caught_up.wait()
    await recent.primed.wait()
    while consents is not None and book.needs_consent(dataset):
        try:
            await consents.barrier()
            return
        except (ConsentUnavailable, KafkaError) as exc:
            log.warning("sharing held back: the consents on record cannot be confirmed",
                        extra={"dataset": dataset, "error": str(exc)[:200]})


Loop = Callable[[asyncio.Event], Awaitable[Any]]


def _background(bootstrap: str, book: SubscriptionBook, replica: Replica | None, table: Any,
                consents: ConsentBook) -> dict[str, Loop]:
    """Every worker reads the subscriptions and consents, and with a matcher the registry and decisions, whole,
    until it stops."""
    loops: dict[str, Loop] = {
        "follow-subscriptions": lambda stopped: book.follow(bootstrap, stopped),
        "follow-consents": lambda stopped: consents.follow(bootstrap, stopped),
    }
    if replica is not None:
        loops["follow-registry"] = lambda stopped: replica.follow(
            bootstrap, table.changelog_topic.get_topic_name(), stopped)
    return loops


def _supervise(app: faust.App, loops: Mapping[str, Loop]) -> dict[str, LoopState]:
    """Each loop as a task of the app, supervised (`streams.supervise`: restarted with back-off when it fails,
    its state in /health and the gsp_background_* metrics), told to stop before the app shuts down."""
    stopped = asyncio.Event()
    states = {name: LoopState() for name in loops}
    for name, loop in loops.items():
        app.task(_supervised_task(name, loop, stopped, states[name]))

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def stop(app_: Any, **_: Any) -> None:
        stopped.set()
    return states


def _supervised_task(name: str, loop: Loop, stopped: asyncio.Event, state: LoopState) -> Callable[[], Awaitable[None]]:
    async def task() -> None:  # no parameter: Faust would pass the app
        await supervised(name, lambda: loop(stopped), stopped, state)
    task.__name__ = name.replace("-", "_")  # Faust names the task after its function
    return task


def _observe(app: faust.App, gauges: WorkerGauges, snapshots: QualitySnapshots, outbox: Outbox, codec: Codec, *,
             quality_schema_id: int) -> None:
    @app.timer(interval=1.0)
    async def refresh_gauges() -> None:
        gauges.refresh(app.consumer.assignment(), _lag(app.consumer, app.tables.changelog_topics))

    @app.timer(interval=2.0)
    async def publish_quality() -> None:
        for dataset, key, snapshot in snapshots.changed():
            await outbox.send("quality", dataset, [(topics.QUALITY, key, codec.encode(quality_schema_id, snapshot))])


def _watch_progress(app: faust.App, waiting: Mapping[str, str], *, stuck_s: float) -> None:
    """A worker whose input stopped moving while it declares no wait ends itself, to be restarted (see
    `streams.consumer.ProgressWatch`)."""
    watch: list[ProgressWatch] = []

    @app.timer(interval=5.0)
    async def watch_progress() -> None:
        if not watch:  # the consumer exists once the app runs
            watch.append(ProgressWatch(app.consumer, waiting, stuck_s=stuck_s,
                                       recovery=app.tables.recovery))  # type: ignore[attr-defined]
        reason = watch[0].check()
        if reason is not None:
            log.critical("stream worker stopped: %s; it exits to be restarted from its committed offsets. Its "
                         "tasks:\n%s", reason, task_stacks())
            exit_now()


def _event_loop_stuck(seconds: float) -> None:
    """From the watching thread: say where every thread is (the event loop's is the one blocked), then exit."""
    import faulthandler
    import sys

    log.critical("stream worker stopped: its event loop has not turned for %.0f s; it exits to be restarted from "
                 "its committed offsets. Every thread's stack follows on stderr", seconds)
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    exit_now()


def _lag(consumer: Any, changelogs: Collection[str]) -> dict[str, int]:
    """Records not yet committed, per input topic this worker holds. A table's changelog is assigned too but
    read by seeking, never committed: counted, its whole length (the registry's size) would look like lag."""
    lag: dict[str, int] = {}
    for tp in consumer.assignment():
        if tp.topic in changelogs:
            continue
        highwater = consumer.highwater(tp)
        # Private: Faust keeps the offsets it committed, but offers no public accessor for them.
        committed = consumer._committed_offset.get(tp) or 0
        if highwater is not None:
            lag[tp.topic] = lag.get(tp.topic, 0) + max(0, highwater - committed)
    return lag
