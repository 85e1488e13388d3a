"""`gsp bench`: throughput of each piece next to baselines measured in the same run."""

from __future__ import annotations

import argparse

from gsp.cli._common import Commands, add_command
from schemas.settings import Settings

__all__ = ["register", "run"]


def register(commands: Commands) -> None:
    bench = add_command(
        commands, "bench", summary="records/s of each piece next to baselines measured in the same run",
        about="""\
            Measures the connector, the codec, each stage and the platform end to end on the embedded
            broker, each next to a baseline (the broker alone, plain JSON) measured in the same run, so
            figures from different machines compare; then verifications/s through the Kafka and HTTP
            paths next to the verification rules alone (also: python -m gsp.tools.bench.verification).
            See gsp/tools/bench/README.md.""",
        example=["gsp bench", "gsp bench --records 5000 --json"])
    bench.add_argument("--records", type=int, default=20_000, help="records per measurement")
    bench.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    bench.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from gsp.tools.bench.platform import run_bench

    return run_bench(settings, records=args.records, as_json=args.json)
