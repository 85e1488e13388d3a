"""What the command modules share: how a command declares its help, the desks' list options, and output.

Every command's ``--help`` says what it does, shows each option's default and
ends with examples to copy; :func:`add_command` is the one way to get there.
List commands print a header row then tab-separated rows (``cut``/``awk``
friendly), or with ``--json`` the control plane's answer as it came.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Iterable, Sequence
from typing import Any, TextIO, TypeAlias

__all__ = ["Commands", "HelpFormatter", "add_actions", "add_command", "add_desk_list", "print_json", "print_table"]

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of descriptions and examples, and appends ``(default: …)`` to every option that has
    one. Unlike ArgumentDefaultsHelpFormatter it leaves out the meaningless ``None`` and ``False`` defaults; an
    option whose default is not a value says it in its own words (``default: standard input``)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if ("default" in text or default is None or default is False or default == argparse.SUPPRESS
                or default in ("", [])):
            return text
        if action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return f"{text} (default: %(default)s)"
        return text


def description(summary: str, about: str = "") -> str:
    """The first paragraph of a --help: the one-line summary as a sentence, then ``about`` as written."""
    sentence = textwrap.fill(summary[0].upper() + summary[1:] + ".", width=79)
    return sentence + (f"\n\n{textwrap.dedent(about).strip()}" if about else "")


def examples(lines: Sequence[str]) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def add_command(commands: Commands, name: str, *, summary: str, example: Sequence[str],
                about: str = "") -> argparse.ArgumentParser:
    """A command or subcommand whose --help says what it does (``summary``, then ``about``), its options with
    their defaults, and ``example`` lines to copy. ``summary`` is also its line in its parent's --help."""
    return commands.add_parser(name, help=summary, description=description(summary, about), epilog=examples(example),
                               formatter_class=HelpFormatter)


def add_actions(parser: argparse.ArgumentParser) -> Commands:
    """The subcommands of a command group (``gsp quarantine list``): chosen in ``args.action``."""
    return parser.add_subparsers(dest="action", required=True, title="subcommands",
                                 help=f"each has its own --help: {parser.prog} SUBCOMMAND --help")


def add_desk_list(commands: Commands, *, summary: str, closed: Sequence[str], example: Sequence[str],
                  about: str = "") -> argparse.ArgumentParser:
    """A stewards' desk's `list` subcommand with the options every desk has."""
    listing = add_command(commands, "list", summary=summary, example=example, about=about)
    listing.add_argument("--dataset", help="only this dataset, e.g. telecom.subscriber")
    listing.add_argument("--status", default="open", choices=["open", *closed, "all"], help="only items in this state")
    listing.add_argument("--limit", type=int, default=100, help="how many to print, up to 1000")
    listing.add_argument("--json", action="store_true", help="print the items as one JSON array")
    return listing


def print_table(header: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO | None = None) -> None:
    """A header row, then one tab-separated row per item; an empty value shows as ``-``."""
    out = out or sys.stdout
    for row in (header, *rows):
        out.write("\t".join("-" if value in (None, "") else str(value) for value in row) + "\n")


def print_json(value: Any, out: TextIO | None = None, *, indent: int | None = None) -> None:
    (out or sys.stdout).write(json.dumps(value, ensure_ascii=False, indent=indent) + "\n")
