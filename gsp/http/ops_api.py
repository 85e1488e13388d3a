"""What the console's operations page shows: connectors with their tasks' throughput and lag, and the workers.

    routes = ops_api_routes(connect, bootstrap=bootstrap, app_id=settings.app_id)

``GET /api/ops/connectors``: every connector's Kafka Connect status (its tasks' status records carry the
worker's ``"gsp"`` throughput figures, see :mod:`gsp.runtime.connect_worker`), its target state, and its
lag: for a sink, the records of its topic its consumer group (``gsp-connect-<name>``) has not committed, as
the broker counts them; for a source, unknown (the rows still waiting in its database are not counted by
anyone), and said so.

``GET /api/ops/workers``: the stream workers' consumer group (``settings.app_id``) and the connector workers'
(``gsp-connect-workers``) as the broker describes them: their members, each member's partitions when the
broker reports them (the embedded broker does not: then ``assignments`` says so), and each group's
uncommitted records per topic and partition. The connector workers also appear as the cluster's status
records name them, with the tasks each one reports, so a worker that left the group while its statuses
still name it shows as such.

Each call asks the broker with short-lived clients of its own, from a thread; nothing stays connected.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from connectors.backoff import first_line
from connectors.plugins import plugin_for, sink_group
from gsp.http.connect import ConnectCluster
from gsp.http.routes import Call, Route, in_thread
from gsp.runtime.connect_worker import GROUP as CONNECT_GROUP
from schemas import topics

__all__ = ["ops_api_routes"]

_MEMBER_SUFFIX = re.compile(r"-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SOURCE_LAG_UNKNOWN = "rows waiting in the source are not counted"


class _Admin(KafkaAdminClient):
    """kafka-python asks DescribeGroups for the authorised operations and fails on a value it does not know
    (the embedded broker answers 15); they are not used here."""

    def _process_acl_operations(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj.pop("authorized_operations", None)
        return obj


class _Broker:
    """One request's clients: an admin client and a consumer for end offsets, closed together."""

    def __init__(self, bootstrap: str) -> None:
        self.admin = _Admin(bootstrap_servers=bootstrap, client_id="gsp-ops")
        try:
            self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="gsp-ops", enable_auto_commit=False)
        except Exception:
            self.admin.close()
            raise

    def __enter__(self) -> _Broker:
        return self

    def __exit__(self, *_: object) -> None:
        self.consumer.close()
        self.admin.close()

    def partitions(self, topic: str) -> list[TopicPartition]:
        return [TopicPartition(topic, p) for p in sorted(self.consumer.partitions_for_topic(topic) or ())]

    def lag(self, group: str, *, topics_of_group: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
        """{topic: {"records", "partitions": {p: {"committed", "end", "lag"}}}} for every partition the group
        committed, and every partition of ``topics_of_group`` (counted from its beginning when never committed)."""
        committed = {tp: c.offset for tp, c in self.admin.list_group_offsets(group).get(group, {}).items()
                     if c.offset is not None and c.offset >= 0}
        wanted = set(committed)
        for topic in topics_of_group:
            wanted.update(self.partitions(topic))
        if not wanted:
            return {}
        ordered = sorted(wanted)
        end = self.consumer.end_offsets(ordered)
        start = self.consumer.beginning_offsets([tp for tp in ordered if tp not in committed]) \
            if len(committed) < len(ordered) else {}
        out: dict[str, dict[str, Any]] = {}
        for tp in ordered:
            position = committed.get(tp, start.get(tp, 0))
            behind = max(0, (end.get(tp) or 0) - position)
            found = out.setdefault(tp.topic, {"records": 0, "partitions": {}})
            found["records"] += behind
            found["partitions"][str(tp.partition)] = {"committed": committed.get(tp), "end": end.get(tp),
                                                      "lag": behind}
        return out

    def group(self, group: str) -> dict[str, Any]:
        """The group as the broker describes it, with its uncommitted records per topic."""
        out: dict[str, Any] = {"group": group, "state": None, "members": [], "assignments": "reported by the broker",
                               "lag": {}, "error": None}
        try:
            described = self.admin.describe_groups([group]).get(group, {})
            out["state"] = described.get("group_state")
            reported = False
            for member in described.get("members", []):
                partitions = _assignment(member.get("member_assignment"))
                reported = reported or partitions is not None
                member_id = str(member.get("member_id", ""))
                out["members"].append({"member_id": member_id,
                                       "client_id": member.get("client_id") or _MEMBER_SUFFIX.sub("", member_id),
                                       "host": member.get("client_host") or None, "partitions": partitions})
            if out["members"] and not reported:
                out["assignments"] = "not reported by the broker"
            out["members"].sort(key=lambda m: (m["client_id"], m["member_id"]))
            out["lag"] = self.lag(group)
        except (KafkaError, OSError) as exc:
            out["error"] = first_line(exc)
        return out


def _assignment(raw: Any) -> dict[str, list[int]] | None:
    """A member's partitions from kafka-python's decoded ConsumerProtocolAssignment; None if none was reported."""
    assigned = getattr(raw, "assigned_partitions", None)
    if not assigned:
        return None
    out: dict[str, list[int]] = {}
    for entry in assigned:
        topic = getattr(entry, "topic", None)
        partitions = getattr(entry, "partitions", None)
        if topic is None and isinstance(entry, (tuple, list)) and len(entry) == 2:
            topic, partitions = entry
        if topic is not None:
            out[str(topic)] = sorted(int(p) for p in partitions or ())
    return out or None


def _throughput(tasks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The connector's figures: its tasks' as they last reported them (None when no task did yet)."""
    reporting = [t for t in tasks if isinstance(t.get("gsp"), Mapping)]
    if not reporting:
        return None
    return {"records": sum(int(t["gsp"].get("records", 0)) for t in reporting),
            "per_s": round(sum(float(t["gsp"].get("per_s", 0)) for t in reporting if t.get("state") == "RUNNING"), 2),
            "counted": reporting[0]["gsp"].get("counted"), "tasks_reporting": len(reporting),
            "at_ms": max(int(t["gsp"].get("at_ms", 0)) for t in reporting)}


def ops_api_routes(cluster: ConnectCluster, *, bootstrap: str, app_id: str) -> list[Route]:
    """The operations page's two reads, for ops and admins."""
    store = cluster.store

    def connectors() -> dict[str, Any]:
        out = []
        sinks: dict[str, str] = {}
        for name in store.connectors():
            config = store.config(name)
            if config is None:  # deleted meanwhile
                continue
            status = store.status(name)
            entry: dict[str, Any] = {**status, "target_state": store.target_state(name),
                                     "throughput": _throughput(status["tasks"]), "lag": None}
            try:
                kind = plugin_for(config).kind
            except Exception:
                kind = status.get("type", "unknown")
            if kind == "sink" and isinstance(config.get("topic"), str):
                sinks[name] = config["topic"]
                entry["lag"] = {"records": None, "topic": config["topic"], "group": sink_group(name)}
            elif kind == "source":
                entry["lag"] = {"records": None, "unknown": SOURCE_LAG_UNKNOWN}
            out.append(entry)
        error = None
        if sinks:
            try:
                with _Broker(bootstrap) as broker:
                    for entry in out:
                        topic = sinks.get(entry["name"])
                        if topic is not None:
                            found = broker.lag(sink_group(entry["name"]), topics_of_group=[topic]).get(topic)
                            entry["lag"]["records"] = found["records"] if found else 0
            except (KafkaError, OSError) as exc:
                error = f"sink lag unknown: the broker did not answer ({first_line(exc)})"
        return {"connectors": out, "error": error}

    def workers() -> dict[str, Any]:
        try:
            with _Broker(bootstrap) as broker:
                stream, connect = broker.group(app_id), broker.group(CONNECT_GROUP)
        except (KafkaError, OSError) as exc:
            unreachable = f"the broker did not answer: {first_line(exc)}"
            stream = {"group": app_id, "members": [], "lag": {}, "error": unreachable}
            connect = {"group": CONNECT_GROUP, "members": [], "lag": {}, "error": unreachable}
        connect.pop("lag", None)  # its slots topic is never written: nothing to lag behind
        connect["slots"] = topics.CONNECT_SLOT_COUNT
        members = {m["client_id"] for m in connect["members"]}
        reported: dict[str, list[dict[str, Any]]] = {}
        for name in store.connectors():
            for task in store.status(name)["tasks"]:
                if task.get("worker_id") and task.get("state") in ("RUNNING", "PAUSED", "FAILED"):
                    reported.setdefault(task["worker_id"], []).append(
                        {"connector": name, "task": task["id"], "state": task["state"]})
        connect["workers"] = [{"worker_id": worker, "in_group": worker in members, "tasks": reported.get(worker, []),
                               "failed": sum(t["state"] == "FAILED" for t in reported.get(worker, []))}
                              for worker in sorted(members | set(reported))]
        return {"stream": stream, "connect": connect}

    async def get_connectors(call: Call) -> dict[str, Any]:
        return await in_thread(connectors)

    async def get_workers(call: Call) -> dict[str, Any]:
        return await in_thread(workers)

    return [
        Route("GET", "/api/ops/connectors", get_connectors, summary="Connectors with throughput and lag", tag="ops",
              responds="{connectors: [Kafka Connect's status + target_state, throughput {records, per_s, counted, "
                       "tasks_reporting, at_ms} | null, lag {records, topic, group} (sink) | {records: null, unknown} "
                       "(source)], error}"),
        Route("GET", "/api/ops/workers", get_workers, summary="Stream and connector workers as the broker sees them",
              tag="ops", responds="{stream: {group, state, members: [{member_id, client_id, host, partitions}], "
                                  "assignments, lag: {topic: {records, partitions}}, error}, connect: {... , slots, "
                                  "workers: [{worker_id, in_group, tasks, failed}]}}"),
    ]
