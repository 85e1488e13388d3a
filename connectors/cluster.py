"""The connector cluster's shared state, in compacted topics as Kafka Connect's distributed mode keeps it.

``gsp.connect.configs`` holds, as JSON keyed by record kind and connector name:

    connector-<name>          {"properties": {...}}           a connector's config (a tombstone deletes it)
    target-state-<name>       {"state": "PAUSED"}             STARTED (the default), PAUSED or STOPPED
    restart-connector-<name>  {"include_tasks", "only_failed", "task"}   a restart request; its sequence
                                                              number is the record's offset, so it increases
                                                              across every writer without any coordination

``gsp.connect.status`` holds what the workers report:

    status-connector-<name>   {"state", "worker_id", "trace"?, "tasks"?}   (tasks: how many the connector has)
    status-task-<name>-<id>   {"state", "worker_id", "trace"?}

A :class:`ClusterStore` tails both topics from their beginning into memory on a background thread; every
write waits for the broker's acknowledgement and then until that thread has read the record back, so a
caller reads its own writes (the REST API answers with what it just wrote). The positions of source tasks
stay in ``gsp.connect.offsets`` (:mod:`connectors.offsets`).

A compacted topic keeps only the latest record per key, so ``restarts`` lists the requests this store read,
which after compaction is at least the latest per connector.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from connectors.backoff import first_line
from schemas import topics

__all__ = ["STATES", "TARGET_STATES", "ClusterStore"]

log = logging.getLogger("gsp.connect")

TARGET_STATES = ("STARTED", "PAUSED", "STOPPED")
STATES = ("RUNNING", "PAUSED", "STOPPED", "FAILED", "UNASSIGNED")
_ACK_TIMEOUT_S = 30.0
_KEPT_RESTARTS = 100  # per connector: the workers only act on the newest ones


class ClusterStore:
    def __init__(self, bootstrap: str, *, producer_config: dict[str, Any], consumer_config: dict[str, Any],
                 configs_topic: str = topics.CONNECT_CONFIGS, status_topic: str = topics.CONNECT_STATUS) -> None:
        self._bootstrap = bootstrap
        # Never auto-created: a new, empty broker would make them with its default partitions before anyone
        # made them compacted with one, and a record keyed to another partition would never be read back.
        self._producer_config = {**producer_config, "bootstrap_servers": bootstrap, "allow_auto_create_topics": False}
        # No group: every store reads everything. The group settings of a shared consumer config do not apply.
        self._consumer_config = {**{k: v for k, v in consumer_config.items()
                                    if k not in {"group_id", "session_timeout_ms", "heartbeat_interval_ms",
                                                 "max_poll_interval_ms", "enable_auto_commit"}},
                                 "allow_auto_create_topics": False}
        self._configs_topic = configs_topic
        self._status_topic = status_topic
        self._producer: KafkaProducer | None = None
        self._consumer: KafkaConsumer | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._read: dict[TopicPartition, int] = {}  # next offset to read, per partition
        self._version = 0
        self._error: str | None = None
        self._suspended = False  # asked of the tailing thread: no consumer, no reading, until a reload
        self._reload = False  # asked of the tailing thread: forget everything, read again from the beginning
        self._reload_end: dict[TopicPartition, int] = {}  # the ends of the topics when it did
        # Set when a topic went back under the reader (a new, empty broker): what a worker must not run on.
        self.reset_seen: str | None = None
        self._topic_ids: dict[str, Any] = {}  # the topics' ids when read from their beginning
        self._configs: dict[str, dict[str, Any]] = {}
        self._targets: dict[str, str] = {}
        self._restarts: dict[str, list[dict[str, Any]]] = {}
        self._connector_status: dict[str, dict[str, Any]] = {}
        self._task_status: dict[str, dict[int, dict[str, Any]]] = {}

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self, *, timeout_s: float = 30.0) -> None:
        """Create the topics if missing, read both to their end, and keep tailing them on a thread."""
        from gsp.governance.topology import ensure_topics

        compacted = {"cleanup.policy": "compact"}
        ensure_topics(self._bootstrap, {self._configs_topic: (1, compacted), self._status_topic: (1, compacted)})
        self._producer = KafkaProducer(**self._producer_config)
        self._consumer = self._new_consumer()
        tps = self._partitions(timeout_s)
        self._consumer.assign(tps)
        self._consumer.seek_to_beginning(*tps)
        end = self._consumer.end_offsets(tps)
        with self._changed:
            self._read = dict.fromkeys(tps, 0)
            self._topic_ids = self._current_topic_ids()
        self._thread = threading.Thread(target=self._tail, name="connect-cluster-store", daemon=True)
        self._thread.start()
        self._wait_read(end, timeout_s)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        if self._producer is not None:
            self._producer.close()
            self._producer = None

    def suspend(self, *, timeout_s: float = 5.0) -> None:
        """Stop reading until :meth:`reload`: the broker is gone, and fetching from a new, empty one would make
        the topics (Tansu creates a topic fetched from) with its default partitions before anyone made them
        compacted with one: a key's records could then land on two partitions, read in any order."""
        with self._changed:
            self._suspended = True
            if not self._changed.wait_for(lambda: self._consumer is None, timeout=timeout_s):
                log.warning("the connector cluster's reader did not stop within %ss", timeout_s,
                            extra={"stage": "connect"})

    def reload(self, *, timeout_s: float = 30.0) -> None:
        """Forget what was read and read both topics again from their beginning, reading again if suspended:
        a new, empty embedded broker (whose topics exist again) keeps the new records below the positions
        read on the old one."""
        with self._changed:
            self._reload, self._suspended = True, False
            if not self._changed.wait_for(lambda: not self._reload, timeout=timeout_s):
                raise TimeoutError(f"the connector cluster's topics were not reread within {timeout_s}s")
            end = dict(self._reload_end)
        self._wait_read(end, timeout_s)

    def health(self) -> dict[str, Any]:
        """For /health: whether the tailing thread reads, and how far."""
        with self._changed:
            return {"up": self._error is None and self._thread is not None and self._thread.is_alive(),
                    "version": self._version, "error": self._error}

    # -- writes ------------------------------------------------------------------------------------------------

    def put_config(self, name: str, config: dict[str, Any]) -> None:
        self._write(self._configs_topic, [(f"connector-{name}", {"properties": dict(config)})])

    def delete(self, name: str) -> None:
        """Tombstones for the connector's config, target state, restart requests and statuses."""
        with self._changed:
            tasks = sorted(self._task_status.get(name, {}))
        self._write(self._configs_topic, [(f"connector-{name}", None), (f"target-state-{name}", None),
                                          (f"restart-connector-{name}", None)])
        self._write(self._status_topic, [(f"status-connector-{name}", None),
                                         *((f"status-task-{name}-{task}", None) for task in tasks)])

    def set_target_state(self, name: str, state: str) -> None:
        if state not in TARGET_STATES:
            raise ValueError(f"target state must be one of {', '.join(TARGET_STATES)}, not {state!r}")
        self._write(self._configs_topic, [(f"target-state-{name}", {"state": state})])

    def request_restart(self, name: str, *, include_tasks: bool, only_failed: bool, task: int | None = None) -> int:
        """Ask the owners to restart the connector (and its tasks with ``include_tasks``, only the FAILED ones
        with ``only_failed``), or only task ``task``; the request's sequence number."""
        request = {"include_tasks": include_tasks, "only_failed": only_failed, "task": task}
        return self._write(self._configs_topic, [(f"restart-connector-{name}", request)])

    def put_status(self, name: str, task: int | None, state: str, *, worker_id: str, trace: str | None = None,
                   tasks: int | None = None, gsp: dict[str, Any] | None = None) -> None:
        """A task's state (``task`` None: the connector's, with how many ``tasks`` it has when known); ``gsp``:
        the platform's own figures beside Kafka Connect's fields (a task's throughput, see connect_worker)."""
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}, not {state!r}")
        value: dict[str, Any] = {"state": state, "worker_id": worker_id}
        if trace is not None:
            value["trace"] = trace
        if gsp is not None:
            value["gsp"] = gsp
        if tasks is not None:
            value["tasks"] = tasks
        key = f"status-connector-{name}" if task is None else f"status-task-{name}-{task}"
        self._write(self._status_topic, [(key, value)])

    # -- reads -------------------------------------------------------------------------------------------------

    def connectors(self) -> list[str]:
        with self._changed:
            return sorted(self._configs)

    def config(self, name: str) -> dict[str, Any] | None:
        with self._changed:
            config = self._configs.get(name)
            return None if config is None else dict(config)

    def target_state(self, name: str) -> str:
        with self._changed:
            return self._targets.get(name, "STARTED")

    def restarts(self, name: str) -> list[dict[str, Any]]:
        """The restart requests read, oldest first: {"sequence", "include_tasks", "only_failed", "task"}."""
        with self._changed:
            return [dict(r) for r in self._restarts.get(name, [])]

    def status(self, name: str) -> dict[str, Any]:
        """Kafka Connect's status body. A connector or task no worker reported on yet is UNASSIGNED (a
        connector told to stop, STOPPED); ``type`` is its plugin's kind, "unknown" when it has none."""
        with self._changed:
            config = self._configs.get(name)
            target = self._targets.get(name, "STARTED")
            reported = self._connector_status.get(name)
            tasks = dict(self._task_status.get(name, {}))
        connector = {"state": "STOPPED" if target == "STOPPED" else "UNASSIGNED", "worker_id": ""}
        if reported is not None:
            connector = {k: v for k, v in reported.items() if k != "tasks"}
        count = reported.get("tasks") if reported is not None else None
        if count is None:
            count = max(tasks, default=-1) + 1
        return {"name": name, "connector": connector,
                "tasks": [{"id": task, **tasks.get(task, {"state": "UNASSIGNED", "worker_id": ""})}
                          for task in range(count)],
                "type": _kind(config)}

    def version(self) -> int:
        with self._changed:
            return self._version

    def wait_changed(self, version: int, timeout_s: float) -> int:
        """The version once it is past ``version``, or the current one after ``timeout_s``."""
        with self._changed:
            self._changed.wait_for(lambda: self._version > version, timeout=timeout_s)
            return self._version

    # -- internals ---------------------------------------------------------------------------------------------

    def _partitions(self, timeout_s: float) -> list[TopicPartition]:
        assert self._consumer is not None
        deadline = time.monotonic() + timeout_s
        while True:
            found = [self._consumer.partitions_for_topic(t) for t in (self._configs_topic, self._status_topic)]
            if all(found):
                return [TopicPartition(t, p) for t, ps in zip((self._configs_topic, self._status_topic), found, strict=True)
                        for p in sorted(ps or ())]
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self._configs_topic} and {self._status_topic} not found within {timeout_s}s")
            time.sleep(0.1)

    def _write(self, topic: str, records: list[tuple[str, dict[str, Any] | None]]) -> int:
        """Send, wait for the acknowledgements and for the tail to read them back; the last record's offset."""
        if self._producer is None:
            raise RuntimeError("ClusterStore.start() was not called")
        futures = [self._producer.send(topic, key=key.encode(), value=None if value is None else
                                       json.dumps(value, sort_keys=True).encode()) for key, value in records]
        self._producer.flush(timeout=_ACK_TIMEOUT_S)
        written = [f.get(timeout=_ACK_TIMEOUT_S) for f in futures]
        wanted: dict[TopicPartition, int] = {}
        for metadata in written:
            tp = TopicPartition(metadata.topic, metadata.partition)
            wanted[tp] = max(wanted.get(tp, 0), metadata.offset + 1)
        self._wait_read(wanted, _ACK_TIMEOUT_S)
        return int(written[-1].offset)

    def _wait_read(self, wanted: dict[TopicPartition, int], timeout_s: float) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: all(self._read.get(tp, 0) >= end for tp, end in wanted.items()),
                                          timeout=timeout_s):
                raise TimeoutError(f"the connector cluster's topics were not read back within {timeout_s}s"
                                   + (f" ({self._error})" if self._error else ""))

    def _current_topic_ids(self) -> dict[str, Any]:
        # Private: kafka-python keeps the topic ids of its metadata (v10+) there and has no public accessor; a
        # changed id is a topic deleted and created again, which offsets alone do not always show.
        cluster = self._consumer._client.cluster if self._consumer is not None else None
        return {} if cluster is None else {t: cluster.topic_id(t) for t in (self._configs_topic, self._status_topic)}

    def _recreated(self) -> str | None:
        now = self._current_topic_ids()
        return next((t for t, known in self._topic_ids.items() if known and now.get(t) and now[t] != known), None)

    def _new_consumer(self) -> KafkaConsumer:
        return KafkaConsumer(**{**self._consumer_config, "bootstrap_servers": self._bootstrap,
                                "enable_auto_commit": False, "auto_offset_reset": "earliest",
                                "client_id": "gsp-connect-cluster", "fetch_max_wait_ms": 50})

    def _tail(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                if self._suspended:
                    if self._consumer is not None:
                        consumer, self._consumer = self._consumer, None
                        consumer.close()
                        with self._changed:
                            self._changed.notify_all()
                    self._stop.wait(0.1)
                    continue
                if self._reload:
                    if self._consumer is None:
                        self._consumer = self._new_consumer()
                    tps = self._partitions(_ACK_TIMEOUT_S)
                    self._consumer.assign(tps)
                    self._consumer.seek_to_beginning(*tps)
                    end = self._consumer.end_offsets(tps)
                    with self._changed:
                        for memory in (self._configs, self._targets, self._restarts, self._connector_status,
                                       self._task_status):
                            memory.clear()
                        self._read = dict.fromkeys(tps, 0)
                        self._reload_end = end
                        self._version += 1
                        self._reload = False
                        self.reset_seen = None
                        self._topic_ids = self._current_topic_ids()
                        self._changed.notify_all()
                assert self._consumer is not None
                polled = self._consumer.poll(timeout_ms=100)
                with self._changed:
                    for tp, messages in polled.items():
                        for message in messages:
                            self._apply(tp.topic, message.key, message.value, message.offset)
                        self._read[tp] = messages[-1].offset + 1
                        self._version += 1
                    if self.reset_seen is None and (changed := self._recreated()):
                        self.reset_seen = f"{changed} was created again"
                        log.error("the connector cluster's topics were created again (a new, empty broker?): %s",
                                  self.reset_seen, extra={"stage": "connect"})
                    for tp in self._read:  # Tansu's end offset can lie past the last record read (a batch's base + n)
                        position = self._consumer.position(tp) or 0
                        if position < self._read[tp] and self.reset_seen is None:
                            # Only a reset moves a reader back: the log it read is gone (a new, empty broker).
                            self.reset_seen = f"{tp.topic} went back from offset {self._read[tp]} to {position}"
                            log.error("the connector cluster's topics went back (a new, empty broker?): %s",
                                      self.reset_seen, extra={"stage": "connect"})
                        self._read[tp] = max(self._read[tp], position)
                    if self._error is not None:
                        log.info("connector cluster topics readable again", extra={"stage": "connect"})
                    self._error = None
                    self._changed.notify_all()
                delay = 0.5
            except (KafkaError, OSError, AssertionError) as exc:
                with self._changed:
                    if self._error is None:
                        log.warning("cannot read the connector cluster's topics: %s", first_line(exc),
                                    extra={"stage": "connect"})
                    self._error = first_line(exc)
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)

    def _apply(self, topic: str, raw_key: bytes | None, raw_value: bytes | None, offset: int) -> None:
        if raw_key is None:
            return
        key = raw_key.decode()
        try:
            value = None if raw_value is None else json.loads(raw_value)
        except json.JSONDecodeError:
            log.warning("ignored a record of %s that is not JSON", topic, extra={"stage": "connect", "key": key})
            return
        if topic == self._configs_topic:
            self._apply_config(key, value, offset)
        else:
            self._apply_status(key, value)

    def _apply_config(self, key: str, value: Any, offset: int) -> None:
        if key.startswith("connector-"):
            name = key.removeprefix("connector-")
            if value is None:
                self._configs.pop(name, None)
            else:
                self._configs[name] = value["properties"]
        elif key.startswith("target-state-"):
            name = key.removeprefix("target-state-")
            if value is None:
                self._targets.pop(name, None)
            else:
                self._targets[name] = value["state"]
        elif key.startswith("restart-connector-"):
            name = key.removeprefix("restart-connector-")
            if value is None:
                self._restarts.pop(name, None)
            else:
                kept = self._restarts.setdefault(name, [])
                kept.append({"sequence": offset, "include_tasks": bool(value.get("include_tasks")),
                             "only_failed": bool(value.get("only_failed")), "task": value.get("task")})
                del kept[:-_KEPT_RESTARTS]

    def _apply_status(self, key: str, value: Any) -> None:
        if key.startswith("status-connector-"):
            name = key.removeprefix("status-connector-")
            if value is None:
                self._connector_status.pop(name, None)
            else:
                self._connector_status[name] = value
        elif key.startswith("status-task-"):
            name, _, task = key.removeprefix("status-task-").rpartition("-")
            if not task.isdigit():
                return
            if value is None:
                self._task_status.get(name, {}).pop(int(task), None)
            else:
                self._task_status.setdefault(name, {})[int(task)] = value


def _kind(config: dict[str, Any] | None) -> str:
    if config is None:
        return "unknown"
    try:
        from connectors.plugins import plugin_for

        return str(plugin_for(config).kind)
    except Exception:  # no such plugin (UserError), or plugins not importable: Kafka Connect says "unknown"
        return "unknown"
