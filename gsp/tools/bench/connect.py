"""`gsp bench --connect`: connector throughput with 1 and 2 workers, and the connector against the raw producer.

A SQLite source of ``tables`` subscriber tables of ``rows`` rows each; one sql-source connector with one task per
table. For each worker count, that many `gsp connect worker` processes join the group first and the connector
is created paused, so joining and starting tasks is not timed: the clock runs from resume until every task's
stored position is its table's last row (positions are stored only after the broker acknowledged the batch).
In the same run, the plain :class:`~connectors.runner.SourceRunner` publishes the same tables in process, and a
kafka-python producer with the same configuration sends the very records it published (read back from its
topic), as the platform bench's "connector publish" figure does. Embedded broker on loopback only.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from connectors.cluster import ClusterStore
from connectors.metrics import ConnectorMetrics
from connectors.offsets import OffsetStore
from connectors.plugins import position_key
from connectors.runner import SourceRunner, Target
from connectors.sql_source import SqlSource, SqlSourceConfig
from gsp.errors import UserError
from gsp.governance.control import ControlPlane
from gsp.governance.topology import ensure_topics
from gsp.http.access import Access
from gsp.http.registry import registry_routes
from gsp.http.server import ApiServer, application
from gsp.runtime.credentials import worker_token
from gsp.runtime.embedded import running_broker, stop_process
from gsp.tools.bench.platform import _figure, _send_all
from schemas import topics
from schemas.codec import Codec
from schemas.datasets import dataset
from schemas.settings import Settings, kafka_consumer_config, kafka_producer_config

__all__ = ["run_connect_bench"]

SUBSCRIBER = "telecom.subscriber"
_BATCH = 2000


def _write_source(path: Path, tables: list[str], rows: int) -> None:
    conn = sqlite3.connect(path)
    try:
        for t, table in enumerate(tables):
            conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, updated_at INTEGER, msisdn TEXT, "
                         "carrier TEXT, subscriber_name TEXT, id_number TEXT, birth_date TEXT, address TEXT)")
            conn.executemany(
                f"INSERT INTO {table} VALUES (?, ?, ?, 'Viettel', 'Lê Thị Thu', ?, '1985-01-02', 'Hà Nội')",
                ((i, i, f"09{t}{i:07d}", f"{t}{i:011d}") for i in range(1, rows + 1)))
        conn.commit()
    finally:
        conn.close()


class _Positions:
    """The stored positions of a connector's tables, read from gsp.connect.offsets as the workers store them."""

    def __init__(self, bootstrap: str) -> None:
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
        tp = TopicPartition(topics.CONNECT_OFFSETS, 0)
        self._consumer.assign([tp])
        self._consumer.seek_to_beginning(tp)
        self.last: dict[str, int] = {}

    def drained(self, connector: str, tables: list[str], rows: int) -> bool:
        for batch in self._consumer.poll(timeout_ms=50).values():
            for message in batch:
                if message.key is not None and message.value is not None:
                    self.last[message.key.decode()] = int(json.loads(message.value)["inc"])
        return all(self.last.get(position_key(connector, {"table": t})) == rows for t in tables)

    def close(self) -> None:
        self._consumer.close()


def _cluster_run(workers: int, *, store: ClusterStore, positions: _Positions, env: dict[str, str], source_url: str,
                 tables: list[str], rows: int, workdir: Path, say: Callable[[str], None]) -> float:
    """Seconds from resume until every table's position is its last row, with ``workers`` worker processes."""
    name = f"bench-{workers}-workers"
    ids = [f"bench-w{i + 1}" for i in range(workers)]
    processes = []
    for worker_id in ids:
        with open(workdir / f"{name}-{worker_id}.log", "wb") as log:
            processes.append(subprocess.Popen([sys.executable, "-m", "gsp", "connect", "worker", "--worker-id",
                                               worker_id], env=env, stdout=subprocess.DEVNULL, stderr=log))
    try:
        store.set_target_state(name, "PAUSED")
        store.put_config(name, {"connector.class": "sql-source", "name": name, "dataset": SUBSCRIBER,
                                "database_url": source_url, "tables": tables, "key_column": "msisdn",
                                "tasks.max": len(tables), "batch_size": _BATCH, "poll_interval_s": 0.1})
        say(f"{workers} worker(s): waiting until the group shares the {len(tables)} tasks out, paused")
        deadline = time.monotonic() + 120

        def ready() -> bool:
            tasks = store.status(name)["tasks"]
            return (len(tasks) == len(tables) and all(t["state"] == "PAUSED" for t in tasks)
                    and {t["worker_id"] for t in tasks} == set(ids))

        while not ready():
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise UserError(f"the workers did not run the paused tasks: {store.status(name)} "
                                f"(logs in {workdir})")
            time.sleep(0.1)
        say(f"{workers} worker(s): resumed, publishing {len(tables)} x {rows} rows")
        started = time.perf_counter()
        store.set_target_state(name, "STARTED")
        deadline = time.monotonic() + 120 + len(tables) * rows / 500
        while not positions.drained(name, tables, rows):
            if time.monotonic() > deadline:
                raise UserError(f"{name} did not publish every row before its deadline (logs in {workdir})")
        elapsed = time.perf_counter() - started
        store.set_target_state(name, "STOPPED")
        return elapsed
    finally:
        for process in processes:
            stop_process(process, grace_s=30)


def _runner_figure(settings: Settings, bootstrap: str, control: ControlPlane, source: sa.Engine, tables: list[str],
                   rows: int, say: Callable[[str], None]) -> dict[str, Any]:
    """The plain SourceRunner over the same tables in turn, and the raw producer sending what it published."""
    d = dataset(SUBSCRIBER)
    published, sent = f"bench.connect.{topics.raw(SUBSCRIBER)}", "bench.connect.producer"
    ensure_topics(bootstrap, {t: (settings.partitions, {}) for t in (published, sent, "bench.connect.quarantine")})
    raw_id, issue_id = (control.registry.get_version(topics.subject(t(SUBSCRIBER)), "latest").id
                        for t in (topics.raw, topics.quarantine))
    target = Target.of(d, schema_id=raw_id, quarantine_schema_id=issue_id, topic=published,
                       quarantine_topic="bench.connect.quarantine")
    codec = Codec(resolve=lambda i: control.registry.schema_by_id(i).schema)
    producer, raw_producer = (KafkaProducer(**kafka_producer_config(settings, bootstrap)) for _ in range(2))
    offsets = OffsetStore(bootstrap, producer)
    try:
        say(f"plain SourceRunner: publishing {len(tables)} x {rows} rows in process")
        started = time.perf_counter()
        for table in tables:
            runner = SourceRunner(SqlSource(source, SqlSourceConfig(name=f"bench-runner-{table}", table=table,
                                                                    key_column="msisdn")),
                                  target, producer=producer, codec=codec, offsets=offsets,
                                  metrics=ConnectorMetrics.create(CollectorRegistry()), batch_size=_BATCH)
            runner.start()
            while runner.run_once():
                pass
        runner_s = time.perf_counter() - started
        records = _read_back(bootstrap, published, len(tables) * rows)
        say(f"raw kafka-python producer: sending the same {len(records)} records")
        raw_s = time.perf_counter()
        _send_all(raw_producer, sent, [("", key, value) for key, value in records])
        raw_s = time.perf_counter() - raw_s
    finally:
        offsets.close()
        producer.close()
        raw_producer.close()
    n = len(tables) * rows
    return _figure("connector publish (SourceRunner, SQLite, in process)", n, runner_s,
                   "kafka-python producer, same records + flush", len(records), raw_s,
                   bytes_per_record=round(sum(len(v) for _, v in records) / max(len(records), 1), 1))


def _read_back(bootstrap: str, topic: str, expected: int) -> list[tuple[bytes, bytes]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out: list[tuple[bytes, bytes]] = []
        deadline = time.monotonic() + 120
        while len(out) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                out.extend((m.key, m.value) for m in batch)
        return out
    finally:
        consumer.close()


def run_connect_bench(settings: Settings, *, rows: int = 20_000, tables: int = 4, as_json: bool = False,
                      out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    if rows < 100 or tables < 2:
        raise UserError("--records must be at least 100 (rows per table)")
    say = functools.partial(print, "bench:", file=err, flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="gsp-bench-connect-"))
    names = [f"subscriber_{t}" for t in range(tables)]
    try:
        say(f"writing {tables} tables x {rows} subscribers to SQLite")
        _write_source(workdir / "source.db", names, rows)
        source_url = f"sqlite:///{workdir / 'source.db'}"
        with running_broker(replace(settings, kafka_bootstrap=None, home=workdir / "broker")) as bootstrap:
            figures = _measure(settings, bootstrap, workdir, names, rows, source_url, say)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report = {"rows_per_table": rows, "tables": tables, "cpus": os.cpu_count(), "python": platform.python_version(),
              "broker": "embedded Tansu on loopback", "figures": figures}
    out.write(json.dumps(report, ensure_ascii=False) + "\n" if as_json else _render(report))
    return 0


def _measure(settings: Settings, bootstrap: str, workdir: Path, names: list[str], rows: int, source_url: str,
             say: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    engine = sa.create_engine(f"sqlite:///{workdir / 'control.db'}")
    control = ControlPlane(engine, bootstrap=bootstrap, partitions=settings.partitions)
    control.start()
    home = workdir / "home"
    home.mkdir()
    token = worker_token(control.identities, home)
    api = ApiServer(application(registry_routes(control.registry), title="registry", access=Access(control.identities)))
    api.start()
    (home / "runtime.json").write_text(json.dumps({"bootstrap": bootstrap, "api_url": api.url}))
    env = {k: v for k, v in os.environ.items() if k not in ("GSP_KAFKA_BOOTSTRAP", "GSP_SCHEMA_REGISTRY_URL")}
    env |= {"GSP_HOME": str(home), "GSP_TOKEN": token}
    store = ClusterStore(bootstrap, producer_config=kafka_producer_config(settings, bootstrap),
                         consumer_config=kafka_consumer_config(settings, bootstrap))
    source = sa.create_engine(source_url)
    positions: _Positions | None = None
    try:
        store.start()
        ensure_topics(bootstrap, {topics.CONNECT_OFFSETS: (1, {"cleanup.policy": "compact"})})
        positions = _Positions(bootstrap)
        run = functools.partial(_cluster_run, store=store, positions=positions, env=env, source_url=source_url,
                                tables=names, rows=rows, workdir=workdir, say=say)
        one_s, two_s = run(1), run(2)
        runner = _runner_figure(settings, bootstrap, control, source, names, rows, say)
    finally:
        if positions is not None:
            positions.close()
        store.close()
        source.dispose()
        api.stop()
        control.close()
        engine.dispose()
    n = len(names) * rows
    return {"connect_one_worker": _figure(f"connector, 1 worker ({len(names)} tasks)", n, one_s,
                                          "plain SourceRunner in process (below)", n,
                                          runner["elapsed_s"]),
            "connect_two_workers": _figure(f"connector, 2 workers ({len(names)} tasks)", n, two_s,
                                           "the same connector with 1 worker", n, one_s),
            "connector_publish": runner}


def _render(report: dict[str, Any]) -> str:
    lines = [f"GSP connector bench: {report['tables']} tables x {report['rows_per_table']} rows, {report['cpus']} CPUs, "
             f"Python {report['python']}, {report['broker']}", "",
             f"  {'piece':<52} {'records/s':>10}   {'baseline (same run)':<44} {'records/s':>10} {'ratio':>6}"]
    for f in report["figures"].values():
        lines.append(f"  {f['label']:<52} {f['records_per_s']:>10,.0f}   {f['baseline']:<44} "
                     f"{f['baseline_records_per_s']:>10,.0f} {f['ratio']:>6.2f}")
    return "\n".join(lines) + "\n"
