"""A sink runner never commits past its table: a failing or vanished sink database is waited out and every
record ends in the table exactly once; after the broker is restarted empty it reads the new topic from 0."""

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from connectors import sink_runner as sink_runner_module
from connectors.metrics import ConnectorMetrics
from connectors.sink_runner import SinkRunner
from connectors.sql_sink import SqlSink
from gsp.governance.topology import ensure_topics
from gsp.runtime.embedded import Broker
from tests.connectors.postgres import PgCluster
from tests.connectors.sharing import SHARE_SCHEMA, publish, share_codec

CONSUMER = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000, "max_poll_interval_ms": 60000}


def sink_runner(bootstrap: str, engine: sa.Engine, topic: str) -> tuple[SinkRunner, SqlSink]:
    sink = SqlSink(engine, name=topic, table="agency_rows", schema=SHARE_SCHEMA)
    runner = SinkRunner(sink, topic=topic, consumer_config={"bootstrap_servers": bootstrap, **CONSUMER},
                        codec=share_codec(), metrics=ConnectorMetrics.create(CollectorRegistry()), max_records=7,
                        backoff_cap_s=0.5)
    return runner, sink


def step_until(runner: SinkRunner, done: Callable[[], bool], what: str, *, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        _, wait_s = runner.step()
        time.sleep(wait_s)


def rename_away(engine: sa.Engine) -> tuple[Callable[[], None], Callable[[], None]]:
    def rename(old: str, new: str) -> Callable[[], None]:
        def run() -> None:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"ALTER TABLE {old} RENAME TO {new}")
        return run
    return rename("agency_rows", "agency_rows_away"), rename("agency_rows_away", "agency_rows")


@pytest.fixture(params=["sqlite table renamed away", "postgresql server stopped"])
def failing_database(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[
        tuple[sa.Engine, Callable[[], None], Callable[[], None]]]:
    """(sink engine, break it, repair it)."""
    if request.param.startswith("sqlite"):
        engine = sa.create_engine(f"sqlite:///{tmp_path}/agency.db")
        yield engine, *rename_away(engine)
        engine.dispose()
        return
    cluster = PgCluster()
    cluster.start()
    engine = sa.create_engine(cluster.url, pool_pre_ping=True)
    try:
        yield engine, cluster.stop, cluster.start
    finally:
        engine.dispose()
        cluster.remove()


def test_a_failing_sink_commits_nothing_past_its_table_and_ends_with_every_record_once(
        bootstrap: str, failing_database: tuple[sa.Engine, Callable[[], None], Callable[[], None]]) -> None:
    engine, break_it, repair = failing_database
    topic = f"share.t{uuid.uuid4().hex[:8]}.subscriber.v1"
    ensure_topics(bootstrap, {topic: (2, {})})
    publish(bootstrap, topic, range(60))
    runner, sink = sink_runner(bootstrap, engine, topic)
    try:
        step_until(runner, lambda: runner.written >= 14, "the first batches")
        break_it()
        failures = 0
        for _ in range(5):  # each attempt fails, nothing is committed, the consumer does not move on
            written, wait_s = runner.step()
            failures += written == 0 and wait_s > 0
        assert failures == 5
        health = runner.health()
        assert health["status"] == "degraded" and health["sink"]["up"] is False and "\n" not in health["sink"]["error"]
        repair()
        assert sum(runner.committed().values()) <= sink.count()  # read while the table answers again
        step_until(runner, lambda: sink.count() == 60 and sum(runner.committed().values()) == 60, "every record")
        assert runner.health()["status"] == "ok"
        with engine.connect() as conn:
            ids = conn.execute(sa.text("SELECT source_key FROM agency_rows")).scalars().all()
        assert sorted(ids) == sorted(f"k{i}" for i in range(60))
    finally:
        runner.close()


def test_a_sink_reads_the_new_topic_from_its_start_after_the_broker_restarted_empty(
        tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """And its /health says so while the broker is gone (an idle sink probes it)."""
    broker = Broker()
    broker.start()
    engine = sa.create_engine(f"sqlite:///{tmp_path}/agency.db")
    topic = f"share.t{uuid.uuid4().hex[:8]}.subscriber.v1"
    runner = None
    try:
        ensure_topics(broker.bootstrap, {topic: (1, {})})
        publish(broker.bootstrap, topic, range(20))
        runner, sink = sink_runner(broker.bootstrap, engine, topic)
        step_until(runner, lambda: sink.count() == 20, "the first run")
        assert runner.health()["status"] == "ok"
        broker.stop()
        monkeypatch.setattr(sink_runner_module, "PROBE_EVERY_S", 0.5)
        step_until(runner, lambda: runner.health()["broker"]["up"] is False, "the broker's loss on /health")
        assert runner.health()["status"] == "degraded"
        broker.start()  # same port, nothing in it: the group's offsets and the topic's 20 records are gone
        ensure_topics(broker.bootstrap, {topic: (1, {})})
        # More records than the old position (20) on the new topic: a sink that kept its position would skip 0-19.
        publish(broker.bootstrap, topic, range(100, 130))
        step_until(runner, lambda: sink.count() == 50, "the new topic's records")
        step_until(runner, lambda: runner.health()["status"] == "ok", "health back to ok")
    finally:
        if runner is not None:
            runner.close()
        engine.dispose()
        broker.stop()
