"""Kafka Connect's REST API over the cluster's shared state, at the root of the control plane like the registry.

    routes = connect_routes(ConnectCluster(store, ConnectOffsets(bootstrap, producer_config=...)))

Paths, bodies and status codes follow Kafka Connect's (https://kafka.apache.org/documentation/#connect_rest,
KIP-875 for offsets and stop), so its clients and scripts work unchanged; errors are
``{"error_code": <status>, "message": "<one line>"}``. A write returns once the cluster's compacted topics
hold it (`connectors.cluster.ClusterStore` reads its own writes); the workers act on it from there. Configs and
target states are stored in the control plane's database first (`gsp.governance.connectors`), from which a
restarted embedded broker gets them back.

Offsets: a source task's positions live on ``gsp.connect.offsets`` under
``position_key(connector, partition)``; a sink's are the committed offsets of the consumer group
``gsp-connect-<name>``. They can be altered or reset only while the connector is STOPPED, as KIP-875 says.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from connectors.cluster import ClusterStore
from connectors.plugins import PLUGINS, ConfigInvalid, Plugin, plugin_for, sink_group
from gsp.errors import NotFound, UserError
from gsp.governance.connectors import ConnectorRecords
from gsp.http.connect_offsets import ConnectOffsets
from gsp.http.errors import BadRequest
from gsp.http.routes import Body, Call, Query, Route, in_thread

__all__ = ["ConnectCluster", "ConnectError", "ConnectOffsets", "connect_routes"]

log = logging.getLogger("gsp.connect")

STOPPED = "STOPPED"


class ConnectError(BaseModel):
    """Kafka Connect's error body: the status again, and one line saying what was wrong."""

    error_code: int
    message: str


class ConnectorRequest(Body):
    """A connector to create, as Kafka Connect takes it (``initial_state`` from KIP-980)."""

    name: str = Field(min_length=1, description="the connector's name, unique in the cluster")
    config: dict[str, Any] = Field(description="connector.class, tasks.max and the plugin's own settings")
    initial_state: Literal["RUNNING", "PAUSED", "STOPPED"] | None = Field(
        default=None, description="the target state it starts in (default RUNNING)")


class ConnectorConfig(BaseModel):
    """A connector's config as a flat JSON object: connector.class, tasks.max and the plugin's own settings
    (values as Kafka Connect takes them: text, or JSON numbers, booleans and lists)."""

    model_config = ConfigDict(extra="allow")

    connector_class: Any = Field(default=None, alias="connector.class",
                                 description="the plugin: its class, e.g. vn.gsp.connect.SqlSourceConnector, or alias")
    name: Any = Field(default=None, description="the connector's name; the one in the URL when set")
    tasks_max: Any = Field(default=None, alias="tasks.max", description="the most tasks its work is split into (1)")

    def as_config(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_unset=True)


class PartitionOffset(Body):
    partition: dict[str, Any] = Field(description='a source partition ({"table": ...}) or, for a sink, '
                                                  '{"kafka_topic", "kafka_partition"}')
    offset: dict[str, Any] | None = Field(description='the position; for a sink {"kafka_offset"}; null: reset it')


class OffsetsRequest(Body):
    offsets: list[PartitionOffset]


class Conflict(Exception):
    http_status = 409


class NotStopped(BadRequest):
    """KIP-875: offsets change only while nothing runs that would overwrite them."""

    def __init__(self, name: str) -> None:
        super().__init__("Connectors must be in the STOPPED state before their offsets can be modified. This can be "
                         f"done for the specified connector by issuing a 'PUT' request to the '/connectors/{name}/stop' "
                         "endpoint")


@dataclass(frozen=True)
class ConnectCluster:
    """What the REST API works on: the cluster's configs, target states and statuses, and the offsets; its
    writes go to ``records`` (the control plane's database, which outlives the broker) before the topics."""

    store: ClusterStore
    offsets: ConnectOffsets
    records: ConnectorRecords | None = None  # None: no database (the API's own tests)


def _answer(exc: Exception, status: int) -> web.Response:
    """Kafka Connect's error body. Kafka Connect answers 400 where the platform would say 422."""
    if isinstance(exc, ConfigInvalid) or status == 422:
        status = 400
    message = " ".join(str(exc).split()) if status != 500 else "internal error; see the server's log"
    return web.json_response({"error_code": status, "message": message}, status=status)


def _plugin_named(name: Any) -> Plugin | None:
    """A plugin by its class name, simple name or alias, as Kafka Connect's paths take it; None if none is."""
    try:
        return plugin_for(name) if isinstance(name, str) else None
    except UserError:
        return None


def _checked(name: str, config: Mapping[str, Any]) -> tuple[dict[str, Any], Plugin]:
    """The config to store (its "name" set to the connector's) and its plugin; 400 listing every bad field."""
    if config.get("name", name) != name:
        raise BadRequest(f"Connector name configuration ({config['name']}) doesn't match connector name in the URL "
                         f"({name})")
    stored = {**config, "name": name}
    try:
        plugin = plugin_for(stored)
    except UserError as exc:
        raise BadRequest(str(exc)) from None
    errors = {key: found for key, found in plugin.config_def.validate(stored).items() if found}
    if errors:
        count = sum(len(found) for found in errors.values())
        raise BadRequest(f"Connector configuration is invalid and contains the following {count} error(s): "
                         f"{ConfigInvalid(errors)}. "
                         f"You can also find the above list of errors at the endpoint "
                         f"`/connector-plugins/{plugin.class_name}/config/validate`")
    return stored, plugin


def _task_configs(cluster: ConnectCluster, name: str, config: dict[str, Any]) -> list[dict[str, Any]]:
    """The connector's tasks as its plugin splits the work, as the workers split it (gsp.runtime.connect_worker);
    none while it is stopped, as in Kafka Connect."""
    if cluster.store.target_state(name) == STOPPED:
        return []
    plugin = plugin_for(config)
    return plugin.task_configs(config, int(plugin.parse(config)["tasks.max"]))


def _info(cluster: ConnectCluster, name: str, config: dict[str, Any]) -> dict[str, Any]:
    """Kafka Connect's ConnectorInfo."""
    tasks = _task_configs(cluster, name, config)
    return {"name": name, "config": config, "tasks": [{"connector": name, "task": i} for i in range(len(tasks))],
            "type": plugin_for(config).kind}


def _config(store: ClusterStore, name: str) -> dict[str, Any]:
    config = store.config(name)
    if config is None:
        raise NotFound(f"Connector {name} not found")
    return config


def _task_id(call: Call) -> int:
    text = call.path["task"]
    if not (text.isascii() and text.isdigit()):
        raise NotFound(f"Task {call.path['name']}-{text} not found")
    return int(text)


def connect_routes(cluster: ConnectCluster) -> list[Route]:
    """Kafka Connect's endpoints, in its paths, bodies and status codes."""
    store, offsets, records = cluster.store, cluster.offsets, cluster.records

    def list_connectors(expand: list[str]) -> Any:
        names = store.connectors()
        if not expand:
            return names
        out: dict[str, dict[str, Any]] = {}
        for name in names:
            config = store.config(name)
            if config is None:  # deleted meanwhile
                continue
            out[name] = {}
            if "status" in expand:
                out[name]["status"] = store.status(name)
            if "info" in expand:
                out[name]["info"] = _info(cluster, name, config)
        return out

    async def get_connectors(call: Call) -> Any:
        expand = [value for value in call.request.query.getall("expand", []) if value in ("status", "info")]
        return await in_thread(list_connectors, expand)

    def create(name: str, config: Mapping[str, Any], initial_state: str | None) -> dict[str, Any]:
        if store.config(name) is not None:
            raise Conflict(f"Connector {name} already exists")
        stored, _ = _checked(name, config)
        if records is not None:
            records.save(name, stored, target_state=initial_state if initial_state in ("PAUSED", STOPPED) else "STARTED")
        if initial_state in ("PAUSED", STOPPED):  # before the config, so no worker starts it meanwhile
            store.set_target_state(name, initial_state)
        store.put_config(name, stored)
        log.info("connector created", extra={"connector": name, "class": stored.get("connector.class")})
        return _info(cluster, name, stored)

    async def post_connector(call: Call) -> web.Response:
        name = call.body.name.strip()
        if "/" in name:
            raise BadRequest("connector name should not contain '/'")
        info = await in_thread(create, name, call.body.config, call.body.initial_state)
        return web.json_response(info, status=201, headers={"Location": f"/connectors/{name}"})

    async def get_connector(call: Call) -> dict[str, Any]:
        name = call.path["name"]
        return await in_thread(lambda: _info(cluster, name, _config(store, name)))

    async def get_config(call: Call) -> dict[str, Any]:
        return await in_thread(_config, store, call.path["name"])

    def put(name: str, config: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        stored, _ = _checked(name, config)
        created = store.config(name) is None
        if records is not None:  # a new one in the target state the topic holds for it (STARTED unless set)
            records.save(name, stored, target_state=store.target_state(name) if created else None)
        store.put_config(name, stored)
        log.info("connector %s", "created" if created else "updated", extra={"connector": name})
        return _info(cluster, name, stored), created

    async def put_config(call: Call) -> web.Response:
        info, created = await in_thread(put, call.path["name"], call.body.as_config())
        return web.json_response(info, status=201 if created else 200)

    def status_of(name: str) -> dict[str, Any]:
        _config(store, name)
        return store.status(name)

    async def get_status(call: Call) -> dict[str, Any]:
        return await in_thread(status_of, call.path["name"])

    async def get_tasks(call: Call) -> list[dict[str, Any]]:
        name = call.path["name"]

        def tasks() -> list[dict[str, Any]]:
            return [{"id": {"connector": name, "task": i}, "config": task}
                    for i, task in enumerate(_task_configs(cluster, name, _config(store, name)))]

        return await in_thread(tasks)

    async def get_task_status(call: Call) -> dict[str, Any]:
        name, task = call.path["name"], _task_id(call)
        found = [t for t in (await in_thread(status_of, name))["tasks"] if t.get("id") == task]
        if not found:
            raise NotFound(f"No status found for task {name}-{task}")
        return found[0]

    def restart_task(name: str, task: int) -> None:
        config = _config(store, name)
        if not 0 <= task < len(_task_configs(cluster, name, config)):
            raise NotFound(f"Task {name}-{task} not found")
        store.request_restart(name, include_tasks=False, only_failed=False, task=task)

    async def post_task_restart(call: Call) -> web.Response:
        await in_thread(restart_task, call.path["name"], _task_id(call))
        return web.Response(status=204)

    def target(name: str, state: str) -> None:
        _config(store, name)
        if records is not None:
            records.set_target_state(name, state)
        store.set_target_state(name, state)
        log.info("connector target state set", extra={"connector": name, "state": state})

    def target_route(state: str) -> Any:
        async def handler(call: Call) -> web.Response:
            await in_thread(target, call.path["name"], state)
            return web.Response(status=202)

        return handler

    def restart(name: str, include_tasks: bool, only_failed: bool) -> dict[str, Any]:
        status = status_of(name)
        store.request_restart(name, include_tasks=include_tasks, only_failed=only_failed)
        # Kafka Connect's answer: the status, RESTARTING where a restart was asked for.
        connector = dict(status["connector"])
        if not only_failed or connector.get("state") == "FAILED":
            connector["state"] = "RESTARTING"
        tasks = [{**task, "state": "RESTARTING"} if include_tasks and (not only_failed or task.get("state") == "FAILED")
                 else task for task in status["tasks"]]
        return {**status, "connector": connector, "tasks": tasks}

    async def post_restart(call: Call) -> web.Response:
        include_tasks, only_failed = call.query["includeTasks"], call.query["onlyFailed"]
        answer = await in_thread(restart, call.path["name"], include_tasks, only_failed)
        if not include_tasks and not only_failed:  # the plain restart of the connector alone
            return web.Response(status=204)
        return web.json_response(answer, status=202)

    def kind_of(name: str) -> str:
        return plugin_for(_config(store, name)).kind

    def read_offsets(name: str) -> dict[str, Any]:
        found = offsets.source(name) if kind_of(name) == "source" else offsets.sink(name)
        return {"offsets": found}

    async def get_offsets(call: Call) -> dict[str, Any]:
        return await in_thread(read_offsets, call.path["name"])

    def stopped_kind(name: str) -> str:
        kind = kind_of(name)
        if store.target_state(name) != STOPPED:
            raise NotStopped(name)
        return kind

    def alter_offsets(name: str, body: OffsetsRequest) -> dict[str, str]:
        kind = stopped_kind(name)
        if not body.offsets:
            raise BadRequest("Partitions / offsets need to be provided for an alter offsets request")
        if kind == "source":
            offsets.alter_source(name, [(o.partition, o.offset) for o in body.offsets])
            log.info("source offsets altered", extra={"connector": name, "partitions": len(body.offsets)})
            return {"message": "The Connect framework-managed offsets for this connector have been altered "
                               "successfully. However, if this connector manages offsets externally, they will need "
                               "to be manually altered in the system that the connector uses."}
        offsets.alter_sink(name, [(o.partition, o.offset) for o in body.offsets])
        log.info("sink offsets altered", extra={"connector": name, "partitions": len(body.offsets)})
        return {"message": "The offsets for this connector have been altered successfully"}

    async def patch_offsets(call: Call) -> dict[str, str]:
        return await in_thread(alter_offsets, call.path["name"], call.body)

    def reset_offsets(name: str) -> dict[str, str]:
        if stopped_kind(name) == "source":
            reset = offsets.reset_source(name)
            log.info("source offsets reset", extra={"connector": name, "partitions": reset})
            return {"message": "The Connect framework-managed offsets for this connector have been reset "
                               "successfully. However, if this connector manages offsets externally, they will need "
                               "to be manually reset in the system that the connector uses."}
        offsets.reset_sink(name)
        log.info("sink offsets reset", extra={"connector": name, "group": sink_group(name)})
        return {"message": "The offsets for this connector have been reset successfully"}

    async def delete_offsets(call: Call) -> dict[str, str]:
        return await in_thread(reset_offsets, call.path["name"])

    def delete(name: str) -> None:
        _config(store, name)
        if records is not None:
            records.delete(name)
        store.delete(name)
        log.info("connector deleted", extra={"connector": name})

    async def delete_connector(call: Call) -> web.Response:
        await in_thread(delete, call.path["name"])
        return web.Response(status=204)

    async def get_plugins(call: Call) -> list[dict[str, str]]:
        return [p.info() for p in sorted(PLUGINS.values(), key=lambda p: p.class_name)]

    def plugin_of(call: Call) -> Plugin:
        plugin = _plugin_named(call.path["type"])
        if plugin is None:
            raise NotFound(f"Unknown plugin {call.path['type']}.")
        return plugin

    async def get_plugin_config(call: Call) -> list[dict[str, Any]]:
        return [c["definition"] for c in plugin_of(call).validation_body({})["configs"]]

    async def validate(call: Call) -> dict[str, Any]:
        plugin = plugin_of(call)
        config = call.body.as_config()
        given = config.setdefault("connector.class", plugin.class_name)
        if _plugin_named(given) is not plugin:
            raise BadRequest(f"Included connector type {given} does not match request type {call.path['type']}")
        return plugin.validation_body(config)

    def route(method: str, path: str, handler: Any, summary: str, responds: str, *, status: int = 200,
              body: type[BaseModel] | None = None, query: tuple[Query, ...] = (), tag: str = "connect") -> Route:
        return Route(method, path, handler, summary=summary, tag=tag, body=body, responds=responds, status=status,
                     query=query, errors=_answer, error_body=ConnectError)

    expand = Query("expand", "status or info (repeatable): a map of each connector's status or info")
    include_tasks = Query("includeTasks", "restart the tasks too", kind="boolean", default=False)
    only_failed = Query("onlyFailed", "restart only what is FAILED", kind="boolean", default=False)
    one = "/connectors/{name}"
    return [
        route("GET", "/connectors", get_connectors, "Connectors", "their names; with expand, a map of name to "
              "{status, info}", query=(expand,)),
        route("POST", "/connectors", post_connector, "Create a connector", "{name, config, tasks, type} (201)",
              status=201, body=ConnectorRequest),
        route("GET", one, get_connector, "A connector", "{name, config, tasks, type}"),
        route("GET", f"{one}/config", get_config, "A connector's config", "the config"),
        route("PUT", f"{one}/config", put_config, "Create or update a connector",
              "{name, config, tasks, type}: 201 created, 200 updated", body=ConnectorConfig),
        route("GET", f"{one}/status", get_status, "A connector's and its tasks' states",
              "{name, connector: {state, worker_id, trace?}, tasks: [{id, state, worker_id, trace?}], type}"),
        route("GET", f"{one}/tasks", get_tasks, "A connector's tasks", "[{id: {connector, task}, config}]"),
        route("GET", f"{one}/tasks/{{task}}/status", get_task_status, "One task's state",
              "{id, state, worker_id, trace?}"),
        route("POST", f"{one}/tasks/{{task}}/restart", post_task_restart, "Restart one task", "nothing (204)",
              status=204),
        route("PUT", f"{one}/pause", target_route("PAUSED"), "Pause a connector and its tasks", "nothing (202)",
              status=202),
        route("PUT", f"{one}/resume", target_route("STARTED"), "Resume a paused or stopped connector",
              "nothing (202)", status=202),
        route("PUT", f"{one}/stop", target_route(STOPPED), "Stop a connector: its tasks end (KIP-875)",
              "nothing (202)", status=202),
        route("POST", f"{one}/restart", post_restart, "Restart a connector, and its tasks with includeTasks",
              "nothing (204); with includeTasks or onlyFailed, 202 and the status, RESTARTING where asked",
              status=202, query=(include_tasks, only_failed)),
        route("GET", f"{one}/offsets", get_offsets, "A connector's offsets (KIP-875)",
              "{offsets: [{partition, offset}]}"),
        route("PATCH", f"{one}/offsets", patch_offsets, "Alter a stopped connector's offsets (KIP-875)",
              "{message}", body=OffsetsRequest),
        route("DELETE", f"{one}/offsets", delete_offsets, "Reset a stopped connector's offsets (KIP-875)",
              "{message}"),
        route("DELETE", one, delete_connector, "Delete a connector", "nothing (204)", status=204),
        route("GET", "/connector-plugins", get_plugins, "Connector plugins", "[{class, type, version}]"),
        route("GET", "/connector-plugins/{type}/config", get_plugin_config, "A plugin's settings",
              "[{name, type, required, default_value, importance, documentation, group, ...}]"),
        route("PUT", "/connector-plugins/{type}/config/validate", validate, "Validate a config against a plugin",
              "{name, error_count, groups, configs: [{definition, value: {name, value, errors, ...}}]}",
              body=ConnectorConfig),
    ]

