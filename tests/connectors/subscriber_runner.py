"""A `SourceRunner` publishing telecom subscribers to topics of its own, for tests of a `Source`."""

from typing import Any

from kafka import KafkaProducer
from prometheus_client import CollectorRegistry

from connectors.metrics import ConnectorMetrics
from connectors.offsets import OffsetStore
from connectors.runner import SourceRunner, Target
from gsp.governance.topology import ensure_topics
from schemas.codec import Codec, contract

SUBSCRIBER_ID, ISSUE_ID = 41, 42
SUBSCRIBER = contract("vn.gsp.telecom.Subscriber")


def codec() -> Codec:
    c = Codec()
    c.add(SUBSCRIBER_ID, SUBSCRIBER)
    c.add(ISSUE_ID, contract("vn.gsp.quality.QualityIssue"))
    return c


def subscriber_runner(bootstrap: str, source: Any, suffix: str, *, source_system: str, raw_partitions: int = 1,
                      batch_size: int = 2000) -> tuple[SourceRunner, KafkaProducer]:
    """Started on ``raw.<suffix>``, ``quarantine.<suffix>`` and positions on ``offsets.<suffix>``."""
    raw, quarantine, offsets_topic = f"raw.{suffix}", f"quarantine.{suffix}", f"offsets.{suffix}"
    ensure_topics(bootstrap, {raw: (raw_partitions, {}), quarantine: (1, {}),
                              offsets_topic: (1, {"cleanup.policy": "compact"})})
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    target = Target(dataset="telecom.subscriber", source_system=source_system, topic=raw, schema_id=SUBSCRIBER_ID,
                    schema=SUBSCRIBER, quarantine_topic=quarantine, quarantine_schema_id=ISSUE_ID)
    run = SourceRunner(source, target, producer=producer, codec=codec(),
                       offsets=OffsetStore(bootstrap, producer, topic=offsets_topic),
                       metrics=ConnectorMetrics.create(CollectorRegistry()), batch_size=batch_size)
    run.start()
    return run, producer
