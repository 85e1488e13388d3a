"""`gsp serve`: the platform until Ctrl-C."""

from __future__ import annotations

import argparse

from gsp.cli._common import Commands, add_command
from gsp.errors import UserError
from schemas.settings import Settings

__all__ = ["register", "run"]


def register(commands: Commands) -> None:
    serve = add_command(
        commands, "serve", summary="run the platform: broker (embedded unless configured), control plane, stream workers",
        about="""\
            Starts the broker (embedded unless GSP_KAFKA_BOOTSTRAP), the control-plane API on GSP_API_PORT
            (registry, subscriptions, the stewards' desks, /metrics, /health), the quarantine and review
            indexers, the quality recorder and the stream workers, restarting a worker that exits. Writes
            $GSP_HOME/runtime.json so the other commands find it. Runs until Ctrl-C or SIGTERM.""",
        example=["gsp serve",
                 "gsp serve --workers 2",
                 "GSP_KAFKA_BOOTSTRAP=kafka:9092 gsp serve --workers 0   # the control plane alone",
                 "GSP_HOME=/var/lib/gsp GSP_API_PORT=0 gsp serve    # any free port; see runtime.json"])
    serve.add_argument("--workers", type=int, default=1,
                       help="stream worker processes; 0 runs the control plane alone, for workers started elsewhere")
    serve.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from gsp.runtime import logs
    from gsp.runtime.serve import run_platform

    if args.workers < 0:
        raise UserError("--workers must be 0 or more")
    logs.configure(settings.log_level)
    return run_platform(settings, workers=args.workers)
