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
        example=["gsp bench", "gsp bench --records 5000 --json",
                 "gsp bench --soak 30   # 30 minutes of the whole flow under load and kills: memory and counts"])
    bench.add_argument("--records", type=int, default=20_000, help="records per measurement")
    bench.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    bench.add_argument("--no-splink", action="store_true",
                       help="leave out matching on FEBRL4 next to Splink (which installs splink and duckdb once, in "
                            ".venv-bench, never in the platform's environment)")
    bench.add_argument("--latency-seconds", type=float, default=30.0,
                       help="how long rows are offered at half the end-to-end maximum for the latency figure")
    bench.add_argument("--soak", type=float, metavar="MINUTES",
                       help="instead: run gsp serve, connectors and a sink under steady load for MINUTES, killing one "
                            "process with SIGKILL every --kill-every seconds; print resident memory per process over "
                            "time and every stage's count at the end (gsp.tools.faults)")
    bench.add_argument("--rate", type=float, default=50.0, help="with --soak: source rows per second and table")
    bench.add_argument("--kill-every", type=float, default=60.0, help="with --soak: seconds between kills; 0: none")
    bench.add_argument("--early-kill", action="store_true",
                       help="instead: kill the stream worker as its first match results appear and count every stage "
                            "(exit status 1 if a record was lost)")
    bench.add_argument("--connect", action="store_true",
                       help="instead: connector throughput with 1 and 2 `gsp connect worker` processes on 4 tables of "
                            "--records rows, and the plain SourceRunner next to the raw kafka-python producer")
    bench.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.early_kill:
        from gsp.tools.faults import early_kill

        return early_kill(settings.home / "early-kill", as_json=args.json)
    if args.connect:
        from gsp.tools.bench.connect import run_connect_bench

        return run_connect_bench(settings, rows=args.records, as_json=args.json)
    if args.soak is not None:
        from gsp.tools.faults import soak

        return soak(settings.home / "soak", minutes=args.soak, rows_per_s=args.rate, kill_every_s=args.kill_every,
                    as_json=args.json)
    from gsp.tools.bench.platform import run_bench

    return run_bench(settings, records=args.records, as_json=args.json, splink=not args.no_splink,
                     latency_seconds=args.latency_seconds)
