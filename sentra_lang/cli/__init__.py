"""The `sentra-lang` command line: one module per command, each with `register` and `run`.

Exit codes are stable and documented in docs/cli.md:
0 success (warnings allowed), 1 errors or failures found, 2 usage error, 5 nothing collected.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from sentra_lang import __version__

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOTHING_COLLECTED = 5

COMMANDS = ["check", "compile", "fmt", "explain", "audit", "test", "replay", "docs", "serve", "lsp",
            "mcp-proxy"]


class UsageError(Exception):
    """A problem with how the command was called (exit code 2)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sentra-lang",
        description="Policy-as-code gate for AI agents.",
    )
    parser.add_argument("--version", action="version", version=f"sentra-lang {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module_name = f"sentra_lang.cli.{name.replace('-', '_')}_cmd"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        code: int = args.run(args)
    except UsageError as error:
        print(f"sentra-lang {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return code
