"""`gsp settings`: every environment variable the platform reads, with its default and current value."""

from __future__ import annotations

import argparse
import os
from dataclasses import fields
from typing import Any

from gsp.cli._common import Commands, add_command, print_json
from schemas.settings import Settings

__all__ = ["register", "run", "settings_table"]


def register(commands: Commands) -> None:
    settings = add_command(
        commands, "settings", summary="print the environment variables the platform reads, with default and current value",
        about="""\
            Every process of the platform (control plane, connectors, workers) reads the same GSP_*
            variables once at start. "current" is what a process started from this shell would use;
            a password in GSP_DATABASE_URL is shown as ***.""",
        example=["gsp settings", "GSP_PARTITIONS=8 gsp settings --json"])
    settings.add_argument("--json", action="store_true", help="print one JSON array of {variable, default, current, "
                                                              "from_environment, doc}")
    settings.set_defaults(run=run)


def _shown(value: Any, *, secret: bool) -> str | None:
    if value in (None, ""):
        return None
    if secret:
        import sqlalchemy as sa

        try:
            return sa.make_url(str(value)).render_as_string(hide_password=True)
        except sa.exc.ArgumentError:
            return "(set, not shown)"
    return str(value)


def settings_table(current: Settings) -> list[dict[str, Any]]:
    """Variable, default, current value (None: unset), whether the environment sets it, and its documentation."""
    defaults = Settings()
    return [{"variable": f.metadata["env"], "default": _shown(getattr(defaults, f.name), secret=not f.repr),
             "current": _shown(getattr(current, f.name), secret=not f.repr),
             "from_environment": os.environ.get(f.metadata["env"], "") != "", "doc": f.metadata["doc"]}
            for f in fields(Settings)]


def run(args: argparse.Namespace, settings: Settings) -> int:
    table = settings_table(settings)
    if args.json:
        print_json(table)
        return 0
    for row in table:
        origin = " (from the environment)" if row["from_environment"] else ""
        print(f"{row['variable']:<26} {row['doc']}")
        print(f"{'':<26} default: {row['default'] or '(unset)'}   current: {row['current'] or '(unset)'}{origin}")
    return 0
