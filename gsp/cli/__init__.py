"""The `gsp` command: one module per command group, each with ``register(commands)`` and ``run(args, settings)``.

A new command is a new module here plus its name in ``COMMANDS``. A user's
mistake, or an environment the user can fix, is one line on stderr starting
``gsp: error:`` and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NoReturn

from gsp.cli._common import HelpFormatter, description, examples
from gsp.errors import UserError
from schemas.datasets import DatasetError
from schemas.settings import Settings, SettingsError

__all__ = ["COMMANDS", "build_parser", "main"]

# In the order `gsp --help` lists them.
COMMANDS = ("demo", "serve", "worker", "connect", "sink", "agency", "credential", "whoami", "catalog", "subscription", "verify", "acl", "quarantine", "review", "quality", "consent", "audit", "lineage", "clean", "match",
            "bench", "settings")


class _Parser(argparse.ArgumentParser):
    """Argparse's mistakes in the same one-line form as every other error of `gsp`."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"gsp: error: {message} (see {self.prog} --help)\n")


def gsp_version() -> str:
    """The installed distribution's version; from pyproject.toml when running from an uninstalled checkout."""
    try:
        return version("gsp-platform")
    except PackageNotFoundError:
        pass
    try:
        with (Path(__file__).resolve().parents[2] / "pyproject.toml").open("rb") as pyproject:
            return str(tomllib.load(pyproject)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gsp", formatter_class=HelpFormatter,
                     description=description(
                         "event-driven data integration and sharing platform for government agencies",
                         "Configuration comes from GSP_* environment variables (gsp settings lists them)."),
                     epilog=examples(["gsp demo --records 1000    # the whole platform on one machine",
                                      "gsp serve                  # run it until Ctrl-C",
                                      "gsp COMMAND --help         # what a command does, with examples"]))
    parser.add_argument("--version", action="version", version=f"gsp {gsp_version()}")
    commands = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND",
                                     help="each has its own --help: gsp COMMAND --help", parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"gsp.cli.{name}").register(commands)
    _name_the_choices(parser)
    return parser


def _name_the_choices(parser: argparse.ArgumentParser) -> None:
    """Say `required: {list,show,…}` rather than argparse's `required: action` when a subcommand is missing."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            action.metavar = action.metavar or "{" + ",".join(action.choices) + "}"
            for child in action.choices.values():
                _name_the_choices(child)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        from gsp.runtime import logs

        # One-shot commands only warn; the long-running ones raise this to GSP_LOG_LEVEL themselves.
        logs.configure("warning")
        return int(args.run(args, settings))
    except (UserError, SettingsError, DatasetError) as exc:
        # One line even when a library's message spans several.
        print("gsp: error: " + " ".join(line.strip() for line in str(exc).splitlines() if line.strip()),
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gsp: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`gsp clean … | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
