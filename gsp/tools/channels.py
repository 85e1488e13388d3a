"""The demo's delivery channels, each as the agency at the other end would run it, counting what arrived.

- ``sql``: `connectors.sql_sink.SqlSink` under a `SinkRunner` (what `gsp sink run` runs), into SQLite;
- ``webhook``: `connectors.webhook_sink.WebhookSink` under a `SinkRunner`, POSTing signed batches to a
  receiver on loopback that verifies every signature (`gsp.tools.webhook_receiver`);
- ``pull``: the agency's HTTP client paging through ``GET /api/subscriptions/{id}/records`` with its cursor;
- ``kafka``: the agency's own consumer of its share topic (the national portal, which prefills forms).

``delivered()`` counts distinct event ids at the agency's end: delivery is at-least-once, the agency's
event id is stable, so distinct ids are the records it holds.
"""

from __future__ import annotations

import json
import secrets
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from connectors.metrics import ConnectorMetrics
from connectors.sink_runner import SinkRunner
from connectors.sql_sink import SqlSink
from connectors.webhook_sink import WebhookSink
from gsp.http.client import ApiClient, query
from gsp.tools.webhook_receiver import Receiver
from schemas.codec import Codec, CodecError

__all__ = ["Delivery", "KafkaChannel", "PullChannel", "SinkChannel", "sql_channel", "webhook_channel"]


class Delivery(Protocol):
    kind: str

    def delivered(self) -> int: ...

    def close(self) -> None: ...


class SinkChannel:
    """A sink under its runner, in a thread of its own."""

    def __init__(self, kind: str, runner: SinkRunner, count: Callable[[], int], *, extra: Callable[[], None] | None = None,
                 where: str = "") -> None:
        self.kind, self.where = kind, where
        self._runner, self._count, self._extra = runner, count, extra
        self._stop = threading.Event()
        self._thread = threading.Thread(target=runner.run, args=(self._stop,), name=f"sink-{kind}", daemon=True)
        self._thread.start()

    def delivered(self) -> int:
        return self._count()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._runner.close()
        if self._extra is not None:
            self._extra()


def sql_channel(topic: str, schema: dict[str, Any], *, database: Path, consumer_config: dict[str, Any], codec: Codec,
                metrics: ConnectorMetrics) -> tuple[SinkChannel, SqlSink]:
    sink = SqlSink(sa.create_engine(f"sqlite:///{database}"), name=topic,
                   table=topic.replace(".", "_").replace("-", "_"), schema=schema)
    runner = SinkRunner(sink, topic=topic, consumer_config=consumer_config, codec=codec, metrics=metrics)
    return SinkChannel("sql", runner, sink.count, where=f"{database} table {sink.table_name}"), sink


def webhook_channel(topic: str, *, consumer_config: dict[str, Any], codec: Codec, metrics: ConnectorMetrics,
                    producer: KafkaProducer) -> SinkChannel:
    """The agency's endpoint on loopback with a secret of its own; batches that fail for good go to the topic's DLQ."""
    secret = secrets.token_bytes(32)
    receiver = Receiver(secret)
    receiver.start()

    def dead_letter(value: bytes, headers: dict[str, str]) -> None:
        producer.send("dlq." + topic, value=value, headers=[(k, v.encode()) for k, v in headers.items()]).get(timeout=30)

    sink = WebhookSink(receiver.url, secret, name=topic, topic=topic, dead_letter=dead_letter,
                       allow_http=True, allow_private_targets=True, rate_per_s=50.0,
                       metrics=None)
    runner = SinkRunner(sink, topic=topic, consumer_config=consumer_config, codec=codec, metrics=metrics)
    return SinkChannel("webhook", runner, receiver.distinct, extra=receiver.stop, where=receiver.url)


class PullChannel:
    """The agency's cron job: page through the feed with its cursor until it is drained, then again."""

    kind = "pull"

    def __init__(self, api_url: str, token: str, subscription_id: str, *, page: int = 500) -> None:
        self.where = f"GET /api/subscriptions/{subscription_id}/records"
        self._client = ApiClient(api_url, token=token)
        self._path = f"/api/subscriptions/{urllib.parse.quote(subscription_id, safe='')}/records"
        self._page = page
        self._ids: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.cursor: str | None = None
        self.pages = 0
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="pull", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                answer = self._client.get(self._path + query(cursor=self.cursor, limit=self._page))
            except Exception as exc:
                self.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                self._stop.wait(1.0)
                continue
            with self._lock:
                self._ids.update(r["event"]["header"]["event_id"] for r in answer["records"] if "event" in r)
            self.cursor, self.pages = answer["next_cursor"], self.pages + 1
            if not answer["more"]:
                self._stop.wait(0.3)

    def delivered(self) -> int:
        with self._lock:
            return len(self._ids)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=35)


class KafkaChannel:
    """The agency's own consumer of its share topic; keeps the records by person key (the portal's prefill)."""

    kind = "kafka"

    def __init__(self, bootstrap: str, topic: str, codec: Codec) -> None:
        self.where = topic
        self._codec = codec
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="gsp-demo-portal")
        tps = [TopicPartition(topic, p) for p in sorted(self._consumer.partitions_for_topic(topic) or [])]
        self._consumer.assign(tps)
        self._consumer.seek_to_beginning(*tps)
        self.by_person: dict[str, dict[str, Any]] = {}
        self._ids: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.undecodable = 0
        self._thread = threading.Thread(target=self._run, name="portal", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for messages in self._consumer.poll(timeout_ms=200, max_records=2000).values():
                for message in messages:
                    try:
                        record = self._codec.decode(message.value)[1]
                    except CodecError:
                        self.undecodable += 1
                        continue
                    with self._lock:
                        self._ids.add(record["header"]["event_id"])
                        if record.get("person_key"):
                            self.by_person[record["person_key"]] = record

    def delivered(self) -> int:
        with self._lock:
            return len(self._ids)

    def prefill(self) -> dict[str, Any] | None:
        """One form as the portal prefills it for a signed-in citizen: the first person it holds a contract of."""
        with self._lock:
            if not self.by_person:
                return None
            person = min(self.by_person)
            record = self.by_person[person]
        return {"personal_id": person, **{k: v for k, v in record.items() if k not in ("header", "person_key")}}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._consumer.close()


def metrics_for_demo() -> ConnectorMetrics:
    return ConnectorMetrics.create(CollectorRegistry())


def as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
