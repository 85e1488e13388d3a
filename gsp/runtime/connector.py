"""`gsp connect run CONFIG.json`: one SQL source connector as its own process.

The config names the dataset, the source database and table, and how rows
map to the contract. Ops scale connectors by running more processes, one per
table (a source table is read by one connector: positions are per connector
name). Kafka and the registry come from GSP_KAFKA_BOOTSTRAP and
GSP_SCHEMA_REGISTRY_URL, or from a running `gsp serve` ($GSP_HOME/runtime.json).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry

from connectors.metrics import ConnectorMetrics
from connectors.offsets import OffsetStore
from connectors.runner import SourceRunner, Target
from connectors.sql_source import SqlSource, SqlSourceConfig
from gsp.errors import UserError
from gsp.governance.catalog import DATASETS
from gsp.http.ops import OpsServer
from gsp.runtime.embedded import wait_for_kafka
from schemas import topics
from schemas.codec import Codec
from schemas.registry import RegistryClient, RegistryClientError
from schemas.settings import Settings, kafka_producer_config

__all__ = ["run_connector"]

log = logging.getLogger("gsp.connect")
_KEYS = {"name", "dataset", "database_url", "table", "key_column", "timestamp_column", "incrementing_column",
         "columns", "poll_interval_s", "batch_size"}


def _config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(config, dict):
        raise UserError(f"{path} must hold a JSON object")
    unknown = sorted(set(config) - _KEYS)
    missing = sorted({"name", "dataset", "database_url", "table", "key_column"} - set(config))
    if unknown or missing:
        raise UserError(f"{path}: " + "; ".join(filter(None, [
            f"unknown keys {', '.join(unknown)}" if unknown else "", f"missing keys {', '.join(missing)}" if missing else ""])))
    if config["dataset"] not in DATASETS:
        raise UserError(f"{path}: unknown dataset {config['dataset']!r}; known: {', '.join(DATASETS)}")
    return config


def _endpoints(settings: Settings) -> tuple[str, str]:
    runtime_file = settings.home / "runtime.json"
    runtime = json.loads(runtime_file.read_text()) if runtime_file.exists() else {}
    bootstrap = settings.kafka_bootstrap or runtime.get("bootstrap")
    registry = settings.schema_registry_url or runtime.get("api_url")
    if not bootstrap or not registry:
        raise UserError("a connector needs a running platform: set GSP_KAFKA_BOOTSTRAP and GSP_SCHEMA_REGISTRY_URL, "
                        "or start `gsp serve` with the same GSP_HOME")
    return bootstrap, registry


def _source(config_path: Path, config: dict[str, Any]) -> SqlSource:
    try:
        return SqlSource(sa.create_engine(config["database_url"]), SqlSourceConfig(
            name=config["name"], table=config["table"], key_column=config["key_column"],
            timestamp_column=config.get("timestamp_column", "updated_at"),
            incrementing_column=config.get("incrementing_column", "id"), columns=config.get("columns", {})))
    except sa.exc.DBAPIError as exc:
        raise UserError(f"{config_path}: source database unreachable: {_first_line(exc.orig or exc)}") from None
    except (ValueError, sa.exc.ArgumentError, ImportError) as exc:  # no such table or column; a bad URL or driver
        raise UserError(f"{config_path}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def run_connector(settings: Settings, config_path: Path, *, once: bool = False, port: int = 0) -> int:
    """Publish the table's rows; with ``once``, stop when the table is drained."""
    config = _config(config_path)
    # The connector's own database first: a mistake in the config is reported even before a platform runs.
    source = _source(config_path, config)
    bootstrap, registry_url = _endpoints(settings)
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
    runner = SourceRunner(source, Target.of(dataset, schema_id=schema_id, quarantine_schema_id=issue_id),
                          producer=producer, codec=Codec(resolve=registry.schema_by_id),
                          offsets=OffsetStore(bootstrap, producer), metrics=ConnectorMetrics.create(metrics_registry),
                          batch_size=int(config.get("batch_size", 2000)))
    ops = OpsServer(metrics_registry, lambda: {"status": "ok", "connector": config["name"],
                                               "published": runner.published, "quarantined": runner.quarantined},
                    host=settings.ops_host, port=port, title=f"GSP connector {config['name']}")
    ops.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"gsp: connector {config['name']} -> {topics.raw(dataset.name)}; metrics and health on http://127.0.0.1:{ops.port}",
          file=sys.stderr, flush=True)
    try:
        runner.start()
        # Progress only when rows moved (every 2 s while they do, the totals once the table is drained): an
        # idle connector polling all night stays quiet; /health and /metrics answer for it.
        shown, last = (0, 0), time.monotonic()
        while not stop.is_set():
            handled = runner.run_once()
            counts = (runner.published, runner.quarantined)
            drained = handled == 0 and (counts != shown or once)
            if drained or (counts != shown and time.monotonic() - last >= 2):
                shown, last = counts, time.monotonic()
                print(f"gsp: {config['name']}: published {runner.published}, quarantined {runner.quarantined}"
                      + ("; the table is drained" + ("" if once else ", waiting for new rows") if drained else ""),
                      file=sys.stderr, flush=True)
            if handled == 0:
                if once:
                    break
                stop.wait(float(config.get("poll_interval_s", 1.0)))
    except KeyboardInterrupt:
        pass
    except sa.exc.DBAPIError as exc:
        raise UserError(f"{config['name']}: source database failed: {_first_line(exc.orig or exc)}") from None
    finally:
        ops.stop()
        producer.close()
        source.close()
    return 0
