"""`gsp sink run CONFIG.json`: an agency's sink as its own process: a SQL table or a webhook (standalone mode).

The config is validated and built by the sink's plugin (connectors.plugins), the same as a sink connector run
by `gsp connect worker`. It names the subscription's share topic and, by "connector.class"
(vn.gsp.connect.SqlSinkConnector or sql-sink, WebhookSinkConnector or webhook-sink) or, in a config written
before plugins, by ``type``, where its events go:

- ``sql`` (the default): the agency's database and table; rows are upserted by the agency's
  event id.
- ``webhook``: the agency's HTTPS endpoint and a file holding its webhook secret; each batch
  is one signed POST (connectors.webhook), retried with back-off, and a batch the endpoint
  would not take goes to the dead-letter topic ``dlq.<share topic>``.

The connector's name is its "name", else the topic; the process is task 0 of consumer group
``gsp-connect-<name>``, so the same sink later run by workers goes on from its committed offsets.
Offsets are committed only after the batch is in the table, accepted by the endpoint or in
the dead letter, so a kill at any moment replays and never loses (see
connectors.sink_runner); outages of the database, the broker or the registry are waited out
and shown on /health.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from kafka import KafkaProducer
from prometheus_client import CollectorRegistry

from connectors.base import Sink
from connectors.config_def import ConfigInvalid
from connectors.metrics import ConnectorMetrics
from connectors.plugins import WEBHOOK_SINK, CannotStart, DeadLetters, SinkPlugin, TaskContext, share_schema
from connectors.sql_sink import SqlSink
from connectors.webhook_sink import WebhookMetrics, WebhookSink, dead_letter_topic
from gsp.errors import UserError
from gsp.runtime.connector import read_standalone
from gsp.runtime.embedded import wait_for_kafka
from gsp.runtime.process import Progress, endpoints, start_ops, stop_on_sigterm
from schemas.codec import Codec
from schemas.registry import RegistryClient
from schemas.settings import Settings, kafka_producer_config

__all__ = ["run_sink"]

log = logging.getLogger("gsp.sink")
_TYPES = {"sql": "sql-sink", "webhook": "webhook-sink"}  # a config's "type" before plugins


def run_sink(settings: Settings, config_path: Path, *, port: int = 0) -> int:
    """Deliver the share topic into the table or to the webhook until SIGTERM or Ctrl-C."""
    plugin, raw = read_standalone(config_path, kind="sink", types=_TYPES, default_type="sql")
    assert isinstance(plugin, SinkPlugin)
    try:
        config = plugin.parse(raw)
    except ConfigInvalid as exc:  # every bad field, in one line
        raise UserError(f"{config_path}: {exc}") from None
    connector = config["name"] or config["topic"]
    metrics_registry = CollectorRegistry()
    webhook_metrics = WebhookMetrics.create(metrics_registry) if plugin is WEBHOOK_SINK else None
    dead_letters = DeadLetters(dead_letter_topic(config["topic"]))
    sink: Sink | None = None
    try:
        if plugin is WEBHOOK_SINK:  # built before the platform is reached, so a bad target is the first error
            sink = plugin.open_sink(connector, 0, config, schema=None, dead_letters=dead_letters,
                                    webhook_metrics=webhook_metrics)
        bootstrap, registry_url = endpoints(settings, what="sink")
        wait_for_kafka(bootstrap, timeout_s=10)
        registry = RegistryClient(registry_url, token=None if settings.schema_registry_url else settings.credential(),
                                  cafile=settings.tls_ca)
        schema = share_schema(registry, config["topic"])
        if sink is None:
            sink = plugin.open_sink(connector, 0, config, schema=schema, dead_letters=dead_letters,
                                    webhook_metrics=webhook_metrics)
    except CannotStart as exc:
        if sink is not None:
            sink.close()
        raise UserError(f"{config_path}: {exc}") from None
    producer = KafkaProducer(**kafka_producer_config(settings, bootstrap))
    try:
        ctx = TaskContext(settings=settings, bootstrap=bootstrap, registry=registry,
                          codec=Codec(resolve=registry.schema_by_id), producer=producer,
                          metrics=ConnectorMetrics.create(metrics_registry), webhook_metrics=webhook_metrics)
        task = plugin.sink_task(connector, 0, config, sink, ctx, dead_letters=dead_letters)
    except BaseException:
        producer.close(timeout=10)
        raise
    if isinstance(sink, WebhookSink):
        target = f"webhook {sink.url} (dead letters to {dead_letters.topic})"
    else:
        target = f"table {sink.table_name}" if isinstance(sink, SqlSink) else sink.name
    ops = start_ops(settings, metrics_registry, task.health, port=port, title=f"GSP sink {sink.name}")
    stop = stop_on_sigterm()
    print(f"gsp: sink {config['topic']} -> {target}; metrics and health on http://127.0.0.1:{ops.port}",
          file=sys.stderr, flush=True)
    progress = Progress(sink.name)
    try:
        while not stop.is_set():
            written, wait_s = task.step()
            counts = {"written": task.runner.written, "undecodable": task.runner.undecodable}
            if isinstance(sink, WebhookSink):
                state = sink.health()
                counts = {"delivered": state["delivered_events"], "dead-lettered": state["dead_lettered_events"],
                          "undecodable": task.runner.undecodable}
            progress.show(counts, idle=written == 0, idle_note="waiting for new records")
            if wait_s:
                stop.wait(wait_s)
    except KeyboardInterrupt:
        pass
    finally:
        ops.stop()
        task.close()
        producer.close(timeout=10)
    return 0
