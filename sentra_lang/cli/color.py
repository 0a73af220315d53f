"""Whether a command colours its output: `--color`, then `NO_COLOR`, then `FORCE_COLOR`.

The precedence (documented in docs/cli.md) is the one pytest and CPython follow: an explicit
`--color always|never` wins; with `--color auto` (the default) a non-empty `NO_COLOR` turns colour
off, else a non-empty `FORCE_COLOR` turns it on, else the output is coloured when its stream is a
terminal whose `TERM` is not `dumb`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import TextIO

CHOICES = ("auto", "always", "never")


def add_color_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--color", choices=CHOICES, default="auto",
                        help="colour the output: auto (default: on a terminal, unless NO_COLOR "
                        "is set or FORCE_COLOR forces it), always or never")


def use_color(choice: str, stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Whether to write ANSI colours to `stream` under `--color choice` and the environment."""
    if choice != "auto":
        return choice == "always"
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    if env.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())
