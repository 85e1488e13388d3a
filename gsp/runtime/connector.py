"""`gsp connect run CONFIG.json`: one source connector as its own process.

The config's "type" says what it reads: "sql" (the default: a table in timestamp+incrementing order,
optionally with a soft-delete column), "outbox" (a Debezium-style outbox table) or "file" (a directory of
dropped CSV or JSON Lines files). It names the dataset and how the source's columns map to the contract;
"source_system" overrides the dataset's declared one (one dataset fed by several systems: event ids derive
from it). Every mistake in it is one line. Ops scale connectors by running more processes, one per
source (positions are per connector name). Kafka and the registry come from GSP_KAFKA_BOOTSTRAP and
GSP_SCHEMA_REGISTRY_URL, or from a running `gsp serve` ($GSP_HOME/runtime.json).

Outages of the source or the broker do not end the process: the runner backs off, /health says what is
down, and it resumes from its stored position (see connectors.runner).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry

from connectors.backoff import first_line
from connectors.base import Source
from connectors.file_source import FileSource, FileSourceConfig
from connectors.metrics import ConnectorMetrics
from connectors.offsets import OffsetStore
from connectors.outbox_source import OutboxSource, OutboxSourceConfig
from connectors.runner import SourceRunner, Target
from connectors.sql_source import SqlSource, SqlSourceConfig
from gsp.errors import UserError
from gsp.governance.catalog import DATASETS
from gsp.runtime.embedded import wait_for_kafka
from gsp.runtime.process import Progress, endpoints, read_config, start_ops, stop_on_sigterm
from schemas import topics
from schemas.codec import Codec
from schemas.datasets import Dataset
from schemas.registry import RegistryClient, RegistryClientError
from schemas.settings import Settings, kafka_producer_config

__all__ = ["run_connector"]

log = logging.getLogger("gsp.connect")
_COMMON = {"type", "columns", "poll_interval_s", "batch_size", "source_system"}
# type -> (required keys, optional keys), besides name, dataset and the common ones
_KEYS: dict[str, tuple[set[str], set[str]]] = {
    "sql": ({"database_url", "table", "key_column"}, {"timestamp_column", "incrementing_column", "soft_delete_column"}),
    "outbox": ({"database_url"}, {"table", "aggregate_type", "delete_types", "incrementing_column"}),
    "file": ({"directory"}, {"format"}),
}
_DRAINED = {"sql": "the table is drained", "outbox": "the outbox is drained", "file": "no complete file left"}


def _config(path: Path) -> dict[str, Any]:
    every = set().union(*(required | optional for required, optional in _KEYS.values()))
    kind = read_config(path, required=set(), optional={"name", "dataset", *_COMMON, *every}).get("type", "sql")
    if kind not in _KEYS:
        raise UserError(f"{path}: unknown connector type {kind!r}; known: {', '.join(_KEYS)}")
    required, optional = _KEYS[kind]
    config = read_config(path, required={"name", "dataset", *required}, optional=_COMMON | optional)
    config["type"] = kind
    if config["dataset"] not in DATASETS:
        raise UserError(f"{path}: unknown dataset {config['dataset']!r}; known: {', '.join(DATASETS)}")
    columns = config.get("columns", {})
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        raise UserError(f"{path}: columns must map contract fields to column names (a JSON object of strings)")
    delete_types = config.get("delete_types", ["deleted"])
    if not isinstance(delete_types, list) or not all(isinstance(t, str) for t in delete_types):
        raise UserError(f"{path}: delete_types must be a list of strings")
    for key, kind_of in (("batch_size", int), ("poll_interval_s", (int, float))):
        if key in config and (not isinstance(config[key], kind_of) or isinstance(config[key], bool) or config[key] <= 0):
            raise UserError(f"{path}: {key} must be a positive number")
    for key in ("name", "source_system", "directory", "format", "table", "aggregate_type", "soft_delete_column"):
        if key in config and not (isinstance(config[key], str) and config[key]):
            raise UserError(f"{path}: {key} must be a non-empty string")
    return config


def _source(config_path: Path, config: dict[str, Any], dataset: Dataset,
            on_file: Callable[[str], None]) -> Source:
    columns = config.get("columns", {})
    try:
        if config["type"] == "file":
            return FileSource(config["directory"], FileSourceConfig(
                name=config["name"], key_field=dataset.key, format=config.get("format"), columns=columns,
                contract=dataset.avro), on_file=on_file)
        # pool_pre_ping: after a database restart the pooled connections are dead; test each before use.
        engine = sa.create_engine(config["database_url"], pool_pre_ping=True)
        if config["type"] == "outbox":
            return OutboxSource(engine, OutboxSourceConfig(
                name=config["name"], aggregate_type=config.get("aggregate_type", dataset.name),
                table=config.get("table", "outbox"), incrementing_column=config.get("incrementing_column", "id"),
                delete_types=tuple(config.get("delete_types", ["deleted"])), columns=columns))
        return SqlSource(engine, SqlSourceConfig(
            name=config["name"], table=config["table"], key_column=config["key_column"],
            timestamp_column=config.get("timestamp_column", "updated_at"),
            incrementing_column=config.get("incrementing_column", "id"), columns=columns,
            soft_delete_column=config.get("soft_delete_column")))
    except sa.exc.DBAPIError as exc:
        raise UserError(f"{config_path}: source database unreachable: {first_line(exc.orig or exc)}") from None
    except (ValueError, OSError, sa.exc.ArgumentError, ImportError) as exc:
        # no such table, column or directory; an unknown format; a bad URL or driver
        raise UserError(f"{config_path}: {first_line(exc)}") from None


def run_connector(settings: Settings, config_path: Path, *, once: bool = False, port: int = 0) -> int:
    """Publish the source's records; with ``once``, stop when it is drained."""
    config = _config(config_path)
    dataset = DATASETS[config["dataset"]]
    metrics_registry = CollectorRegistry()
    metrics = ConnectorMetrics.create(metrics_registry)
    # The connector's own source first: a mistake in the config is reported even before a platform runs.
    source = _source(config_path, config, dataset, lambda outcome: metrics.files.labels(config["name"], outcome).inc())
    bootstrap, registry_url = endpoints(settings, what="connector")
    wait_for_kafka(bootstrap, timeout_s=10)
    registry = RegistryClient(registry_url, token=None if settings.schema_registry_url else settings.credential(),
                              cafile=settings.tls_ca)
    try:
        schema_id = registry.latest(topics.subject(topics.raw(dataset.name)))[0]
        issue_id = registry.latest(topics.subject(topics.quarantine(dataset.name)))[0]
    except RegistryClientError as exc:
        raise UserError(f"schema registry: {exc}") from None
    producer = KafkaProducer(**kafka_producer_config(settings, bootstrap))
    offsets = OffsetStore(bootstrap, producer)
    target = Target.of(dataset, schema_id=schema_id, quarantine_schema_id=issue_id,
                       source_system=config.get("source_system"))
    runner = SourceRunner(source, target,
                          producer=producer, codec=Codec(resolve=registry.schema_by_id),
                          offsets=offsets, metrics=metrics,
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
            counts = {"published": runner.published, "quarantined": runner.quarantined}
            if isinstance(source, FileSource):
                counts |= {"files done": source.files["done"], "files rejected": source.files["rejected"]}
            progress.show(counts, idle=drained, force=once,
                          idle_note=_DRAINED[config["type"]] + ("" if once else ", waiting for more"))
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
