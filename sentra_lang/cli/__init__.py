"""The `sentra-lang` command line: one module per command, each with `register` and `run`.

Command modules import only the standard library at the top; what a command needs (the
compiler, the runtime, the server) is imported when it runs, so start-up stays fast
(`tests/bench/startup_bench.py`).

Exit codes are stable and documented in docs/cli.md:
0 success (warnings allowed), 1 errors or failures found, 2 usage error (a missing extra
included), 5 nothing collected, 130 interrupted, 141 standard output closed early (a pipe).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from functools import lru_cache

from sentra_lang import __version__

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOTHING_COLLECTED = 5
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a process the closed pipe stopped

COMMANDS = ["check", "compile", "fmt", "explain", "audit", "test", "replay", "docs", "serve",
            "lsp", "diff", "mcp-proxy", "db", "review"]


class UsageError(Exception):
    """A problem with how the command was called (exit code 2)."""


def require_text(value: str, what: str) -> str:
    """`value` from the command line, which must be UTF-8 text: bytes that are not (kept by
    Python as lone surrogates) could reach neither a policy nor a UTF-8 output or file."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        from sentra_lang.diagnostics import visible

        raise UsageError(f"{what} `{visible(value)}` is not UTF-8 text") from None
    return value


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
    """Run one command; the exit code. Output cut short by its reader (`| head`) ends quietly."""
    try:
        code = _run(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return code


@lru_cache(maxsize=1)
def _parser() -> argparse.ArgumentParser:
    """The parser `main` uses, built once a process (`main` may run many times in one)."""
    return build_parser()


def _run(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return EXIT_USAGE
    from sentra_lang.cli.extras import MissingExtra

    try:
        code: int = args.run(args)
    except (UsageError, MissingExtra) as error:
        from sentra_lang.diagnostics import visible

        print(f"sentra-lang {args.command}: error: {visible(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    return code


def _discard_stdout() -> None:
    """The reader of standard output has gone (`... | head`): send what is left nowhere, so
    the interpreter's last flush at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a file (captured in tests)
        pass
