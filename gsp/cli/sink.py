"""`gsp sink run`: an agency's sink (a SQL table or a signed webhook) as its own process."""

from __future__ import annotations

import argparse
from pathlib import Path

from gsp.cli._common import Commands, add_actions, add_command
from schemas.settings import Settings

__all__ = ["register", "run"]


def register(commands: Commands) -> None:
    sink = add_command(
        commands, "sink", summary="deliver a subscription's share topic into an agency's SQL table or to its webhook",
        about="""\
            A sink reads one subscription's share.<agency>.<dataset> topic and either upserts every event by
            its per-agency event id into a table of SQLite or PostgreSQL, so a replay changes nothing, or POSTs
            the events in signed JSON batches to the agency's HTTPS endpoint (for agencies without Kafka).
            Kafka and the registry come from GSP_KAFKA_BOOTSTRAP and GSP_SCHEMA_REGISTRY_URL, or from a
            running gsp serve with the same GSP_HOME.""",
        example=["gsp sink run agency.json"])
    actions = add_actions(sink)
    run_ = add_command(
        actions, "run", summary="deliver a share topic to a table or a webhook (config: a JSON file)",
        about="""\
            The config is a JSON object: topic (the subscription's share topic), optionally connector.class
            (sql-sink or webhook-sink, or their class names; or, as before, type: sql, the default, or
            webhook), name (the topic) and max_records (500 events per batch). Every mistake is reported at
            once, in one line. type sql:
            database_url, and optionally table (the topic with dots as underscores). type webhook: url (https)
            and secret_file (a file holding the agency's webhook secret), and optionally max_attempts (8),
            rate_per_s (10 POSTs a second), timeout_s (10, to connect and to read), allow_http and
            allow_private_targets (false; for loopback tests and demos). Each batch is one POST signed in
            X-GSP-Signature (t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>); connection errors,
            timeouts, 408, 429 and 5xx are retried with back-off, and a batch still refused goes to the topic
            dlq.<topic> with the reason. Offsets are committed after the rows are in the table, the endpoint
            took the batch or the dead letter holds it, in consumer group gsp-connect-<name>, so a restart (or
            gsp connect worker running the same sink) goes on where it stopped. Progress is
            printed when events moved; SIGTERM stops it cleanly.""",
        example=['echo \'{"topic": "share.bhxh.subscriber.v1", "database_url": "sqlite:///agency.db"}\' > a.json',
                 "gsp sink run a.json --port 9106   # /metrics and /health on port 9106",
                 'echo \'{"type": "webhook", "topic": "share.bhxh.subscriber.v1", '
                 '"url": "https://hooks.bhxh.gov.vn/gsp", "secret_file": "bhxh.secret"}\' > w.json',
                 "gsp sink run w.json"])
    run_.add_argument("config", type=Path, metavar="CONFIG.json", help="the sink's JSON config")
    run_.add_argument("--port", type=int, default=0, help="port of /metrics and /health; 0 picks a free one")
    sink.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from gsp.runtime.sink import run_sink

    return run_sink(settings, args.config, port=args.port)
