"""`gsp connect worker`: a connector worker of the distributed mode, sharing every connector's tasks with its group.

There is no coordinator of our own. Every worker is a member of Kafka's consumer group
``gsp-connect-workers`` on ``gsp.connect.slots`` (64 partitions, never written to) with the round-robin
assignor, so the broker shares the 64 slots out among the live workers. Task number k of the cluster's
sorted task list (connectors by name, their tasks by id, as each plugin splits its work) runs on the holder
of slot k % 64. A connector told to stop, or one whose config cannot be split into tasks, takes one place in
that list too, so one worker reports its state.

The worker reconciles on every assignment and every change read from the cluster's topics
(:class:`connectors.cluster.ClusterStore`): it stops the tasks no longer its own and starts the new ones,
each on its own thread calling ``task.step()``. Group membership is eager: the revoke callback stops every
task before the group is re-formed, so no other worker can start a task while this one still runs it. A
SIGKILLed worker revokes nothing: the broker drops it after the session timeout and its tasks start on the
others from the positions they stored after the broker's acknowledgements (a replay, never a gap).

Statuses follow Kafka Connect's: a task writes RUNNING when it started, PAUSED once it stopped stepping,
FAILED with its trace when ``start_task`` or ``step`` raised, STOPPED when its connector was stopped; the
holder of a connector's task 0 writes the connector's own state. Restart requests are applied by the
owners (a FAILED task stays failed until one arrives). Beside Kafka Connect's fields a task's status record
carries ``"gsp": {"records", "counted", "per_s", "interval_s", "at_ms"}``: what it published (a source) or
wrote (a sink) since it started on this worker and the rate over the last ``stats_s``, rewritten only when
they change, for the console's operations page (gsp.http.ops_api).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from prometheus_client import CollectorRegistry, Counter, Gauge

from connectors import plugins
from connectors.cluster import ClusterStore
from connectors.metrics import STATES, ConnectorMetrics
from gsp.errors import UserError
from gsp.governance.catalog import platform_topics
from gsp.governance.topology import ensure_topics
from gsp.runtime.embedded import wait_for_kafka
from gsp.runtime.process import Progress, endpoints, start_ops, stop_on_sigterm
from gsp.runtime.supervised import Supervisor
from schemas import topics
from schemas.codec import Codec
from schemas.registry import RegistryClient
from schemas.settings import Settings, kafka_consumer_config, kafka_producer_config

RESTART_EXIT = 75  # EX_TEMPFAIL: stopped on purpose, to be restarted by its supervisor

__all__ = ["GROUP", "Placement", "Worker", "WorkerMetrics", "placements", "run_worker"]

log = logging.getLogger("gsp.connect")

GROUP = "gsp-connect-workers"
_TASK_STATES = ("RUNNING", "PAUSED", "FAILED")


@dataclass(frozen=True)
class WorkerMetrics:
    tasks: Gauge
    slots: Gauge
    rebalances: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> WorkerMetrics:
        metrics = cls(
            tasks=Gauge("gsp_connect_worker_tasks", "Tasks this worker runs, by state (RUNNING, PAUSED, FAILED)",
                        ["state"], registry=registry),
            slots=Gauge("gsp_connect_worker_slots", "Slots of gsp.connect.slots the group assigned this worker",
                        registry=registry),
            rebalances=Counter("gsp_connect_worker_rebalances_total", "Times the group took this worker's slots "
                               "back to share them out again (Kafka Connect's rebalance-completed-total)",
                               registry=registry),
        )
        for state in _TASK_STATES:
            metrics.tasks.labels(state)
        return metrics


@dataclass(frozen=True)
class Placement:
    """One place of the cluster's task list: a task (``task`` set) or a connector with no tasks to run
    (stopped, or its config cannot be split: ``error``)."""
    connector: str
    task: int | None
    config: dict[str, Any] | None = None
    error: str | None = None
    tasks: int = 0  # how many tasks the connector has

    @property
    def owns_connector(self) -> bool:
        return self.task in (None, 0)


def placements(store: ClusterStore) -> list[Placement]:
    """The sorted global task list: place k belongs to the holder of slot k % 64."""
    out: list[Placement] = []
    for name in store.connectors():
        config = store.config(name)
        if config is None:
            continue
        if store.target_state(name) == "STOPPED":
            out.append(Placement(name, None))
            continue
        try:
            task_configs = _task_configs(config)
        except Exception:
            out.append(Placement(name, None, error=traceback.format_exc()))
            continue
        if not task_configs:
            out.append(Placement(name, None))
        out.extend(Placement(name, task, config=task_config, tasks=len(task_configs))
                   for task, task_config in enumerate(task_configs))
    return out


def _task_configs(config: dict[str, Any]) -> list[dict[str, Any]]:
    key = json.dumps(config, sort_keys=True, default=str)
    found = _SPLITS.get(key)
    if found is None:
        plugin = plugins.plugin_for(config)
        found = list(plugin.task_configs(config, int(plugin.config_def.parse(config)["tasks.max"])))
        if len(_SPLITS) > 1000:
            _SPLITS.clear()
        _SPLITS[key] = found
    return found


_SPLITS: dict[str, list[dict[str, Any]]] = {}  # how a config splits, asked once per config


class _TaskThread:
    """One task on its own thread: start it, step it while not paused, report its state, close it."""

    def __init__(self, placement: Placement, *, worker: Worker, paused: bool) -> None:
        assert placement.task is not None and placement.config is not None
        self.placement = placement
        self.connector, self.task_id = placement.connector, placement.task
        self.state = "UNASSIGNED"
        self.paused = paused
        self.task: Any = None
        self._worker = worker
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._final: str | None = None
        self.stats: dict[str, Any] | None = None  # its throughput, in its status record beside Kafka Connect's fields
        self._measured = (0, time.monotonic())  # (records handled, when) at the last measurement
        self._thread = threading.Thread(target=self._run, name=f"task-{self.connector}-{self.task_id}", daemon=True)
        self._thread.start()

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        self._wake.set()

    def stop(self, *, final: str | None, timeout_s: float = 60.0) -> None:
        """Finish the current step, close the task, and report ``final`` (None: nothing, it moves elsewhere)."""
        self.request_stop(final=final)
        self.join(timeout_s=timeout_s)

    def request_stop(self, *, final: str | None) -> None:
        self._final = final
        self._stop.set()
        self._wake.set()

    def join(self, *, timeout_s: float = 60.0) -> None:
        self._thread.join(timeout=timeout_s)
        if self._thread.is_alive():
            log.warning("task did not stop within %ss", timeout_s,
                        extra={"stage": "connect", "connector": self.connector, "task": self.task_id})

    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {"connector": self.connector, "task": self.task_id, "state": self.state}
        task = self.task
        if task is not None:
            try:
                out["health"] = task.health()
            except Exception as exc:  # health must answer even when the task is broken
                out["health"] = {"status": "unknown", "error": str(exc)}
        return out

    def _report(self, state: str, trace: str | None = None) -> None:
        self.state = state
        self._worker.report(self.connector, self.task_id, state, trace, gsp=self.stats)

    def _measure(self) -> None:
        """Every ``stats_s``: the records the task handled since it started here (a source's published, a sink's
        written) and their rate over the interval, written to its status record when either changed (an idle
        task writes nothing). A source's rows still waiting in its database are not known here."""
        count, since = self._measured
        now = time.monotonic()
        if now - since < self._worker.stats_s or self.task is None:
            return
        try:
            health = self.task.health()
        except Exception:  # health must not fail the task; the figures wait for the next interval
            return
        kind = "written" if "written" in health else "published"
        handled = health.get(kind)
        if not isinstance(handled, int):
            return
        self._measured = (handled, now)
        stats = {"records": handled, "counted": kind, "per_s": round(max(0, handled - count) / (now - since), 2),
                 "interval_s": round(now - since, 1), "at_ms": int(time.time() * 1000)}
        previous, self.stats = self.stats, stats
        if previous is None or (previous["records"], previous["per_s"]) != (handled, stats["per_s"]):
            self._report(self.state)

    def _run(self) -> None:
        worker, producer = self._worker, None
        try:
            producer = KafkaProducer(**kafka_producer_config(worker.settings, worker.bootstrap))
            plugin = plugins.plugin_for(self.placement.config or {})
            worker.metrics_bundle.declare(self.connector, kind=plugin.kind, task=self.task_id)
            worker.connector_metric(self.connector)  # declare set the connector UNASSIGNED: as this worker sees it
            context = plugins.TaskContext(settings=worker.settings, bootstrap=worker.bootstrap,
                                          registry=worker.registry, codec=worker.codec, producer=producer,
                                          metrics=worker.metrics_bundle)
            if not self._previous_owner_done():
                return
            self.task = plugin.start_task(self.connector, self.task_id, self.placement.config or {}, context)
            self._measured = (0, time.monotonic())
            self._loop()
        except Exception:
            log.exception("task failed", extra={"stage": "connect", "connector": self.connector, "task": self.task_id})
            if not self._stop.is_set():
                self._report("FAILED", traceback.format_exc())
        finally:
            if self.task is not None:
                try:
                    self.task.close()
                except Exception:
                    log.exception("closing a task failed", extra={"stage": "connect", "connector": self.connector})
            if producer is not None:
                producer.close(timeout=10)
            if self.state != "FAILED":
                worker.metrics_bundle.set_task_state(self.connector, self.task_id, "UNASSIGNED")
                if self._final is not None and self.task is not None:  # a task never started here reports nothing
                    self._report(self._final)

    def _previous_owner_done(self) -> bool:
        """Wait until the task's last status is no other live worker's: the worker it moves from reports it
        UNASSIGNED once it stopped it. The embedded broker completes a rebalance without waiting for a member
        still stopping its tasks (Kafka would wait up to the rebalance timeout), so without this two workers
        could run one task for a moment. A worker killed reports nothing: after ``handover_s`` it is taken to
        be gone. False if this task was told to stop meanwhile."""
        store, worker = self._worker.store, self._worker
        deadline = time.monotonic() + worker.handover_s
        while not self._stop.is_set():
            version = store.version()
            last = next((t for t in store.status(self.connector)["tasks"] if t["id"] == self.task_id), None)
            if last is None or last["state"] not in ("RUNNING", "PAUSED") or last["worker_id"] == worker.worker_id:
                return True
            if time.monotonic() > deadline:
                log.warning("the task's previous worker did not hand it over; taking it as gone",
                            extra={"stage": "connect", "connector": self.connector, "task": self.task_id,
                                   "previous_worker": last["worker_id"]})
                return True
            store.wait_changed(version, timeout_s=0.5)
        return False

    def _loop(self) -> None:
        idle_s = self._worker.idle_s
        while not self._stop.is_set():
            self._wake.clear()
            if self.paused:
                if self.state != "PAUSED":
                    self._report("PAUSED")
                self._measure()
                self._wake.wait(1.0)
                continue
            if self.state != "RUNNING":
                self._report("RUNNING")
            handled, wait_s = self.task.step()
            self._measure()
            if wait_s or not handled:
                self._wake.wait(wait_s or idle_s)


class _Membership(ConsumerRebalanceListener):
    def __init__(self, worker: Worker) -> None:
        self._worker = worker

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self._worker.revoked()

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self._worker.assigned({tp.partition for tp in assigned})


class Worker:
    """The tasks of one worker, reconciled with the group's assignment and the cluster's state."""

    def __init__(self, settings: Settings, *, bootstrap: str, store: ClusterStore, registry: RegistryClient,
                 worker_id: str, metrics: WorkerMetrics, connector_metrics: ConnectorMetrics,
                 slots: int = topics.CONNECT_SLOT_COUNT, idle_s: float = 0.5, stats_s: float = 5.0) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.store = store
        self.registry = registry
        self.codec = Codec(resolve=registry.schema_by_id)
        self.worker_id = worker_id
        self.metrics = metrics
        self.metrics_bundle = connector_metrics
        self.idle_s = idle_s
        self.stats_s = stats_s  # how often a task's throughput is measured and, when it changed, reported
        self.handover_s = 2.0 * settings.session_timeout_s
        self._slot_count = slots
        self._slots: set[int] = set()
        self._tasks: dict[tuple[str, int], _TaskThread] = {}
        self._restarts_seen: dict[str, int] = {}
        self._connector_states: dict[str, str] = {}  # the connectors this worker reports, and their state
        self._lock = threading.RLock()  # the group loop and /health
        self.reconciled = 0

    # -- group membership --------------------------------------------------------------------------------------

    def run_membership(self, stop: threading.Event) -> None:
        """The supervised loop: be a member of the group, heartbeat by polling, reconcile on every change."""
        config = kafka_consumer_config(self.settings, self.bootstrap)
        consumer = KafkaConsumer(**config, group_id=GROUP, client_id=self.worker_id, enable_auto_commit=False,
                                 partition_assignment_strategy=[RoundRobinPartitionAssignor])
        consumer.subscribe([topics.CONNECT_SLOTS], listener=_Membership(self))
        seen = -1
        try:
            while not stop.is_set():
                consumer.poll(timeout_ms=100)  # heartbeats; the listener runs inside, on this thread
                version = self.store.version()
                if version != seen:
                    seen = version
                    self.reconcile()
        finally:
            self.revoked()
            consumer.close()

    def revoked(self) -> None:
        """Every slot goes back to the group: stop every task before any other worker may start it."""
        with self._lock:
            if self._slots:
                self.metrics.rebalances.inc()
            self._slots = set()
            self.metrics.slots.set(0)
            stopping = list(self._tasks.values())
            self._tasks.clear()
            for running in stopping:  # all at once: each finishes its current batch
                running.request_stop(final="UNASSIGNED")
            for running in stopping:
                running.join()
            self._count()

    def assigned(self, slots: set[int]) -> None:
        with self._lock:
            self._slots = slots
            self.metrics.slots.set(len(slots))
        log.info("slots assigned", extra={"stage": "connect", "worker": self.worker_id, "slots": len(slots)})
        self.reconcile()

    # -- reconciliation ----------------------------------------------------------------------------------------

    def reconcile(self) -> None:
        """Start the tasks this worker's slots say are its own, stop the others, apply pauses and restarts."""
        with self._lock:
            mine = [p for k, p in enumerate(placements(self.store)) if k % self._slot_count in self._slots]
            wanted = {(p.connector, p.task): p for p in mine if p.task is not None}
            for key, running in list(self._tasks.items()):
                placement = wanted.get(key)
                if placement is None or placement.config != running.placement.config:
                    self._tasks.pop(key).stop(final=self._final_state(running.connector))
            self._apply_restarts()
            for key, placement in wanted.items():
                paused = self.store.target_state(placement.connector) == "PAUSED"
                current = self._tasks.get(key)
                if current is None:
                    self._tasks[key] = _TaskThread(placement, worker=self, paused=paused)
                elif current.paused != paused:
                    current.set_paused(paused)
            owned = {p.connector for p in mine if p.owns_connector}
            for name in set(self._connector_states) - owned:
                del self._connector_states[name]
                self.connector_metric(name)
            for placement in mine:
                if placement.owns_connector:
                    self._report_connector(placement)
            self._count()
            self.reconciled += 1

    def _final_state(self, connector: str) -> str:
        """What a task stopped here reports: STOPPED if its connector was, else UNASSIGNED (it moves; its new
        worker waits for that). Nothing is reported for a deleted connector (see :meth:`report`)."""
        return "STOPPED" if self.store.target_state(connector) == "STOPPED" else "UNASSIGNED"

    def _apply_restarts(self) -> None:
        """Requests read since the last reconciliation, for the tasks run here. Those already there when this
        worker first saw the connector were for the tasks as they ran then, and are not applied again."""
        for name in self.store.connectors():
            requests = self.store.restarts(name)
            seen = self._restarts_seen.get(name)
            self._restarts_seen[name] = max((r["sequence"] for r in requests), default=-1)
            for request in requests:
                if seen is None or request["sequence"] <= seen:
                    continue
                for key, running in list(self._tasks.items()):
                    if key[0] != name:
                        continue
                    if request["task"] is not None:
                        chosen = request["task"] == key[1]
                    else:
                        chosen = request["include_tasks"] and (not request["only_failed"] or running.state == "FAILED")
                    if chosen:
                        log.info("restarting task", extra={"stage": "connect", "connector": name, "task": key[1]})
                        self._tasks.pop(key).stop(final=None)

    def _report_connector(self, placement: Placement) -> None:
        name = placement.connector
        target = self.store.target_state(name)
        trace = placement.error
        state = "FAILED" if trace else {"STOPPED": "STOPPED", "PAUSED": "PAUSED"}.get(target, "RUNNING")
        wanted = {"state": state, "worker_id": self.worker_id, **({"trace": trace} if trace else {})}
        current = self.store.status(name)
        if current["connector"] != wanted or len(current["tasks"]) != placement.tasks:
            self.store.put_status(name, None, state, worker_id=self.worker_id, trace=trace, tasks=placement.tasks)
        self._connector_states[name] = state
        self.connector_metric(name)

    def connector_metric(self, name: str) -> None:
        """A connector's state series on the worker that reports it (holding its task 0), on no other."""
        state = self._connector_states.get(name)
        if state is not None:
            self.metrics_bundle.set_connector_state(name, state)
            return
        for each in STATES:
            try:
                self.metrics_bundle.connector_status.remove(name, each)
            except KeyError:
                pass

    def report(self, connector: str, task: int, state: str, trace: str | None = None, *,
               gsp: dict[str, Any] | None = None) -> None:
        """A task's state (and its throughput, ``gsp``), to the cluster's status topic and this worker's metrics."""
        self.metrics_bundle.set_task_state(connector, task, state)
        try:
            if self.store.config(connector) is not None:  # a deleted connector's statuses stay deleted
                self.store.put_status(connector, task, state, worker_id=self.worker_id, trace=trace, gsp=gsp)
        except Exception:
            log.exception("could not store a task's status", extra={"stage": "connect", "connector": connector})
        self._count()

    def _count(self) -> None:
        states = [t.state for t in list(self._tasks.values())]
        for state in _TASK_STATES:
            self.metrics.tasks.labels(state).set(states.count(state))

    # -- process -----------------------------------------------------------------------------------------------

    def stop_tasks(self) -> None:
        self.revoked()

    def health(self) -> dict[str, Any]:
        with self._lock:
            tasks = [t.health() for t in self._tasks.values()]
            slots = len(self._slots)
        return {"worker_id": self.worker_id, "slots": slots, "tasks": tasks, "store": self.store.health()}

    def totals(self) -> dict[str, int]:
        """For progress lines: tasks run here and what they moved."""
        with self._lock:
            tasks = list(self._tasks.values())
        out = {"slots": len(self._slots), "tasks": len(tasks),
               "failed": sum(t.state == "FAILED" for t in tasks)}
        for key in ("published", "quarantined", "written"):
            total = 0
            for running in tasks:
                try:
                    value = running.task.health().get(key, 0) if running.task is not None else 0
                except Exception:
                    value = 0
                total += value if isinstance(value, int) else 0
            out[key] = total
        return out


def run_worker(settings: Settings, *, port: int = 0, worker_id: str | None = None) -> int:
    """Join the group of connector workers and run this worker's share of the tasks until SIGTERM."""
    bootstrap, registry_url = endpoints(settings, what="connector worker")
    wait_for_kafka(bootstrap, timeout_s=10)
    wanted = platform_topics(settings.partitions)
    ensure_topics(bootstrap, {t: wanted[t] for t in (topics.CONNECT_OFFSETS, topics.CONNECT_CONFIGS,
                                                     topics.CONNECT_STATUS, topics.CONNECT_SLOTS)})
    registry = RegistryClient(registry_url, token=None if settings.schema_registry_url else settings.credential(),
                              cafile=settings.tls_ca)
    store = ClusterStore(bootstrap, producer_config=kafka_producer_config(settings, bootstrap),
                         consumer_config=kafka_consumer_config(settings, bootstrap))
    try:
        store.start()
    except (TimeoutError, OSError) as exc:
        raise UserError(f"cannot read the connector cluster's topics: {exc}") from None
    metrics_registry = CollectorRegistry()
    supervisor = Supervisor(metrics_registry)
    holder: list[Worker] = []

    def health() -> dict[str, Any]:
        loops = supervisor.health()
        state = holder[0].health() if holder else {}
        up = loops["up"] and state.get("store", {}).get("up", False)
        return {"status": "ok" if up else "degraded", **state, "loops": loops["loops"]}

    ops = start_ops(settings, metrics_registry, health, port=port, title="GSP connector worker")
    worker = Worker(settings, bootstrap=bootstrap, store=store, registry=registry,
                    worker_id=worker_id or f"{socket.gethostname()}:{ops.port}",
                    metrics=WorkerMetrics.create(metrics_registry),
                    connector_metrics=ConnectorMetrics.create(metrics_registry))
    holder.append(worker)
    stop = stop_on_sigterm()
    print(f"gsp: connector worker {worker.worker_id} in group {GROUP}; metrics and health on "
          f"http://127.0.0.1:{ops.port}", file=sys.stderr, flush=True)
    supervisor.start("connect-membership", worker.run_membership)
    progress = Progress(f"connector worker {worker.worker_id}")
    try:
        while not stop.wait(1.0):
            if store.reset_seen:
                # The cluster's state on the broker is not the one this worker read: the control plane publishes
                # it again from its database; a new start reads that, rather than running tasks from memory.
                print(f"gsp: connector worker {worker.worker_id}: the broker lost the connector cluster's topics "
                      f"({store.reset_seen}); exiting to be restarted", file=sys.stderr, flush=True)
                # At once, as a crash would: a graceful leave from a group the new broker only half knows left
                # Tansu's group without members it would assign (a new worker got no slot for a minute).
                os._exit(RESTART_EXIT)
            totals = worker.totals()
            progress.show(totals, idle=False)
    except KeyboardInterrupt:
        pass
    finally:
        supervisor.stop(timeout_s=60)
        worker.stop_tasks()
        ops.stop()
        store.close()
    return 0
