"""`gsp connect run CONFIG.json`: one SQL source connector as its own process.

The config names the dataset, the source database and table, and how rows
map to the contract. Ops scale connectors by running more processes, one per
table (a source table is read by one connector: positions are per connector
name). Kafka and the registry come from GSP_KAFKA_BOOTSTRAP and
GSP_SCHEMA_REGISTRY_URL, or from a running `gsp serve` ($GSP_HOME/runtime.json).

Outages of the source database or the broker do not end the process: the
runner backs off, /health says what is down, and it resumes from its stored
position (see connectors.runner).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry

from connectors.backoff import first_line
from connectors.metrics import ConnectorMetrics
from connectors.offsets import OffsetStore
from connectors.runner import SourceRunner, Target
from connectors.sql_source import SqlSource, SqlSourceConfig
from gsp.errors import UserError
from gsp.governance.catalog import DATASETS
from gsp.runtime.embedded import wait_for_kafka
from gsp.runtime.process import Progress, endpoints, read_config, start_ops, stop_on_sigterm
from schemas import topics
from schemas.codec import Codec
from schemas.registry import RegistryClient, RegistryClientError
from schemas.settings import Settings, kafka_producer_config

__all__ = ["run_connector"]

log = logging.getLogger("gsp.connect")
_REQUIRED = {"name", "dataset", "database_url", "table", "key_column"}
_OPTIONAL = {"timestamp_column", "incrementing_column", "columns", "poll_interval_s", "batch_size"}


def _config(path: Path) -> dict[str, Any]:
    config = read_config(path, required=_REQUIRED, optional=_OPTIONAL)
    if config["dataset"] not in DATASETS:
        raise UserError(f"{path}: unknown dataset {config['dataset']!r}; known: {', '.join(DATASETS)}")
    return config


def _source(config_path: Path, config: dict[str, Any]) -> SqlSource:
    try:
        # pool_pre_ping: after a database restart the pooled connections are dead; test each before use.
        return SqlSource(sa.create_engine(config["database_url"], pool_pre_ping=True), SqlSourceConfig(
            name=config["name"], table=config["table"], key_column=config["key_column"],
            timestamp_column=config.get("timestamp_column", "updated_at"),
            incrementing_column=config.get("incrementing_column", "id"), columns=config.get("columns", {})))
    except sa.exc.DBAPIError as exc:
        raise UserError(f"{config_path}: source database unreachable: {first_line(exc.orig or exc)}") from None
    except (ValueError, sa.exc.ArgumentError, ImportError) as exc:  # no such table or column; a bad URL or driver
        raise UserError(f"{config_path}: {first_line(exc)}") from None


def run_connector(settings: Settings, config_path: Path, *, once: bool = False, port: int = 0) -> int:
    """Publish the table's rows; with ``once``, stop when the table is drained."""
    config = _config(config_path)
    # The connector's own database first: a mistake in the config is reported even before a platform runs.
    source = _source(config_path, config)
    bootstrap, registry_url = endpoints(settings, what="connector")
    wait_for_kafka(bootstrap, timeout_s=10)
    dataset = DATASETS[config["dataset"]]
    registry = RegistryClient(registry_url, token=None if settings.schema_registry_url else settings.credential(),
                              cafile=settings.tls_ca)
    try:
        schema_id = registry.latest(topics.subject(topics.raw(dataset.name)))[0]
        issue_id = registry.latest(topics.subject(topics.quarantine(dataset.name)))[0]
    except RegistryClientError as exc:
        raise UserError(f"schema registry: {exc}") from None
    metrics_registry = CollectorRegistry()
    producer = KafkaProducer(**kafka_producer_config(settings, bootstrap))
    offsets = OffsetStore(bootstrap, producer)
    runner = SourceRunner(source, Target.of(dataset, schema_id=schema_id, quarantine_schema_id=issue_id),
                          producer=producer, codec=Codec(resolve=registry.schema_by_id),
                          offsets=offsets, metrics=ConnectorMetrics.create(metrics_registry),
                          batch_size=int(config.get("batch_size", 2000)))
    ops = start_ops(settings, metrics_registry, runner.health, port=port, title=f"GSP connector {config['name']}")
    stop = stop_on_sigterm()
    print(f"gsp: connector {config['name']} -> {topics.raw(dataset.name)}; metrics and health on http://127.0.0.1:{ops.port}",
          file=sys.stderr, flush=True)
    progress = Progress(config["name"])
    try:
        runner.start()
        while not stop.is_set():
            handled, wait_s = runner.step()
            drained = handled == 0 and wait_s == 0
            progress.show({"published": runner.published, "quarantined": runner.quarantined}, idle=drained,
                          idle_note="the table is drained" + ("" if once else ", waiting for new rows"), force=once)
            if drained and once:
                break
            if handled == 0:
                stop.wait(wait_s or float(config.get("poll_interval_s", 1.0)))
    except KeyboardInterrupt:
        pass
    finally:
        ops.stop()
        runner.close()
        producer.close()
        source.close()
    return 0
