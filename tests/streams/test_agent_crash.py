"""An agent that crashes ends its worker before its batch is acked, and the restart skips nothing.

Faust acks a `take_events` batch in a ``finally``, even when the agent raised: without the guard
the failing batch would be committed unprocessed and the agent would sit dead in a healthy worker.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry

from schemas.codec import SchemaUnavailable
from streams.agents import CRASH_EXIT_CODE, Agents
from streams.metrics import StageMetrics
from tests.topics import read_topic


def worker(bootstrap: str, source: str, sink: str, group: str, tmp: Path, *crash_on: str) -> subprocess.Popen[bytes]:
    with open(tmp / "worker.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "tests.streams.crashing_worker", bootstrap, source, sink, group,
                                 str(tmp), *crash_on], stdout=subprocess.DEVNULL, stderr=log)


def test_a_crashing_agent_ends_its_worker_and_the_restart_resumes_at_the_failed_batch(bootstrap: str,
                                                                                      tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    source, sink, group = f"crash-in-{run}", f"crash-out-{run}", f"crash-{run}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(source, 1, 1), NewTopic(sink, 1, 1)])
    admin.close()
    values = [f"v{i}".encode() for i in range(300)]
    values[150] = b"boom"
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for value in values:
        producer.send(source, key=b"k", value=value)
    producer.flush()
    producer.close()

    crashing = worker(bootstrap, source, sink, group, tmp_path, "boom")
    assert crashing.wait(timeout=90) == CRASH_EXIT_CODE, (tmp_path / "worker.log").read_text()[-3000:]
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    committed = consumer.committed(TopicPartition(source, 0)) or 0
    consumer.close()
    assert committed <= 150  # the failed batch was not committed
    assert b"boom" not in {m.value for m in read_topic(bootstrap, sink)}

    restarted = worker(bootstrap, source, sink, group, tmp_path)
    try:
        copied = read_topic(bootstrap, sink, until=lambda ms: {m.value for m in ms} >= set(values), timeout_s=90)
    finally:
        restarted.terminate()
        restarted.wait(timeout=30)
    assert {m.value for m in copied} == set(values)  # nothing after the crash was skipped


def test_a_schema_registry_out_of_reach_is_waited_for_and_shown_then_the_batch_goes_on() -> None:
    crashed: list[str] = []
    agents = Agents(app=None, outbox=None, metrics=StageMetrics.create(CollectorRegistry()),  # type: ignore[arg-type]
                    crash=lambda: crashed.append("crash"), max_backoff_s=0.02)
    attempts: list[dict[str, str]] = []

    async def batch() -> None:
        attempts.append(dict(agents.waiting))
        if len(attempts) < 3:
            raise SchemaUnavailable("registry at http://127.0.0.1:9 unreachable")

    started = time.monotonic()
    asyncio.run(agents._guard("clean-x", batch))
    assert len(attempts) == 3 and attempts[0] == {} and "unreachable" in attempts[2]["clean-x"]
    assert agents.waiting == {} and crashed == [] and time.monotonic() - started < 5

    async def broken() -> None:
        raise KeyError("a bug")

    try:
        asyncio.run(agents._guard("match-x", broken))
    except KeyError:
        pass
    assert crashed == ["crash"]
