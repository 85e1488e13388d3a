"""`gsp sink run`: an agency's SQL sink as its own process."""

from __future__ import annotations

import argparse
from pathlib import Path

from gsp.cli._common import Commands, add_actions, add_command
from schemas.settings import Settings

__all__ = ["register", "run"]


def register(commands: Commands) -> None:
    sink = add_command(
        commands, "sink", summary="deliver a subscription's share topic into an agency's SQL table",
        about="""\
            A sink reads one subscription's share.<agency>.<dataset> topic and upserts every event by its
            per-agency event id into a table of SQLite or PostgreSQL, so a replay changes nothing. Kafka and
            the registry come from GSP_KAFKA_BOOTSTRAP and GSP_SCHEMA_REGISTRY_URL, or from a running
            gsp serve with the same GSP_HOME.""",
        example=["gsp sink run agency.json"])
    actions = add_actions(sink)
    run_ = add_command(
        actions, "run", summary="write a share topic into a table (config: a JSON file)",
        about="""\
            The config is a JSON object: topic (the subscription's share topic) and database_url, and
            optionally name (the topic), table (the topic with dots as underscores) and max_records (500 per
            batch). Offsets are committed after the rows are in the table, so a restart goes on where it
            stopped. Progress is printed when rows moved; SIGTERM stops it cleanly.""",
        example=['echo \'{"topic": "share.bhxh.subscriber.v1", "database_url": "sqlite:///agency.db"}\' > a.json',
                 "gsp sink run a.json --port 9106   # /metrics and /health on port 9106"])
    run_.add_argument("config", type=Path, metavar="CONFIG.json", help="the sink's JSON config")
    run_.add_argument("--port", type=int, default=0, help="port of /metrics and /health; 0 picks a free one")
    sink.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from gsp.runtime.sink import run_sink

    return run_sink(settings, args.config, port=args.port)
