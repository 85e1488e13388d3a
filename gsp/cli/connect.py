"""`gsp connect run`: one SQL source connector as its own process."""

from __future__ import annotations

import argparse
from pathlib import Path

from gsp.cli._common import Commands, add_actions, add_command
from schemas.settings import Settings

__all__ = ["register", "run"]


def register(commands: Commands) -> None:
    connect = add_command(
        commands, "connect", summary="run a SQL source connector as its own process",
        about="""\
            A connector reads one table in timestamp+incrementing order and publishes its rows to the
            dataset's raw topic; rows that do not fit the contract go to its quarantine topic. Kafka and
            the registry come from GSP_KAFKA_BOOTSTRAP and GSP_SCHEMA_REGISTRY_URL, or from a running
            gsp serve with the same GSP_HOME.""",
        example=["gsp connect run subscribers.json", "gsp connect run subscribers.json --once"])
    actions = add_actions(connect)
    run_ = add_command(
        actions, "run", summary="publish a table's rows (config: a JSON file)",
        about="""\
            The config is a JSON object: name, dataset, database_url, table, key_column, and optionally
            timestamp_column (updated_at), incrementing_column (id), columns (contract field -> column),
            poll_interval_s (1.0) and batch_size (2000). The position is stored after every batch, so a
            restart goes on where it stopped. Progress is printed when rows moved, nothing while idle.""",
        example=['echo \'{"name": "subscribers", "dataset": "telecom.subscriber", '
                 '"database_url": "sqlite:///telecom.db", "table": "subscriber", "key_column": "msisdn"}\' > s.json',
                 "gsp connect run s.json --once        # publish what the table holds now, then stop",
                 "gsp connect run s.json --port 9105   # keep polling; /metrics on port 9105"])
    run_.add_argument("config", type=Path, metavar="CONFIG.json", help="the connector's JSON config")
    run_.add_argument("--once", action="store_true", help="stop when the table is drained instead of polling")
    run_.add_argument("--port", type=int, default=0, help="port of /metrics and /health; 0 picks a free one")
    connect.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from gsp.runtime.connector import run_connector

    return run_connector(settings, args.config, once=args.once, port=args.port)
