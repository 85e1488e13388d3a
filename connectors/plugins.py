"""Connector plugins: each connector type declares its settings once, how its work splits and how a task starts.

A plugin's :class:`ConfigDef` validates a connector's config (every bad field at once) and renders Kafka
Connect's validate answer. ``task_configs`` splits the connector: a SQL source into groups of its tables and a
file source into groups of its directories (round-robin into at most ``tasks.max`` tasks, as Kafka Connect's
JDBC source groups tables), an outbox source into one task, a sink into ``tasks.max`` consumers of one group
(at most one per partition of its topic). ``start_task`` builds a task from the existing runners: a source
task runs one :class:`~connectors.runner.SourceRunner` per partition (table or directory), a sink task one
:class:`~connectors.sink_runner.SinkRunner`.

Where a task resumes does not depend on where it runs: a source partition's position is stored in
``gsp.connect.offsets`` under :func:`position_key` (the runner keys positions by its source's name, so that
is the source's name), and every task of a sink connector is a member of consumer group
:func:`sink_group`. ``gsp connect run`` and ``gsp sink run`` (standalone mode) build through the same plugins.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from kafka import KafkaProducer
from kafka.errors import KafkaError

from connectors.backoff import first_line
from connectors.base import Sink, Source
from connectors.config_def import REQUIRED, ConfigDef, ConfigInvalid, ConfigKey, missing_message
from connectors.file_source import FORMATS, FileSource, FileSourceConfig
from connectors.metrics import ConnectorMetrics
from connectors.offsets import OffsetStore
from connectors.outbox_source import OutboxSource, OutboxSourceConfig
from connectors.runner import SourceRunner, Target
from connectors.sink_runner import SinkRunner
from connectors.sql_sink import SqlSink
from connectors.sql_source import SqlSource, SqlSourceConfig
from connectors.tasks import SinkTask, SourceTask, Task, TaskContext, file_counter, position_key, sink_group
from connectors.webhook_sink import TargetRefused, WebhookMetrics, WebhookSink, dead_letter_topic
from gsp.errors import UserError
from gsp.governance.topology import ensure_topics
from schemas import topics
from schemas.datasets import Dataset, declared
from schemas.registry import RegistryClient, RegistryClientError
from schemas.settings import kafka_consumer_config

__all__ = ["FILE_SOURCE", "OUTBOX_SOURCE", "PLUGINS", "REQUIRED", "SQL_SINK", "SQL_SOURCE", "VERSION", "WEBHOOK_SINK",
           "CannotStart", "ConfigDef", "ConfigInvalid", "ConfigKey", "DeadLetters", "Plugin", "SinkPlugin", "SinkTask",
           "SourcePlugin", "SourceTask", "Task", "TaskContext", "plugin_for", "position_key", "share_schema",
           "sink_group"]

log = logging.getLogger("gsp.connect")

VERSION = metadata.version("gsp-platform")
_DEAD_LETTER_ACK_TIMEOUT_S = 30


class CannotStart(UserError):
    """A task's source or sink cannot be used (database unreachable, no such table or directory, no contract)."""


# --- plugins -----------------------------------------------------------------------------------------------------


class Plugin:
    """One connector type: its declared settings and how its work splits into tasks."""
    kind = ""

    def __init__(self, name: str, class_name: str, keys: list[ConfigKey], *,
                 checks: list[Callable[[Mapping[str, Any]], dict[str, str]]] | None = None) -> None:
        self.name, self.class_name, self.version = name, class_name, VERSION
        simple = class_name.rsplit(".", 1)[-1]
        self.aliases = tuple(dict.fromkeys([name, class_name, simple, simple.removesuffix("Connector")]))
        self.config_def = ConfigDef(name, [*_common_keys(self), *keys], checks=checks or [])

    def info(self) -> dict[str, str]:
        """As GET /connector-plugins lists it."""
        return {"class": self.class_name, "type": self.kind, "version": self.version}

    def validation_body(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Kafka Connect's answer to PUT /connector-plugins/{type}/config/validate."""
        return self.config_def.validation_body(self.class_name, config)

    def parse(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """A connector or task config's typed values (a task's "task.id" aside); ConfigInvalid naming every bad field."""
        return self.config_def.parse({k: v for k, v in config.items() if k != "task.id"})

    def task_configs(self, config: Mapping[str, Any], max_tasks: int, *,
                     topic_partitions: int | None = None) -> list[dict[str, Any]]:
        raise NotImplementedError

    def start_task(self, connector: str, task_id: int, task_config: Mapping[str, Any], ctx: TaskContext) -> Task:
        raise NotImplementedError

    def partitions(self, config: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every source partition of a connector (or of one task's config); none for a sink."""
        return []

    def source_partitions(self, task_config: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The source partitions of one task (KIP-875's "partition"), e.g. [{"table": "subscriber"}]."""
        return self.partitions(task_config)

    def source_partition(self, task_config: Mapping[str, Any]) -> dict[str, Any]:
        """The partition of a task that has exactly one; ValueError for a task grouping several (or a sink)."""
        found = self.source_partitions(task_config)
        if len(found) != 1:
            raise ValueError(f"a {self.name} task with {len(found)} partitions; use source_partitions")
        return found[0]


Opener = Callable[[str, dict[str, Any], Dataset, dict[str, Any], Callable[[str], None]], Source]


class SourcePlugin(Plugin):
    """A source type. ``split`` = (list key, single key, partition field) when the work splits, e.g.
    ("tables", "table", "table"); None for one partition named by ``partition_of``."""
    kind = "source"

    def __init__(self, name: str, class_name: str, keys: list[ConfigKey], *, open_source: Opener,
                 split: tuple[str, str, str] | None, partition_of: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 drained_note: str) -> None:
        checks = [_one_of_set(split[0], split[1])] if split else []
        super().__init__(name, class_name, [*_source_keys(), *keys], checks=checks)
        self._open = open_source
        self._split = split
        self._partition_of = partition_of
        self.drained_note = drained_note

    def task_configs(self, config: Mapping[str, Any], max_tasks: int, *,
                     topic_partitions: int | None = None) -> list[dict[str, Any]]:
        parsed = self.parse(config)
        if self._split is None:
            return [{**config, "task.id": 0}]
        many, one, _ = self._split
        units = self._units(parsed)
        count = max(1, min(max_tasks, len(units)))
        base = {k: v for k, v in config.items() if k not in (many, one, "task.id")}
        return [{**base, many: units[i::count], "task.id": i} for i in range(count)]

    def partitions(self, config: Mapping[str, Any]) -> list[dict[str, Any]]:
        parsed = self.parse(config)
        if self._split is None:
            assert self._partition_of is not None
            return [self._partition_of(parsed)]
        return [{self._split[2]: unit} for unit in self._units(parsed)]

    def start_task(self, connector: str, task_id: int, task_config: Mapping[str, Any], ctx: TaskContext) -> SourceTask:
        config = self.parse(task_config)
        sources = self.open_sources(connector, config, metrics=ctx.metrics)
        return self.source_task(connector, task_id, config, sources, ctx)

    def open_sources(self, connector: str, config: dict[str, Any], *, metrics: ConnectorMetrics) -> list[Source]:
        """One source per partition of a parsed config, each named by its position key (no broker needed yet)."""
        dataset = declared()[config["dataset"]]
        opened: list[Source] = []
        try:
            for partition in self.partitions(config):
                name = position_key(connector, partition)
                opened.append(self._open(name, config, dataset, partition, file_counter(metrics, connector)))
        except BaseException as exc:
            for source in opened:
                source.close()
            if isinstance(exc, sa.exc.DBAPIError):
                raise CannotStart(f"source database unreachable: {first_line(exc.orig or exc)}") from None
            if isinstance(exc, ValueError | OSError | sa.exc.ArgumentError | ImportError):
                # no such table, column or directory; a bad URL or a missing driver
                raise CannotStart(first_line(exc)) from None
            raise
        return opened

    def source_task(self, connector: str, task_id: int, config: dict[str, Any], sources: list[Source],
                    ctx: TaskContext) -> SourceTask:
        """The started task over opened sources (they are closed if it cannot start)."""
        try:
            dataset = declared()[config["dataset"]]
            try:
                schema_id = ctx.registry.latest(topics.subject(topics.raw(dataset.name)))[0]
                issue_id = ctx.registry.latest(topics.subject(topics.quarantine(dataset.name)))[0]
            except RegistryClientError as exc:
                raise CannotStart(f"schema registry: {exc}") from None
            target = Target.of(dataset, schema_id=schema_id, quarantine_schema_id=issue_id,
                               source_system=config["source_system"])
            runners = [SourceRunner(source, target, producer=ctx.producer, codec=ctx.codec,
                                    offsets=OffsetStore(ctx.bootstrap, ctx.producer), metrics=ctx.metrics,
                                    batch_size=config["batch_size"], connector=connector, task=task_id)
                       for source in sources]
            task = SourceTask(connector, task_id, runners, sources, metrics=ctx.metrics,
                              poll_interval_s=config["poll_interval_s"])
            task.start()
        except BaseException:
            for source in sources:
                source.close()
            raise
        return task

    def _units(self, parsed: Mapping[str, Any]) -> list[str]:
        assert self._split is not None
        many, one, _ = self._split
        return list(dict.fromkeys([*(parsed[many] or []), *([parsed[one]] if parsed[one] else [])]))


@dataclass
class DeadLetters:
    """Sends a webhook sink's refused batches to ``dlq.<share topic>``, each waited for until the broker acked it."""
    topic: str
    producer: KafkaProducer | None = None

    def send(self, body: bytes, headers: dict[str, str]) -> None:
        if self.producer is None:
            raise RuntimeError("the dead-letter producer is not connected")
        future = self.producer.send(self.topic, key=headers.get("batch_id", "").encode(), value=body,
                                    headers=[(k, v.encode()) for k, v in headers.items()])
        future.get(timeout=_DEAD_LETTER_ACK_TIMEOUT_S)

    def connect(self, bootstrap: str, producer: KafkaProducer) -> None:
        try:
            ensure_topics(bootstrap, {self.topic: (1, {})})
        except KafkaError as exc:  # e.g. not allowed to create topics: the platform's topology may have made it
            log.warning("could not create the dead-letter topic", extra={"topic": self.topic, "error": first_line(exc)})
        self.producer = producer


def share_schema(registry: RegistryClient, topic: str) -> dict[str, Any]:
    """The share topic's contract from the registry; CannotStart when the subscription has none yet."""
    try:
        return dict(json.loads(registry.latest(topics.subject(topic))[2]))
    except RegistryClientError as exc:
        raise CannotStart(f"no contract for {topic} in the schema registry ({exc}); "
                          "is the subscription approved?") from None


SinkOpener = Callable[[str, dict[str, Any], "dict[str, Any] | None", DeadLetters, "WebhookMetrics | None"], Sink]


class SinkPlugin(Plugin):
    kind = "sink"

    def __init__(self, name: str, class_name: str, keys: list[ConfigKey], *, open_sink: SinkOpener) -> None:
        super().__init__(name, class_name, [*_sink_keys(), *keys])
        self._open = open_sink

    def task_configs(self, config: Mapping[str, Any], max_tasks: int, *,
                     topic_partitions: int | None = None) -> list[dict[str, Any]]:
        self.parse(config)
        count = max(1, min(max_tasks, topic_partitions or max_tasks))
        return [{**config, "task.id": i} for i in range(count)]

    def start_task(self, connector: str, task_id: int, task_config: Mapping[str, Any], ctx: TaskContext) -> SinkTask:
        config = self.parse(task_config)
        schema = share_schema(ctx.registry, config["topic"])
        dead_letters = DeadLetters(dead_letter_topic(config["topic"]))
        sink = self.open_sink(connector, task_id, config, schema=schema, dead_letters=dead_letters,
                              webhook_metrics=ctx.webhook_metrics)
        return self.sink_task(connector, task_id, config, sink, ctx, dead_letters=dead_letters)

    def open_sink(self, connector: str, task_id: int, config: dict[str, Any], *, schema: dict[str, Any] | None,
                  dead_letters: DeadLetters, webhook_metrics: WebhookMetrics | None) -> Sink:
        """The sink of a parsed config, named by the connector; a webhook sink needs no ``schema`` and no broker
        yet, its dead letters wait for :meth:`sink_task` to connect them."""
        return self._open(connector, config, schema, dead_letters, webhook_metrics)

    def sink_task(self, connector: str, task_id: int, config: dict[str, Any], sink: Sink, ctx: TaskContext, *,
                  dead_letters: DeadLetters) -> SinkTask:
        consumer_config = kafka_consumer_config(ctx.settings, ctx.bootstrap)
        try:
            if isinstance(sink, WebhookSink):
                dead_letters.connect(ctx.bootstrap, ctx.producer)
                # A flush retries for up to longest_flush_s; the group must not evict the consumer meanwhile.
                consumer_config["max_poll_interval_ms"] = max(int(str(consumer_config["max_poll_interval_ms"])),
                                                              int((sink.longest_flush_s + 30) * 1000))
            runner = SinkRunner(sink, topic=config["topic"], consumer_config=consumer_config, codec=ctx.codec,
                                metrics=ctx.metrics, group=sink_group(connector), max_records=config["max_records"],
                                connector=connector, task=task_id)
        except BaseException:
            sink.close()
            raise
        return SinkTask(connector, task_id, runner, sink, metrics=ctx.metrics)


# --- declared keys -----------------------------------------------------------------------------------------------


def _positive(name: str) -> Callable[[Any], str | None]:
    return lambda value: None if value > 0 else f"{name} must be a positive number"


def _known_dataset(value: str) -> str | None:
    known = declared()
    return None if value in known else f"unknown dataset {value!r}; known: {', '.join(known)}"


def _one_of_set(many: str, one: str) -> Callable[[Mapping[str, Any]], dict[str, str]]:
    """``many`` or ``one`` must be set (a refused value of either was reported already)."""
    def check(values: Mapping[str, Any]) -> dict[str, str]:
        if many in values and one in values and not values[many] and not values[one]:
            return {one: missing_message(one)}
        return {}
    return check


def _common_keys(plugin: Plugin) -> list[ConfigKey]:
    def names_this(value: str) -> str | None:
        return None if value in plugin.aliases else (
            f"connector.class {value!r} is not {plugin.name}: it takes {', '.join(plugin.aliases)}")
    return [
        ConfigKey(name="connector.class", type="STRING", importance="HIGH", validator=names_this,
                  documentation=f"The connector's type: {plugin.class_name} (or {', '.join(plugin.aliases[2:])}, "
                                f"{plugin.name})"),
        ConfigKey(name="name", type="STRING", default=None, importance="HIGH",
                  documentation="The connector's name (in the REST API, the same as the one in the URL)"),
        ConfigKey(name="tasks.max", type="INT", default=1, importance="HIGH", validator=_positive("tasks.max"),
                  documentation="The most tasks the connector's work is split into"),
    ]


def _source_keys() -> list[ConfigKey]:
    return [
        ConfigKey(name="dataset", type="STRING", importance="HIGH", group="Contract", validator=_known_dataset,
                  documentation="The declared dataset the records are published as (its raw topic and contract)"),
        ConfigKey(name="source_system", type="STRING", default=None, importance="MEDIUM", group="Contract",
                  documentation="Instead of the dataset's declared source system (one dataset fed by several "
                                "systems): event ids derive from it"),
        ConfigKey(name="columns", type="MAP", default={}, importance="MEDIUM", group="Contract",
                  documentation="Contract field path (residence.ward_code) -> source column or key; others keep "
                                "their name"),
        ConfigKey(name="poll_interval_s", type="DOUBLE", default=1.0, importance="LOW", group="Polling",
                  validator=_positive("poll_interval_s"),
                  documentation="Seconds between polls of a source that had nothing new"),
        ConfigKey(name="batch_size", type="INT", default=2000, importance="LOW", group="Polling",
                  validator=_positive("batch_size"), documentation="Most records published in one batch"),
    ]


def _database_url() -> ConfigKey:
    return ConfigKey(name="database_url", type="PASSWORD", importance="HIGH", group="Connection",
                     documentation="SQLAlchemy URL of the database (it may hold a password: shown hidden)")


def _sink_keys() -> list[ConfigKey]:
    def share_topic(value: str) -> str | None:
        return None if value.startswith("share.") else (
            f"topic {value!r} is not a subscription's share.<agency>.<dataset> topic")
    return [
        ConfigKey(name="topic", type="STRING", importance="HIGH", validator=share_topic,
                  documentation="The subscription's share.<agency>.<dataset> topic"),
        ConfigKey(name="max_records", type="INT", default=500, importance="LOW", validator=_positive("max_records"),
                  documentation="Most events written or POSTed in one batch"),
    ]


# --- the plugins -------------------------------------------------------------------------------------------------


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url, pool_pre_ping=True)  # after a database restart the pooled connections are dead


def _open_sql(name: str, config: dict[str, Any], dataset: Dataset, partition: dict[str, Any],
              on_file: Callable[[str], None]) -> Source:
    return SqlSource(_engine(config["database_url"]), SqlSourceConfig(
        name=name, table=partition["table"], key_column=config["key_column"],
        timestamp_column=config["timestamp_column"], incrementing_column=config["incrementing_column"],
        columns=config["columns"], soft_delete_column=config["soft_delete_column"]))


def _open_outbox(name: str, config: dict[str, Any], dataset: Dataset, partition: dict[str, Any],
                 on_file: Callable[[str], None]) -> Source:
    return OutboxSource(_engine(config["database_url"]), OutboxSourceConfig(
        name=name, aggregate_type=config["aggregate_type"] or dataset.name, table=partition["table"],
        incrementing_column=config["incrementing_column"], delete_types=tuple(config["delete_types"]),
        columns=config["columns"]))


def _open_file(name: str, config: dict[str, Any], dataset: Dataset, partition: dict[str, Any],
               on_file: Callable[[str], None]) -> Source:
    return FileSource(partition["directory"], FileSourceConfig(
        name=name, key_field=dataset.key, format=config["format"], columns=config["columns"], contract=dataset.avro),
        on_file=on_file)


def _open_sql_sink(name: str, config: dict[str, Any], schema: dict[str, Any] | None, dead_letters: DeadLetters,
                   webhook_metrics: WebhookMetrics | None) -> Sink:
    if schema is None:
        raise ValueError("a SQL sink needs the share topic's contract")
    topic = config["topic"]
    try:
        return SqlSink(_engine(config["database_url"]), name=name,
                       table=config["table"] or topic.replace(".", "_").replace("-", "_"), schema=schema)
    except sa.exc.DBAPIError as exc:
        raise CannotStart(f"sink database unreachable: {first_line(exc.orig or exc)}") from None
    except (sa.exc.ArgumentError, ImportError) as exc:  # a bad URL or a missing driver
        raise CannotStart(first_line(exc)) from None


def _open_webhook(name: str, config: dict[str, Any], schema: dict[str, Any] | None, dead_letters: DeadLetters,
                  webhook_metrics: WebhookMetrics | None) -> Sink:
    secret_file = Path(config["secret_file"])
    try:
        secret = secret_file.read_bytes().strip()
    except OSError as exc:
        raise CannotStart(f"cannot read the webhook secret {secret_file}: {exc.strerror}") from None
    if not secret:
        raise CannotStart(f"the webhook secret file {secret_file} is empty")
    try:
        return WebhookSink(config["url"], secret, name=name, topic=config["topic"], dead_letter=dead_letters.send,
                           metrics=webhook_metrics, max_attempts=config["max_attempts"],
                           rate_per_s=config["rate_per_s"], timeout_s=config["timeout_s"],
                           allow_http=config["allow_http"], allow_private_targets=config["allow_private_targets"])
    except (TargetRefused, ValueError) as exc:
        raise CannotStart(str(exc)) from None


def _key(name: str, type_: str, documentation: str, *, default: Any = REQUIRED, importance: str = "MEDIUM",
         group: str = "Source", validator: Callable[[Any], str | None] | None = None) -> ConfigKey:
    return ConfigKey(name=name, type=type_, default=default, importance=importance, documentation=documentation,
                     group=group, validator=validator)


def _file_format(value: str) -> str | None:
    known = sorted(set(FORMATS.values()))
    return None if value in known else f"unknown file format {value!r}; known: {', '.join(known)}"


SQL_SOURCE = SourcePlugin("sql-source", "vn.gsp.connect.SqlSourceConnector", [
    _database_url(),
    _key("table", "STRING", "A table to publish (or tables)", default=None, importance="HIGH"),
    _key("tables", "LIST", "Tables to publish, each its own partition; tasks take them round-robin", default=None,
         importance="HIGH"),
    _key("key_column", "STRING", "The column holding the record's key", importance="HIGH"),
    _key("timestamp_column", "STRING", "Modification time in epoch milliseconds: rows are read in "
         "(timestamp, incrementing) order", default="updated_at"),
    _key("incrementing_column", "STRING", "A strictly increasing id, the tie-breaker", default="id"),
    _key("soft_delete_column", "STRING", "A row with a value there other than NULL, false, 0 or empty is published "
         "as a delete", default=None),
], open_source=_open_sql, split=("tables", "table", "table"), drained_note="the table is drained")

OUTBOX_SOURCE = SourcePlugin("outbox-source", "vn.gsp.connect.OutboxSourceConnector", [
    _database_url(),
    _key("table", "STRING", "The outbox table (columns id, aggregatetype, aggregateid, type, payload)",
         default="outbox"),
    _key("aggregate_type", "STRING", "The rows to publish (default: the dataset's name)", default=None),
    _key("delete_types", "LIST", "Row types (case-insensitive) published as deletes", default=["deleted"]),
    _key("incrementing_column", "STRING", "The column read in order", default="id"),
], open_source=_open_outbox, split=None, partition_of=lambda config: {"table": config["table"]},
    drained_note="the outbox is drained")

FILE_SOURCE = SourcePlugin("file-source", "vn.gsp.connect.FileSourceConnector", [
    _key("directory", "STRING", "A directory senders drop complete CSV or JSON Lines files into (or directories)",
         default=None, importance="HIGH"),
    _key("directories", "LIST", "Directories, each its own partition; tasks take them round-robin", default=None,
         importance="HIGH"),
    _key("format", "STRING", "csv or jsonl for every file; default by extension (.csv, .jsonl, .ndjson)",
         default=None, validator=_file_format),
], open_source=_open_file, split=("directories", "directory", "directory"), drained_note="no complete file left")

SQL_SINK = SinkPlugin("sql-sink", "vn.gsp.connect.SqlSinkConnector", [
    _database_url(),
    _key("table", "STRING", "The table rows are upserted into by event id (default: the topic, dots as "
         "underscores)", default=None, group="Sink"),
], open_sink=_open_sql_sink)

WEBHOOK_SINK = SinkPlugin("webhook-sink", "vn.gsp.connect.WebhookSinkConnector", [
    _key("url", "STRING", "The agency's HTTPS endpoint", importance="HIGH", group="Webhook"),
    _key("secret_file", "STRING", "A file holding the agency's webhook secret", importance="HIGH", group="Webhook"),
    _key("max_attempts", "INT", "POSTs of one batch before it goes to the dead letter", default=8, group="Webhook",
         validator=_positive("max_attempts")),
    _key("rate_per_s", "DOUBLE", "Most POSTs a second", default=10.0, group="Webhook",
         validator=_positive("rate_per_s")),
    _key("timeout_s", "DOUBLE", "Seconds to connect and to read", default=10.0, group="Webhook",
         validator=_positive("timeout_s")),
    _key("allow_http", "BOOLEAN", "Allow http:// (loopback tests and demos)", default=False, importance="LOW",
         group="Webhook"),
    _key("allow_private_targets", "BOOLEAN", "Allow loopback and private addresses (tests and demos)", default=False,
         importance="LOW", group="Webhook"),
], open_sink=_open_webhook)

PLUGINS: dict[str, Plugin] = {p.name: p for p in (SQL_SOURCE, OUTBOX_SOURCE, FILE_SOURCE, SQL_SINK, WEBHOOK_SINK)}
_BY_ALIAS = {alias: p for p in PLUGINS.values() for alias in p.aliases}


def plugin_for(config: Mapping[str, Any] | str) -> Plugin:
    """The plugin a config's connector.class names (class name, simple name or alias; or that name itself)."""
    named = config if isinstance(config, str) else config.get("connector.class")
    if named is None:
        raise UserError("connector.class is not set; known: " + ", ".join(p.class_name for p in PLUGINS.values()))
    plugin = _BY_ALIAS.get(named) if isinstance(named, str) else None
    if plugin is None:
        raise UserError(f"unknown connector.class {named!r}; known: "
                        + ", ".join(p.class_name for p in PLUGINS.values()))
    return plugin
