"""`gsp quality report`: the data-quality scorecards, read from the control-plane database."""

from __future__ import annotations

import argparse
import sys

from gsp.cli._common import Commands, add_actions, add_command, print_json
from gsp.errors import UserError
from schemas.settings import Settings

__all__ = ["register", "run"]


def register(commands: Commands) -> None:
    quality = add_command(
        commands, "quality", summary="data-quality scorecards (correct, complete, clean, live)",
        about="""\
            Scores in [0, 1] per dataset for đúng, đủ, sạch, sống, from the snapshots the control plane
            records. Reads the control-plane database (GSP_DATABASE_URL, else SQLite in GSP_HOME)
            directly: no running platform needed, so it works after gsp demo.""",
        example=["gsp quality report", "GSP_HOME=/tmp/gsp gsp quality report --dataset telecom.subscriber"])
    actions = add_actions(quality)
    report = add_command(
        actions, "report", summary="scores per dataset, worst fields and rules, trend, open quarantine",
        example=["gsp quality report", "gsp quality report --dataset telecom.subscriber --json"])
    report.add_argument("--dataset", help="only this dataset, e.g. telecom.subscriber")
    report.add_argument("--json", action="store_true", help="print one JSON object")
    quality.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:

    from gsp.desks.quality import render_report, report
    from gsp.runtime.database import control_engine

    if not settings.database_url and not (settings.home / "control.db").is_file():
        # SQLite would create an empty database, or fail on a missing folder: neither helps.
        raise UserError(f"no control-plane database in {settings.home} (GSP_HOME); "
                        "run gsp demo or gsp serve with this GSP_HOME first, or set GSP_DATABASE_URL")
    engine = control_engine(settings.resolved_database_url)
    try:
        data = report(engine, args.dataset)
    finally:
        engine.dispose()
    if not data:
        raise UserError("no quality snapshots yet" + (f" for {args.dataset}" if args.dataset else "")
                        + f" in {engine.url.render_as_string(hide_password=True)}; run gsp demo or gsp serve first")
    if args.json:
        print_json(data)
    else:
        render_report(data, sys.stdout)
    return 0
