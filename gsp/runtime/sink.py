"""`gsp sink run CONFIG.json`: an agency's sink as its own process: a SQL table or a webhook.

The config names the subscription's share topic and, by ``type``, where its events go:

- ``sql`` (the default): the agency's database and table; rows are upserted by the agency's
  event id.
- ``webhook``: the agency's HTTPS endpoint and a file holding its webhook secret; each batch
  is one signed POST (connectors.webhook), retried with back-off, and a batch the endpoint
  would not take goes to the dead-letter topic ``dlq.<share topic>``.

Offsets are committed only after the batch is in the table, accepted by the endpoint or in
the dead letter, so a kill at any moment replays and never loses (see
connectors.sink_runner); outages of the database, the broker or the registry are waited out
and shown on /health.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from kafka import KafkaProducer
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from connectors.backoff import first_line
from connectors.base import Sink
from connectors.metrics import ConnectorMetrics
from connectors.sink_runner import SinkRunner
from connectors.sql_sink import SqlSink
from connectors.webhook_sink import TargetRefused, WebhookMetrics, WebhookSink, dead_letter_topic
from gsp.errors import UserError
from gsp.governance.topology import ensure_topics
from gsp.runtime.embedded import wait_for_kafka
from gsp.runtime.process import Progress, endpoints, read_config, start_ops, stop_on_sigterm
from schemas import topics
from schemas.codec import Codec
from schemas.registry import RegistryClient, RegistryClientError
from schemas.settings import Settings, kafka_consumer_config, kafka_producer_config

__all__ = ["run_sink"]

log = logging.getLogger("gsp.sink")

# Keys by sink type: (required, optional); "topic", "name", "max_records" and "type" are every type's.
_COMMON_REQUIRED = {"topic"}
_COMMON_OPTIONAL = {"type", "name", "max_records"}
_KEYS: dict[str, tuple[set[str], set[str]]] = {
    "sql": ({"database_url"}, {"table"}),
    "webhook": ({"url", "secret_file"},
                {"max_attempts", "rate_per_s", "timeout_s", "allow_http", "allow_private_targets"}),
}
_DLQ_ACK_TIMEOUT_S = 30


def _sink_type(path: Path) -> str:
    """The config's "type" (default sql); a config that is not readable JSON is left to read_config to report."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "sql"
    kind = config.get("type", "sql") if isinstance(config, dict) else "sql"
    if kind not in _KEYS:
        raise UserError(f"{path}: type {kind!r} is not one of {', '.join(sorted(_KEYS))}")
    return str(kind)


def _config(path: Path) -> dict[str, Any]:
    kind = _sink_type(path)
    required, optional = _KEYS[kind]
    config = read_config(path, required=_COMMON_REQUIRED | required, optional=_COMMON_OPTIONAL | optional)
    config["type"] = kind
    if not str(config["topic"]).startswith("share."):
        raise UserError(f"{path}: topic {config['topic']!r} is not a subscription's share.<agency>.<dataset> topic")
    return config


def _option(path: Path, config: dict[str, Any], key: str, kind: type, default: Any, *, positive: bool = False) -> Any:
    """``config[key]`` checked to be a ``kind`` (an int is a float too; a bool is neither), else ``default``."""
    value = config.get(key, default)
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    else:
        ok = isinstance(value, kind) and not isinstance(value, bool)
    if ok and positive:
        ok = value > 0
    if not ok:
        expected = {bool: "true or false", int: "a whole number", float: "a number"}.get(kind, "text")
        raise UserError(f"{path}: {key} must be {expected}" + (" above 0" if positive else "") + f", not {value!r}")
    return value


def _sql_sink(config_path: Path, config: dict[str, Any], schema: dict[str, Any]) -> SqlSink:
    topic = config["topic"]
    try:
        engine = sa.create_engine(config["database_url"], pool_pre_ping=True)
        return SqlSink(engine, name=config.get("name", topic),
                       table=config.get("table", topic.replace(".", "_").replace("-", "_")), schema=schema)
    except sa.exc.DBAPIError as exc:
        raise UserError(f"{config_path}: sink database unreachable: {first_line(exc.orig or exc)}") from None
    except (sa.exc.ArgumentError, ImportError) as exc:  # a bad URL or a missing driver
        raise UserError(f"{config_path}: {first_line(exc)}") from None


@dataclass
class _DeadLetters:
    """Writes dead-lettered webhook batches to ``dlq.<share topic>``, each waited for until the broker acked it."""
    topic: str
    producer: KafkaProducer | None = field(default=None)

    def send(self, body: bytes, headers: dict[str, str]) -> None:
        if self.producer is None:
            raise RuntimeError("the dead-letter producer is not connected")
        future = self.producer.send(self.topic, key=headers.get("batch_id", "").encode(), value=body,
                                    headers=[(k, v.encode()) for k, v in headers.items()])
        future.get(timeout=_DLQ_ACK_TIMEOUT_S)


def _webhook_sink(config_path: Path, config: dict[str, Any], *, dead_letters: _DeadLetters,
                  metrics: WebhookMetrics) -> WebhookSink:
    secret_file = Path(_option(config_path, config, "secret_file", str, None))
    try:
        secret = secret_file.read_bytes().strip()
    except OSError as exc:
        raise UserError(f"{config_path}: cannot read the webhook secret {secret_file}: {exc.strerror}") from None
    if not secret:
        raise UserError(f"{config_path}: the webhook secret file {secret_file} is empty")
    try:
        return WebhookSink(
            _option(config_path, config, "url", str, None), secret, name=config.get("name", config["topic"]),
            topic=config["topic"], dead_letter=dead_letters.send, metrics=metrics,
            max_attempts=_option(config_path, config, "max_attempts", int, 8, positive=True),
            rate_per_s=float(_option(config_path, config, "rate_per_s", float, 10.0, positive=True)),
            timeout_s=float(_option(config_path, config, "timeout_s", float, 10.0, positive=True)),
            allow_http=_option(config_path, config, "allow_http", bool, False),
            allow_private_targets=_option(config_path, config, "allow_private_targets", bool, False))
    except (TargetRefused, ValueError) as exc:
        raise UserError(f"{config_path}: {exc}") from None


def _connect_dead_letters(settings: Settings, bootstrap: str, dead_letters: _DeadLetters) -> None:
    try:
        ensure_topics(bootstrap, {dead_letters.topic: (1, {})})
    except KafkaError as exc:  # e.g. not allowed to create topics: the platform's topology may have made it
        log.warning("could not create the dead-letter topic", extra={"topic": dead_letters.topic,
                                                                     "error": first_line(exc)})
    dead_letters.producer = KafkaProducer(**kafka_producer_config(settings, bootstrap))


def run_sink(settings: Settings, config_path: Path, *, port: int = 0) -> int:
    """Deliver the share topic into the table or to the webhook until SIGTERM or Ctrl-C."""
    config = _config(config_path)
    try:
        max_records = int(config.get("max_records", 500))
    except (TypeError, ValueError):
        raise UserError(f"{config_path}: max_records must be a whole number, not {config['max_records']!r}") from None
    metrics_registry = CollectorRegistry()
    dead_letters = _DeadLetters(dead_letter_topic(config["topic"]))
    webhook = None
    if config["type"] == "webhook":  # built before the platform is reached, so a bad target is the first error
        webhook = _webhook_sink(config_path, config, dead_letters=dead_letters,
                                metrics=WebhookMetrics.create(metrics_registry))
    bootstrap, registry_url = endpoints(settings, what="sink")
    wait_for_kafka(bootstrap, timeout_s=10)
    registry = RegistryClient(registry_url, token=None if settings.schema_registry_url else settings.credential(),
                              cafile=settings.tls_ca)
    try:
        schema = json.loads(registry.latest(topics.subject(config["topic"]))[2])
    except RegistryClientError as exc:
        raise UserError(f"{config_path}: no contract for {config['topic']} in the schema registry ({exc}); "
                        "is the subscription approved?") from None
    consumer_config = kafka_consumer_config(settings, bootstrap)
    sink: Sink
    if webhook is not None:
        _connect_dead_letters(settings, bootstrap, dead_letters)
        # A flush retries for up to longest_flush_s; the group must not evict the consumer meanwhile.
        consumer_config["max_poll_interval_ms"] = max(int(str(consumer_config["max_poll_interval_ms"])),
                                                      int((webhook.longest_flush_s + 30) * 1000))
        sink, target = webhook, f"webhook {webhook.url} (dead letters to {dead_letters.topic})"
    else:
        sql = _sql_sink(config_path, config, schema)
        sink, target = sql, f"table {sql.table_name}"
    runner = SinkRunner(sink, topic=config["topic"], consumer_config=consumer_config,
                        codec=Codec(resolve=registry.schema_by_id), metrics=ConnectorMetrics.create(metrics_registry),
                        max_records=max_records)

    def health() -> dict[str, Any]:
        report = runner.health()
        if webhook is not None:
            report["webhook"] = webhook.health()
            if report["webhook"]["state"] == "failing":
                report["status"] = "degraded"
        return report

    ops = start_ops(settings, metrics_registry, health, port=port, title=f"GSP sink {sink.name}")
    stop = stop_on_sigterm()
    print(f"gsp: sink {config['topic']} -> {target}; metrics and health on http://127.0.0.1:{ops.port}",
          file=sys.stderr, flush=True)
    progress = Progress(sink.name)
    try:
        while not stop.is_set():
            written, wait_s = runner.step(timeout_ms=500)
            counts = {"written": runner.written, "undecodable": runner.undecodable}
            if webhook is not None:
                state = webhook.health()
                counts = {"delivered": state["delivered_events"], "dead-lettered": state["dead_lettered_events"],
                          "undecodable": runner.undecodable}
            progress.show(counts, idle=written == 0, idle_note="waiting for new records")
            if wait_s:
                stop.wait(wait_s)
    except KeyboardInterrupt:
        pass
    finally:
        ops.stop()
        runner.close()
        if dead_letters.producer is not None:
            dead_letters.producer.close(timeout=10)
    return 0
