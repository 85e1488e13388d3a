"""Consumer-group lag, as ops see it: end offsets minus committed offsets."""

from __future__ import annotations

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

__all__ = ["group_lag"]


def group_lag(bootstrap: str, group: str, topic: str) -> int:
    """Records of ``topic`` not yet committed by ``group`` (all of them if it never committed)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="gsp-lag")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="gsp-lag")
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        end = consumer.end_offsets(tps)
        committed = admin.list_group_offsets({group: tps}).get(group, {})
        return sum(max(0, end[tp] - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0))
                   for tp in tps)
    finally:
        consumer.close()
        admin.close()
