"""The batch sender against the real embedded broker: every event lands, keyed as Kafka's default partitioner does."""

import asyncio
import uuid

from aiokafka import AIOKafkaProducer
from kafka.partitioner.default import murmur2

from gsp.governance.topology import ensure_topics
from streams.produce import BatchSender
from tests.topics import read_topic


def test_batches_land_on_the_partition_of_their_key(bootstrap: str) -> None:
    topic = f"test.produce.{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, {topic: (4, {})})
    outs = [(topic, f"key-{i}".encode(), b"v" * 2000) for i in range(3000)]  # several batches per partition

    headers = [[("gsp-n", str(i).encode())] for i in range(len(outs))]

    async def send() -> tuple[int, list[tuple[int, int]]]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            sent = await BatchSender(lambda: producer).send(outs, headers)
            positions = await sent.positions()
            return sum(1 for f in sent.futures if f.done() and f.exception() is None), positions
        finally:
            await producer.stop()

    batches, positions = asyncio.run(send())
    assert batches >= 4
    messages = read_topic(bootstrap, topic)
    seen = {m.key: m.partition for m in messages}
    assert len(seen) == len(outs)
    # kafka-python's producer (the connectors) would have put each key on the same partition.
    assert all(partition == (murmur2(key) & 0x7FFFFFFF) % 4 for key, partition in seen.items())
    # Where the sender says each event went is where it is, with its own headers (the ledger's lineage relies on it).
    landed = {(m.partition, m.offset): (m.key, dict(m.headers)) for m in messages}
    for i, position in enumerate(positions):
        assert landed[position] == (f"key-{i}".encode(), {"gsp-n": str(i).encode()})


def test_events_given_a_partition_land_on_it_whatever_their_key(bootstrap: str) -> None:
    topic = f"test.produce.{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, {topic: (4, {})})
    outs = [(topic, f"key-{i}".encode(), f"v{i}".encode()) for i in range(40)]
    partitions = [(i * 3) % 4 for i in range(len(outs))]

    async def send() -> list[tuple[int, int]]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            return await (await BatchSender(lambda: producer).send(outs, partitions=partitions)).positions()
        finally:
            await producer.stop()

    positions = asyncio.run(send())
    landed = {m.value: m.partition for m in read_topic(bootstrap, topic)}
    assert landed == {value: partitions[i] for i, (_, _, value) in enumerate(outs)}
    assert [partition for partition, _ in positions] == partitions
