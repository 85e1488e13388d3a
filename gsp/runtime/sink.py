"""`gsp sink run CONFIG.json`: an agency's SQL sink (SQLite or PostgreSQL) as its own process.

The config names the subscription's share topic, the agency's database and
table. Rows are upserted by the agency's event id and offsets are committed
only after the rows are in the table, so a kill at any moment replays and
never loses (see connectors.sink_runner); outages of the database, the broker
or the registry are waited out and shown on /health.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from connectors.backoff import first_line
from connectors.metrics import ConnectorMetrics
from connectors.sink_runner import SinkRunner
from connectors.sql_sink import SqlSink
from gsp.errors import UserError
from gsp.runtime.embedded import wait_for_kafka
from gsp.runtime.process import Progress, endpoints, read_config, start_ops, stop_on_sigterm
from schemas import topics
from schemas.codec import Codec
from schemas.registry import RegistryClient, RegistryClientError
from schemas.settings import Settings, kafka_consumer_config

__all__ = ["run_sink"]

_REQUIRED = {"topic", "database_url"}
_OPTIONAL = {"name", "table", "max_records"}


def _config(path: Path) -> dict[str, Any]:
    config = read_config(path, required=_REQUIRED, optional=_OPTIONAL)
    if not str(config["topic"]).startswith("share."):
        raise UserError(f"{path}: topic {config['topic']!r} is not a subscription's share.<agency>.<dataset> topic")
    return config


def _sink(config_path: Path, config: dict[str, Any], schema: dict[str, Any]) -> SqlSink:
    topic = config["topic"]
    try:
        engine = sa.create_engine(config["database_url"], pool_pre_ping=True)
        return SqlSink(engine, name=config.get("name", topic),
                       table=config.get("table", topic.replace(".", "_").replace("-", "_")), schema=schema)
    except sa.exc.DBAPIError as exc:
        raise UserError(f"{config_path}: sink database unreachable: {first_line(exc.orig or exc)}") from None
    except (sa.exc.ArgumentError, ImportError) as exc:  # a bad URL or a missing driver
        raise UserError(f"{config_path}: {first_line(exc)}") from None


def run_sink(settings: Settings, config_path: Path, *, port: int = 0) -> int:
    """Deliver the share topic into the table until SIGTERM or Ctrl-C."""
    config = _config(config_path)
    bootstrap, registry_url = endpoints(settings, what="sink")
    wait_for_kafka(bootstrap, timeout_s=10)
    registry = RegistryClient(registry_url, token=None if settings.schema_registry_url else settings.credential(),
                              cafile=settings.tls_ca)
    try:
        schema = json.loads(registry.latest(topics.subject(config["topic"]))[2])
    except RegistryClientError as exc:
        raise UserError(f"{config_path}: no contract for {config['topic']} in the schema registry ({exc}); "
                        "is the subscription approved?") from None
    sink = _sink(config_path, config, schema)
    metrics_registry = CollectorRegistry()
    runner = SinkRunner(sink, topic=config["topic"], consumer_config=kafka_consumer_config(settings, bootstrap),
                        codec=Codec(resolve=registry.schema_by_id), metrics=ConnectorMetrics.create(metrics_registry),
                        max_records=int(config.get("max_records", 500)))
    ops = start_ops(settings, metrics_registry, runner.health, port=port, title=f"GSP sink {sink.name}")
    stop = stop_on_sigterm()
    print(f"gsp: sink {config['topic']} -> table {sink.table_name}; metrics and health on http://127.0.0.1:{ops.port}",
          file=sys.stderr, flush=True)
    progress = Progress(sink.name)
    try:
        while not stop.is_set():
            written, wait_s = runner.step(timeout_ms=500)
            progress.show({"written": runner.written, "undecodable": runner.undecodable}, idle=written == 0,
                          idle_note="waiting for new records")
            if wait_s:
                stop.wait(wait_s)
    except KeyboardInterrupt:
        pass
    finally:
        ops.stop()
        runner.close()
    return 0
