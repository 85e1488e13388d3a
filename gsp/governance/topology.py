"""Creating topics. Partition counts are fixed here, once: the embedded broker cannot add them later."""

from __future__ import annotations

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

__all__ = ["ensure_topics"]


def ensure_topics(bootstrap: str, wanted: dict[str, tuple[int, dict[str, str]]], *, replication_factor: int = 1) -> list[str]:
    """Create the topics that do not exist yet; the names created."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="gsp-topology")
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(name, partitions, replication_factor, topic_configs=configs)
                   for name, (partitions, configs) in wanted.items() if name not in existing]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # created concurrently by another process
        return [t.name for t in missing]
    finally:
        admin.close()
