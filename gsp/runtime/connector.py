"""`gsp connect run CONFIG.json`: one source connector as its own process (standalone mode).

The config is validated and built by the connector's plugin (connectors.plugins), the same as a connector run
by `gsp connect worker`: "connector.class" names it (vn.gsp.connect.SqlSourceConnector or sql-source, ...),
or, in a config written before plugins, "type": "sql" (the default: a table, or several "tables", in
timestamp+incrementing order, optionally with a soft-delete column), "outbox" (a Debezium-style outbox table)
or "file" (a directory of dropped CSV or JSON Lines files). It names the dataset and how the source's columns
map to the contract; "source_system" overrides the dataset's declared one (one dataset fed by several systems:
event ids derive from it). Every mistake in it is one line naming every bad field. The process runs all of
the connector's partitions in one task; each partition's position is stored under its position key, so the
same connector later run by workers resumes where this process stopped. Kafka and the registry come from
GSP_KAFKA_BOOTSTRAP and GSP_SCHEMA_REGISTRY_URL, or from a running `gsp serve` ($GSP_HOME/runtime.json).

Outages of the source or the broker do not end the process: the runner backs off, /health says what is
down, and it resumes from its stored position (see connectors.runner).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from kafka import KafkaProducer
from prometheus_client import CollectorRegistry

from connectors.config_def import ConfigInvalid, missing_message
from connectors.file_source import FileSource
from connectors.metrics import ConnectorMetrics
from connectors.plugins import PLUGINS, CannotStart, Plugin, SourcePlugin, TaskContext, plugin_for
from gsp.errors import UserError
from gsp.runtime.embedded import wait_for_kafka
from gsp.runtime.process import Progress, endpoints, read_json_object, start_ops, stop_on_sigterm
from schemas import topics
from schemas.codec import Codec
from schemas.registry import RegistryClient
from schemas.settings import Settings, kafka_producer_config

__all__ = ["read_standalone", "run_connector"]

log = logging.getLogger("gsp.connect")
_TYPES = {"sql": "sql-source", "outbox": "outbox-source", "file": "file-source"}  # a config's "type" before plugins


def read_standalone(path: Path, *, kind: str, types: dict[str, str], default_type: str) -> tuple[Plugin, dict[str, Any]]:
    """A standalone config file's plugin and its config (with connector.class); one line for every mistake.

    Without connector.class the config's "type" (``default_type`` when absent) names the plugin by ``types``."""
    config = read_json_object(path)
    if "connector.class" in config:
        try:
            plugin = plugin_for(config)
        except UserError as exc:
            raise UserError(f"{path}: {exc}") from None
        if plugin.kind != kind:
            raise UserError(f"{path}: {plugin.class_name} is a {plugin.kind} connector, not a {kind}")
        return plugin, config
    named = config.pop("type", default_type)
    if not isinstance(named, str) or named not in types:
        raise UserError(f"{path}: unknown connector type {named!r}; known: {', '.join(types)}")
    plugin = PLUGINS[types[named]]
    return plugin, {**config, "connector.class": plugin.class_name}


def _parse(path: Path, plugin: Plugin, config: dict[str, Any], *, name_required: bool) -> dict[str, Any]:
    errors = plugin.config_def.validate(config)
    if name_required and config.get("name") is None:
        errors["name"] = [missing_message("name")]
    if errors:
        raise UserError(f"{path}: {ConfigInvalid(errors)}")
    return plugin.parse(config)


def run_connector(settings: Settings, config_path: Path, *, once: bool = False, port: int = 0) -> int:
    """Publish the source's records; with ``once``, stop when it is drained."""
    plugin, raw = read_standalone(config_path, kind="source", types=_TYPES, default_type="sql")
    assert isinstance(plugin, SourcePlugin)
    name = _parse(config_path, plugin, raw, name_required=True)["name"]
    [task_config] = plugin.task_configs(raw, 1)  # standalone: one task runs every partition
    config = plugin.parse(task_config)
    metrics_registry = CollectorRegistry()
    metrics = ConnectorMetrics.create(metrics_registry)
    # The connector's own sources first: a mistake in the config is reported even before a platform runs.
    try:
        sources = plugin.open_sources(name, config, metrics=metrics)
    except CannotStart as exc:
        raise UserError(f"{config_path}: {exc}") from None
    producer: KafkaProducer | None = None
    try:
        bootstrap, registry_url = endpoints(settings, what="connector")
        wait_for_kafka(bootstrap, timeout_s=10)
        registry = RegistryClient(registry_url, token=None if settings.schema_registry_url else settings.credential(),
                                  cafile=settings.tls_ca)
        producer = KafkaProducer(**kafka_producer_config(settings, bootstrap))
        ctx = TaskContext(settings=settings, bootstrap=bootstrap, registry=registry,
                          codec=Codec(resolve=registry.schema_by_id), producer=producer, metrics=metrics)
        task = plugin.source_task(name, 0, config, sources, ctx)
    except BaseException as exc:
        for source in sources:
            source.close()
        if producer is not None:
            producer.close()
        if isinstance(exc, CannotStart):
            raise UserError(f"{config_path}: {exc}") from None
        raise
    ops = start_ops(settings, metrics_registry, task.health, port=port, title=f"GSP connector {name}")
    stop = stop_on_sigterm()
    dataset = config["dataset"]
    print(f"gsp: connector {name} -> {topics.raw(dataset)}; metrics and health on http://127.0.0.1:{ops.port}",
          file=sys.stderr, flush=True)
    progress = Progress(name)
    files = [s for s in sources if isinstance(s, FileSource)]
    try:
        while not stop.is_set():
            handled, wait_s = task.step()
            counts = {"published": task.published, "quarantined": task.quarantined}
            if files:
                counts |= {"files done": sum(s.files["done"] for s in files),
                           "files rejected": sum(s.files["rejected"] for s in files)}
            progress.show(counts, idle=task.drained, force=once,
                          idle_note=plugin.drained_note + ("" if once else ", waiting for more"))
            if task.drained and once:
                break
            if handled == 0:
                stop.wait(wait_s)
    except KeyboardInterrupt:
        pass
    finally:
        ops.stop()
        task.close()
        producer.close()
    return 0
