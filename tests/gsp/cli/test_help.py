"""Every command and subcommand's --help says what it does, shows its defaults and gives an example."""

import argparse
import importlib.metadata
from collections.abc import Iterator

import pytest

from gsp.cli import COMMANDS, build_parser
from tests.gsp.cli.test_cli import gsp


def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from parsers(child)


ALL = {p.prog: p for p in parsers(build_parser())}


def test_every_command_module_is_on_the_command_line() -> None:
    assert {prog.split()[1] for prog in ALL if prog != "gsp"} == set(COMMANDS)
    assert {"gsp subscription list", "gsp quarantine release", "gsp review export", "gsp connect run",
            "gsp quality report", "gsp match evaluate"} <= set(ALL)


@pytest.mark.parametrize("prog", sorted(ALL))
def test_help_says_what_it_does_with_an_example_and_the_defaults(prog: str) -> None:
    parser = ALL[prog]
    text = " ".join(parser.format_help().split())  # argparse wraps lines where it likes
    assert parser.description and len(parser.description.split()) >= 3, prog
    examples = (parser.epilog or "").split("examples:\n", 1)[1].splitlines()
    assert any(prog in line for line in examples), f"{prog}: no example of the command itself"
    for action in parser._actions:
        default = action.default
        if action.option_strings and default not in (None, False, "", [], argparse.SUPPRESS):
            assert f"(default: {default})" in text, f"{prog} {action.option_strings[0]}"
        assert action.help, f"{prog} {action.dest}: no help"


@pytest.mark.parametrize("prog", sorted(p for p in ALL if any(isinstance(a, argparse._SubParsersAction)
                                                              for a in ALL[p]._actions)))
def test_a_group_lists_each_subcommand_with_what_it_does(prog: str) -> None:
    [group] = [a for a in ALL[prog]._actions if isinstance(a, argparse._SubParsersAction)]
    summaries = {choice.dest: choice.help for choice in group._choices_actions}
    assert set(summaries) == set(group.choices) and all(summaries.values()), summaries


def test_help_and_version_from_the_command_line() -> None:
    shown = gsp("quarantine", "release", "--help")
    assert shown.returncode == 0 and "examples:" in shown.stdout and "--fix FIELD=VALUE" in shown.stdout
    version = gsp("--version")
    assert version.returncode == 0 and version.stdout == f"gsp {importlib.metadata.version('gsp-platform')}\n"
