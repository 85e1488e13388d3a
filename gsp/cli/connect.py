"""`gsp connect run`: one source connector (SQL table, outbox table or file drop) as its own process."""

from __future__ import annotations

import argparse
import json
import urllib.parse
from pathlib import Path
from typing import Any

from gsp.cli._common import Commands, add_actions, add_command, print_json, print_table
from gsp.errors import UserError
from gsp.http.client import ApiClient, query
from schemas.settings import Settings

__all__ = ["register", "run"]


def register(commands: Commands) -> None:
    connect = add_command(
        commands, "connect", summary="run a source connector (SQL table, outbox table, file drop) as its own process, "
                                     "or manage the connector cluster's connectors",
        about="""\
            A connector reads one source and publishes its records to the dataset's raw topic; records
            that do not fit the contract go to its quarantine topic with the reason. Sources: a SQL table
            in timestamp+incrementing order (deletes: a soft-delete column), a Debezium-style outbox table,
            or a directory of dropped CSV / JSON Lines files. Kafka and the registry come from
            GSP_KAFKA_BOOTSTRAP and GSP_SCHEMA_REGISTRY_URL, or from a running gsp serve with the same GSP_HOME.""",
        example=["gsp connect run subscribers.json", "gsp connect run subscribers.json --once"])
    actions = add_actions(connect)
    run_ = add_command(
        actions, "run", summary="publish a source's records (config: a JSON file)",
        about="""\
            The config is a JSON object with name, dataset, "connector.class" (sql-source, outbox-source or
            file-source, or their class names as gsp connect plugins lists them; a config without it says
            "type": sql, outbox or file, default sql) and optionally columns (contract field -> column),
            source_system (instead of the dataset's: event ids derive from it), poll_interval_s (1.0) and
            batch_size (2000). Every mistake is reported at once, in one line, as the cluster's validate does.
            sql: database_url, table (or tables, a list), key_column; optionally timestamp_column (updated_at),
            incrementing_column (id), soft_delete_column (a row with a value there other than NULL, false,
            0 or empty is published as a delete: header.deleted true, the row's last fields).
            outbox: database_url; optionally table (outbox: columns id, aggregatetype, aggregateid, type,
            payload as JSON text), aggregate_type (the dataset's name), delete_types (["deleted"]),
            incrementing_column (id). Rows of that aggregate type in order: key aggregateid, value the payload.
            file: directory (or directories, a list); optionally format (csv or jsonl; default by extension .csv, .jsonl, .ndjson).
            Files are taken complete (a sender writes NAME.part, .tmp or .NAME and renames it), in name
            order, each once, and moved to done/ when published; a file changed after it was taken, a
            symlink or a name already in done/ goes to rejected/. A CSV has a header row; an empty value is
            null; its numbers are converted as the contract says. A line that cannot be read is quarantined
            naming file and line. The position of each table or directory is stored after every batch, so a
            restart, or gsp connect worker running the same connector, goes on where it stopped. Progress is printed when records moved, nothing while idle.""",
        example=['echo \'{"name": "subscribers", "dataset": "telecom.subscriber", '
                 '"database_url": "sqlite:///telecom.db", "table": "subscriber", "key_column": "msisdn"}\' > s.json',
                 "gsp connect run s.json --once        # publish what the table holds now, then stop",
                 "gsp connect run s.json --port 9105   # keep polling; /metrics on port 9105",
                 'echo \'{"type": "file", "name": "viettel-drop", "dataset": "telecom.subscriber", '
                 '"directory": "/srv/drop/viettel", "source_system": "telecom.viettel"}\' > f.json',
                 'echo \'{"type": "outbox", "name": "registry", "dataset": "population.citizen", '
                 '"database_url": "sqlite:///registry.db"}\' > o.json'])
    run_.add_argument("config", type=Path, metavar="CONFIG.json", help="the connector's JSON config")
    run_.add_argument("--once", action="store_true", help="stop when the source is drained instead of polling")
    run_.add_argument("--port", type=int, default=0, help="port of /metrics and /health; 0 picks a free one")
    _register_api(actions)
    worker = add_command(
        actions, "worker", summary="run a connector worker: the group of workers shares every connector's tasks",
        about="""\
            Workers form a group through Kafka's own group membership (consumer group gsp-connect-workers
            on gsp.connect.slots) and run the tasks of the connectors stored in gsp.connect.configs (create
            them with gsp connect create). Start more workers and the tasks rebalance; a worker that dies
            hands its tasks to the others after the session timeout (GSP_SESSION_TIMEOUT_S), and they resume
            from their stored positions. Statuses go to gsp.connect.status.""",
        example=["gsp connect worker --port 9106", "gsp connect worker --worker-id connect-1"])
    worker.add_argument("--port", type=int, default=0, help="port of /metrics and /health; 0 picks a free one")
    worker.add_argument("--worker-id", help="the name statuses show (default: host:port of /metrics)")
    connect.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.action in _API_ACTIONS:
        return _api(args, settings)
    if args.action == "worker":
        from gsp.runtime.connect_worker import run_worker

        return run_worker(settings, port=args.port, worker_id=args.worker_id)
    from gsp.runtime.connector import run_connector

    return run_connector(settings, args.config, once=args.once, port=args.port)


# --- the connector cluster, over the control plane's Kafka Connect API --------------------------------------------

_API_ACTIONS = ("list", "create", "config", "status", "pause", "resume", "stop", "restart", "offsets", "delete",
                "plugins", "validate")
_OVER_THE_API = """\
    Talks to the control plane's Kafka Connect-compatible API (GET /connectors ...) at GSP_API_URL, else the
    gsp serve whose runtime file is in GSP_HOME, with GSP_TOKEN (ops or admin)."""


def _register_api(actions: Commands) -> None:
    listing = add_command(actions, "list", summary="the cluster's connectors with their state (over the API)",
                          about="Columns: name, type, state, tasks running/all, worker.\n" + _OVER_THE_API,
                          example=["gsp connect list", "gsp connect list --json"])
    listing.add_argument("--json", action="store_true", help="print GET /connectors?expand=status&expand=info")
    create = add_command(
        actions, "create", summary="create a connector in the cluster from a JSON file (over the API)",
        about="""\
            The file is Kafka Connect's {"name": ..., "config": {...}}, or the config alone with its "name".
            The config names its plugin in connector.class (gsp connect plugins lists them) and takes
            tasks.max and the plugin's settings (gsp connect validate TYPE FILE lists the mistakes).
            The cluster's workers (gsp connect worker) run its tasks.\n""" + _OVER_THE_API,
        example=['echo \'{"name": "subscribers", "config": {"connector.class": "SqlSourceConnector", "tasks.max": 2, '
                 '"dataset": "telecom.subscriber", "database_url": "sqlite:///telecom.db", '
                 '"tables": ["subscriber", "prepaid"], "key_column": "msisdn"}}\' > s.json',
                 "gsp connect create s.json"])
    create.add_argument("files", type=Path, nargs="+", metavar="FILE.json", help="the connectors, each {name, config}")
    create.add_argument("--update", action="store_true", help="replace the config of one that exists "
                        "(PUT /connectors/NAME/config, which also creates) instead of failing")
    config = add_command(actions, "config", summary="print a connector's config, or replace it from a file",
                         about="Without FILE: the config as JSON. With FILE (the config alone, a JSON object): "
                               "PUT /connectors/NAME/config, which creates the connector when there is none.\n"
                               + _OVER_THE_API,
                         example=["gsp connect config subscribers > s.json", "gsp connect config subscribers s.json"])
    config.add_argument("name", help="the connector's name")
    config.add_argument("file", type=Path, nargs="?", metavar="FILE.json", help="the new config")
    status = add_command(actions, "status", summary="a connector's and its tasks' states, with failures' traces",
                         about="Columns: what (connector or task N), state, worker; then the trace of each "
                               "FAILED one.\n" + _OVER_THE_API,
                         example=["gsp connect status subscribers", "gsp connect status subscribers --json"])
    status.add_argument("name", help="the connector's name")
    status.add_argument("--json", action="store_true", help="print GET /connectors/NAME/status as it came")
    for action, summary in (("pause", "pause a connector: its tasks stop working but keep their place"),
                            ("resume", "resume a paused or stopped connector"),
                            ("stop", "stop a connector: its tasks end (then its offsets can be changed)"),
                            ("delete", "delete a connector from the cluster (its offsets stay)")):
        one = add_command(actions, action, summary=summary, about=_OVER_THE_API,
                          example=[f"gsp connect {action} subscribers"])
        one.add_argument("name", help="the connector's name")
    restart = add_command(actions, "restart", summary="restart a connector, and its tasks with --include-tasks",
                          about=_OVER_THE_API,
                          example=["gsp connect restart subscribers --include-tasks --only-failed"])
    restart.add_argument("name", help="the connector's name")
    restart.add_argument("--include-tasks", action="store_true", help="restart its tasks too")
    restart.add_argument("--only-failed", action="store_true", help="restart only what is FAILED")
    offsets = add_command(
        actions, "offsets", summary="print a connector's offsets, or reset or set them while it is stopped",
        about="""\
            A source's offsets are its positions per partition ({"table": ...}); a sink's are its consumer
            group's committed offsets ({"kafka_topic", "kafka_partition"} -> {"kafka_offset"}). --reset and
            --set need the connector stopped first (gsp connect stop), as KIP-875 says.\n""" + _OVER_THE_API,
        example=["gsp connect offsets subscribers", "gsp connect offsets subscribers --reset",
                 'echo \'{"offsets": [{"partition": {"table": "subscriber"}, "offset": {...}}]}\' > o.json',
                 "gsp connect offsets subscribers --set o.json"])
    offsets.add_argument("name", help="the connector's name")
    change = offsets.add_mutually_exclusive_group()
    change.add_argument("--reset", action="store_true", help="forget every offset: it starts again from the start")
    change.add_argument("--set", type=Path, metavar="FILE.json", help='{"offsets": [{"partition", "offset"}]} to store')
    plugins = add_command(actions, "plugins", summary="the connector types the cluster runs",
                          about="Columns: class, type, version.\n" + _OVER_THE_API, example=["gsp connect plugins"])
    plugins.add_argument("--json", action="store_true", help="print GET /connector-plugins as it came")
    validate = add_command(actions, "validate", summary="list every mistake of a config for a connector type",
                           about="Prints each bad key with its message (exit status 1), or that the config is "
                                 "valid.\n" + _OVER_THE_API,
                           example=["gsp connect validate SqlSourceConnector s.json"])
    validate.add_argument("type", help="the plugin: its class, e.g. SqlSourceConnector, or alias, e.g. sql-source")
    validate.add_argument("file", type=Path, metavar="FILE.json", help="the config (a JSON object)")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UserError(f"{path} is not JSON: {exc}") from None


def _object(path: Path) -> dict[str, Any]:
    found = _read_json(path)
    if not isinstance(found, dict):
        raise UserError(f"{path} must hold a JSON object")
    return found


def _api(args: argparse.Namespace, settings: Settings) -> int:
    api = ApiClient.for_settings(settings)
    one = f"/connectors/{urllib.parse.quote(args.name, safe='')}" if hasattr(args, "name") else ""
    if args.action == "list":
        found = api.get("/connectors?expand=status&expand=info")
        if args.json:
            print_json(found, indent=2)
        else:
            print_table(["name", "type", "state", "tasks", "worker"], (_row(name, c) for name, c in found.items()))
    elif args.action == "create":
        for path in args.files:
            body = _object(path)
            if "config" not in body:  # the config alone, named by its "name"
                body = {"name": body.get("name"), "config": body}
            if args.update and not (isinstance(body["name"], str) and body["name"]):
                raise UserError(f"{path}: no connector name")
            info = (api.put(f"/connectors/{urllib.parse.quote(body['name'], safe='')}/config", body["config"])
                    if args.update else api.post("/connectors", body))
            print(f"connector {info['name']} {'configured' if args.update else 'created'}: {info['type']}, "
                  f"{len(info['tasks'])} task(s)")
    elif args.action == "config" and args.file is None:
        print_json(api.get(f"{one}/config"), indent=2)
    elif args.action == "config":
        info = api.put(f"{one}/config", _object(args.file))
        print(f"connector {info['name']} configured: {info['type']}, {len(info['tasks'])} task(s)")
    elif args.action == "status":
        _print_status(api.get(f"{one}/status"), as_json=args.json)
    elif args.action in ("pause", "resume", "stop"):
        api.put(f"{one}/{args.action}")
        print(f"connector {args.name}: {args.action} requested")
    elif args.action == "restart":
        api.post(f"{one}/restart" + query(includeTasks=args.include_tasks and "true",
                                          onlyFailed=args.only_failed and "true"))
        print(f"connector {args.name}: restart requested")
    elif args.action == "offsets" and args.reset:
        print(api.call("DELETE", f"{one}/offsets")["message"])
    elif args.action == "offsets" and args.set is not None:
        print(api.call("PATCH", f"{one}/offsets", _object(args.set))["message"])
    elif args.action == "offsets":
        print_json(api.get(f"{one}/offsets"), indent=2)
    elif args.action == "delete":
        api.delete(one)
        print(f"connector {args.name} deleted")
    elif args.action == "plugins":
        found = api.get("/connector-plugins")
        if args.json:
            print_json(found, indent=2)
        else:
            print_table(["class", "type", "version"], ([p["class"], p["type"], p["version"]] for p in found))
    else:
        return _print_validation(api.put(f"/connector-plugins/{urllib.parse.quote(args.type, safe='')}/config/validate",
                                         _object(args.file)))
    return 0


def _row(name: str, found: dict[str, Any]) -> list[Any]:
    status, info = found.get("status", {}), found.get("info", {})
    tasks = status.get("tasks", [])
    running = sum(1 for t in tasks if t.get("state") == "RUNNING")
    return [name, info.get("type"), status.get("connector", {}).get("state"), f"{running}/{len(tasks)}",
            status.get("connector", {}).get("worker_id")]


def _print_status(status: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print_json(status, indent=2)
        return
    rows = [("connector", status["connector"]), *((f"task {t['id']}", t) for t in status["tasks"])]
    print_table(["what", "state", "worker"], ([what, s.get("state"), s.get("worker_id")] for what, s in rows))
    for what, s in rows:
        if s.get("trace"):
            print(f"\n{what} failed:\n{s['trace'].rstrip()}")


def _print_validation(body: dict[str, Any]) -> int:
    errors = [(c["value"]["name"], message) for c in body["configs"] for message in c["value"]["errors"]]
    if not errors:
        print(f"the config is valid for {body['name']}")
        return 0
    print_table(["key", "error"], errors)
    return 1
