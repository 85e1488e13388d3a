"""A source connector waits out a database outage and a broker that lost everything, and loses nothing."""

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry

from connectors.memory import ListSource, NackingProducer
from connectors.metrics import ConnectorMetrics
from connectors.offsets import OffsetStore
from connectors.runner import SourceRunner, Target
from connectors.sql_source import SqlSource, SqlSourceConfig
from gsp.governance.topology import ensure_topics
from gsp.runtime.embedded import Broker
from schemas.codec import contract
from tests.connectors.postgres import PgCluster
from tests.connectors.test_sql_connectors import ISSUE_ID, SUBSCRIBER_ID, codec
from tests.topics import read_topic


def subscriber(i: int) -> dict[str, Any]:
    return {"msisdn": f"09{i:08d}", "carrier": "Viettel", "subscriber_name": f"Nguyễn Văn {i}",
            "id_number": f"0011850{i:05d}", "birth_date": "1985-01-02", "updated_at": 100 + i}


def make_runner(bootstrap: str, source: Any, suffix: str, *, producer: Any = None,
                check_every_s: float = 0.5) -> tuple[SourceRunner, KafkaProducer, CollectorRegistry]:
    topics = {f"raw.t{suffix}": (1, {}), f"quarantine.t{suffix}": (1, {}),
              f"offsets.t{suffix}": (1, {"cleanup.policy": "compact"})}
    ensure_topics(bootstrap, topics)
    # Not idempotent: kafka-python's idempotent producer fails for good once a restarted broker forgets its id.
    real = KafkaProducer(bootstrap_servers=bootstrap, acks="all", max_block_ms=5000, request_timeout_ms=5000,
                         enable_idempotence=False)
    target = Target(dataset="telecom.subscriber", source_system="telecom.test", topic=f"raw.t{suffix}",
                    schema_id=SUBSCRIBER_ID, schema=contract("vn.gsp.telecom.Subscriber"),
                    quarantine_topic=f"quarantine.t{suffix}", quarantine_schema_id=ISSUE_ID)
    metrics = CollectorRegistry()
    runner = SourceRunner(source, target, producer=producer(real) if producer else real, codec=codec(),
                          offsets=OffsetStore(bootstrap, real, topic=f"offsets.t{suffix}"),
                          metrics=ConnectorMetrics.create(metrics), check_every_s=check_every_s, backoff_cap_s=1.0,
                          flush_timeout_s=5.0)
    return runner, real, metrics


def wait_for(condition: Callable[[], bool], what: str, *, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def running() -> Iterator[Callable[[SourceRunner], None]]:
    """Runs runners on threads until the test ends, then closes them (their offset watchers), however it ended."""
    stop, threads, runners = threading.Event(), [], []

    def start(runner: SourceRunner) -> None:
        runners.append(runner)
        runner.start()
        threads.append(threading.Thread(target=runner.run, args=(stop,), kwargs={"idle_s": 0.05}, daemon=True))
        threads[-1].start()

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    for runner in runners:
        runner.close()


def keys(bootstrap: str, topic: str) -> list[bytes]:
    return sorted(m.key for m in read_topic(bootstrap, topic))


def test_a_source_database_outage_is_waited_out_reported_and_resumed_without_loss(
        bootstrap: str, running: Callable[[SourceRunner], None]) -> None:
    cluster = PgCluster()
    cluster.start()
    engine = sa.create_engine(cluster.url, pool_pre_ping=True)
    try:
        table = sa.Table("subscriber", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                         sa.Column("updated_at", sa.BigInteger),
                         *[sa.Column(c, sa.Text) for c in subscriber(0) if c != "updated_at"])
        table.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(table), [subscriber(i) for i in range(3)])
        suffix = uuid.uuid4().hex[:8]
        runner, producer, metrics = make_runner(bootstrap, SqlSource(engine, SqlSourceConfig(
            name=f"pg-{suffix}", table="subscriber", key_column="msisdn")), suffix)
        running(runner)
        wait_for(lambda: runner.published == 3, "the first rows")

        def up() -> float | None:
            return metrics.get_sample_value("gsp_connector_up", {"connector": f"pg-{suffix}"})

        assert up() == 1.0
        cluster.stop()
        wait_for(lambda: not runner.health()["source"]["up"], "the outage to show")
        health = runner.health()
        assert health["status"] == "degraded" and health["broker"]["up"] is True
        assert health["source"]["error"] and "\n" not in health["source"]["error"]
        assert up() == 0.0
        time.sleep(2)  # several back-off steps while down; the runner thread must not have died
        assert runner.health()["source"]["up"] is False

        cluster.start()
        with engine.begin() as conn:
            conn.execute(sa.insert(table), [subscriber(i) for i in range(3, 6)])
        wait_for(lambda: runner.published == 6, "the rows written after the outage")
        assert runner.health()["status"] == "ok" and up() == 1.0
        assert keys(bootstrap, f"raw.t{suffix}") == sorted(f"09{i:08d}".encode() for i in range(6))
        producer.close()
        runner.close()
    finally:
        engine.dispose()
        cluster.remove()


def test_a_batch_the_broker_did_not_acknowledge_is_retried_from_the_stored_position(
        bootstrap: str, running: Callable[[SourceRunner], None]) -> None:
    suffix = uuid.uuid4().hex[:8]
    values = [(subscriber(i)["msisdn"], subscriber(i)) for i in range(5)]
    runner, producer, metrics = make_runner(bootstrap, ListSource(f"nack-{suffix}", values), suffix,
                                            producer=lambda real: NackingProducer(real, nacks=3))
    runner.start()
    handled, wait_s = runner.step()
    assert (handled, runner.published) == (0, 0) and wait_s > 0
    assert runner.health()["broker"]["up"] is False and "not acknowledged" in runner.health()["broker"]["error"]
    deadline = time.monotonic() + 30
    while runner.published < 5 and time.monotonic() < deadline:
        runner.step()
    assert runner.health()["status"] == "ok"
    # The two records the broker did take are sent again with the rest: at least once, none lost.
    delivered = keys(bootstrap, f"raw.t{suffix}")
    assert set(delivered) == {k.encode() for k, _ in values} and len(delivered) == 7
    assert metrics.get_sample_value("gsp_connector_errors_total", {"connector": f"nack-{suffix}"}) == 1.0
    producer.close()
    runner.close()


def test_a_broker_restarted_empty_gets_the_whole_source_again(running: Callable[[SourceRunner], None]) -> None:
    broker = Broker()
    broker.start()
    try:
        suffix = uuid.uuid4().hex[:8]
        values = [(subscriber(i)["msisdn"], subscriber(i)) for i in range(5)]
        runner, producer, _ = make_runner(broker.bootstrap, ListSource(f"lost-{suffix}", values), suffix)
        running(runner)
        wait_for(lambda: runner.published == 5, "the first run")
        broker.stop()
        broker.start()  # same port, nothing in it
        ensure_topics(broker.bootstrap, {f"raw.t{suffix}": (1, {}), f"quarantine.t{suffix}": (1, {}),
                                         f"offsets.t{suffix}": (1, {"cleanup.policy": "compact"})})
        wait_for(lambda: runner.replays == 1 and runner.published == 10, "the replay")
        assert keys(broker.bootstrap, f"raw.t{suffix}") == sorted(k.encode() for k, _ in values)
        assert runner.health()["status"] == "ok"
        producer.close()
        runner.close()
    finally:
        broker.stop()


@pytest.mark.parametrize("resent", [False, True], ids=["the last position gone", "the last position re-sent"])
def test_a_loss_hidden_by_the_producers_own_reconnection_is_caught_when_the_next_position_is_stored(
        running: Callable[[SourceRunner], None], resent: bool) -> None:
    """The broker restarts empty while the connector idles; its producer reconnects by itself and the next rows
    are acknowledged by the new broker, so nothing failed. The periodic check is off here: storing the next
    position finds the previous one gone, and the whole source goes again. The position stored last can also
    reach the new broker itself (the producer re-sends a store the old one never answered), at the same
    offset: the position check then finds it while the rows before it are gone, and the dataset topic's
    offsets going back tell it instead."""
    broker = Broker()
    broker.start()
    try:
        suffix = uuid.uuid4().hex[:8]
        values = [(subscriber(i)["msisdn"], subscriber(i)) for i in range(8)]
        shown = values[:5]
        runner, producer, _ = make_runner(broker.bootstrap, ListSource(f"hidden-{suffix}", shown), suffix,
                                          check_every_s=3600)
        running(runner)
        wait_for(lambda: runner.published == 5, "the first run")
        stored = read_topic(broker.bootstrap, f"offsets.t{suffix}")
        broker.stop()
        broker.start()
        ensure_topics(broker.bootstrap, {f"raw.t{suffix}": (1, {}), f"quarantine.t{suffix}": (1, {}),
                                         f"offsets.t{suffix}": (1, {"cleanup.policy": "compact"})})
        if resent:
            again = KafkaProducer(bootstrap_servers=broker.bootstrap)
            for message in stored:  # the stores, re-sent to the new broker: same offsets, same bytes
                again.send(f"offsets.t{suffix}", key=message.key, value=message.value).get(timeout=30)
            again.close()
        shown.extend(values[5:])  # new rows in the source: the connector publishes them to the new broker
        wait_for(lambda: runner.replays == 1 and runner.published >= 13, "the replay")
        assert set(keys(broker.bootstrap, f"raw.t{suffix}")) == {k.encode() for k, _ in values}
        producer.close()
        runner.close()
    finally:
        broker.stop()
