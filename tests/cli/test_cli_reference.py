"""docs/cli.md names every command and every option the CLI accepts."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from sentra_lang.cli import build_parser

CLI_DOC = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text("utf-8")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse offers no public walk of subcommands
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _mentioned(option: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", CLI_DOC) is not None


def test_every_command_and_option_is_documented() -> None:
    missing = []
    for name, sub in _subparsers(build_parser()).items():
        if f"`{name}" not in CLI_DOC:
            missing.append(name)
        commands = {name: sub, **{f"{name} {n}": p for n, p in _subparsers(sub).items()}}
        for label, parser in commands.items():
            for action in parser._actions:
                options = [o for o in action.option_strings if o not in ("-h", "--help")]
                if options and not any(_mentioned(o) for o in options):
                    missing.append(f"{label} {options[-1]}")
    assert not missing, f"docs/cli.md does not mention: {missing}"
