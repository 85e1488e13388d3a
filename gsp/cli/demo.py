"""`gsp demo`: the whole platform on one machine, with synthetic data whose outcome is known."""

from __future__ import annotations

import argparse
from pathlib import Path

from gsp.cli._common import Commands, add_command
from schemas.settings import Settings

__all__ = ["register", "run"]


def register(commands: Commands) -> None:
    demo = add_command(
        commands, "demo", summary="run a synthetic population and telecom registry through the whole platform",
        about="""\
            Generates citizens and telecom subscribers into two SQLite source databases, publishes them
            through SQL source connectors on an embedded broker (or GSP_KAFKA_BOOTSTRAP), cleans, matches
            and shares them to an agency's table, then compares every count with what the generator knows
            the outcome must be: exit status 0 when they agree, 1 when they do not.

            The scorecards and the stewards' queues stay in GSP_HOME (gsp quality report reads them after
            the demo). The source and agency databases and the worker's log go to a temporary folder that
            is removed at the end, unless --keep; a --workdir is yours and always kept, and so is the
            temporary folder when the demo fails, for its logs.

            --keep-running keeps the platform running after the summary, until Ctrl-C or SIGTERM, to look at
            it in the console: the summary names its address and <workdir>/console-credentials.json, a
            token per role (revoked when the demo stops).""",
        example=["gsp demo",
                 "gsp demo --records 1000 --seed 3 --json",
                 "gsp demo --workdir demo-run      # keeps sources.db, agency.db and the worker's log there",
                 "gsp demo --records 1000 --keep-running   # then open the console it prints",
                 "GSP_HOME=/tmp/gsp gsp demo && GSP_HOME=/tmp/gsp gsp quality report"])
    demo.add_argument("--records", type=int, default=10_000, help="citizens, and as many telecom subscribers")
    demo.add_argument("--seed", type=int, default=7, help="generator seed: the same seed, the same records")
    demo.add_argument("--duration", type=float, default=300.0, help="stop after this many seconds")
    demo.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    demo.add_argument("--workdir", type=Path, metavar="DIR",
                      help="keep the source and agency databases and the logs in this folder "
                           "(default: a temporary folder)")
    demo.add_argument("--keep", action="store_true", help="keep the temporary folder, and say where it is")
    demo.add_argument("--keep-running", action="store_true",
                      help="after the summary, keep the platform running for the console (its address and a "
                           "credentials file are printed) until Ctrl-C or SIGTERM")
    demo.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from gsp.tools.demo import DemoOptions, run_demo

    return run_demo(settings, DemoOptions(records=args.records, seed=args.seed, duration_s=args.duration,
                                          json=args.json, workdir=args.workdir, keep=args.keep,
                                          keep_running=args.keep_running))
