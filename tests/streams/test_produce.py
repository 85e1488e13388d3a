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

    async def send() -> int:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            futures = await BatchSender(lambda: producer).send(outs)
            await producer.flush()
            return sum(1 for f in futures if f.done() and f.exception() is None)
        finally:
            await producer.stop()

    assert asyncio.run(send()) >= 4
    seen = {m.key: m.partition for m in read_topic(bootstrap, topic)}
    assert len(seen) == len(outs)
    # kafka-python's producer (the connectors) would have put each key on the same partition.
    assert all(partition == (murmur2(key) & 0x7FFFFFFF) % 4 for key, partition in seen.items())
