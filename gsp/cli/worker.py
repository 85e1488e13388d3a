"""`gsp worker`: one stream worker process, as `gsp serve` starts them."""

from __future__ import annotations

import argparse

from gsp.cli._common import Commands, add_command
from schemas.settings import Settings

__all__ = ["register", "run"]


def register(commands: Commands) -> None:
    worker = add_command(
        commands, "worker", summary="run a stream worker (needs GSP_KAFKA_BOOTSTRAP and GSP_SCHEMA_REGISTRY_URL)",
        about="""\
            One Faust worker of the clean, match and share stages, in the consumer group GSP_APP_ID.
            Run more of them to share the partitions; /metrics and /health on GSP_WORKER_WEB_PORT.""",
        example=["GSP_KAFKA_BOOTSTRAP=kafka:9092 GSP_SCHEMA_REGISTRY_URL=http://gsp:8780 gsp worker"])
    worker.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from gsp.runtime import logs
    from gsp.runtime.serve import run_worker

    logs.configure(settings.log_level)
    return run_worker(settings)
