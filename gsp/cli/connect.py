"""`gsp connect run`: one source connector (SQL table, outbox table or file drop) as its own process."""

from __future__ import annotations

import argparse
from pathlib import Path

from gsp.cli._common import Commands, add_actions, add_command
from schemas.settings import Settings

__all__ = ["register", "run"]


def register(commands: Commands) -> None:
    connect = add_command(
        commands, "connect", summary="run a source connector (SQL table, outbox table, file drop) as its own process",
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
            The config is a JSON object with name, dataset, "type" (sql, outbox or file; default sql) and
            optionally columns (contract field -> column), source_system (instead of the dataset's: event ids
            derive from it), poll_interval_s (1.0) and batch_size (2000).
            sql: database_url, table, key_column; optionally timestamp_column (updated_at),
            incrementing_column (id), soft_delete_column (a row with a value there other than NULL, false,
            0 or empty is published as a delete: header.deleted true, the row's last fields).
            outbox: database_url; optionally table (outbox: columns id, aggregatetype, aggregateid, type,
            payload as JSON text), aggregate_type (the dataset's name), delete_types (["deleted"]),
            incrementing_column (id). Rows of that aggregate type in order: key aggregateid, value the payload.
            file: directory; optionally format (csv or jsonl; default by extension .csv, .jsonl, .ndjson).
            Files are taken complete (a sender writes NAME.part, .tmp or .NAME and renames it), in name
            order, each once, and moved to done/ when published; a file changed after it was taken, a
            symlink or a name already in done/ goes to rejected/. A CSV has a header row; an empty value is
            null; its numbers are converted as the contract says. A line that cannot be read is quarantined
            naming file and line. The position is stored after every batch, so a restart goes on where it
            stopped. Progress is printed when records moved, nothing while idle.""",
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
    connect.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from gsp.runtime.connector import run_connector

    return run_connector(settings, args.config, once=args.once, port=args.port)
