"""`sentra-lang lsp`: the language server for editors (LSP over standard input and output).

See docs/editors.md. The server needs the `lsp` extra (pygls); it is imported only here, when
the command runs.
"""

from __future__ import annotations

import argparse
from typing import Any

from sentra_lang.cli import EXIT_OK
from sentra_lang.cli.extras import require


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "lsp", help="run the language server for editors (LSP over stdin/stdout)",
        description="Run the sentra language server: diagnostics as you type, hover, go to "
        "definition, formatting and completion for .sentra policies and .sentra-test suites. "
        "It speaks the Language Server Protocol on standard input and output until the editor "
        "ends it; logs go to standard error. Needs the `lsp` extra.")
    parser.add_argument("--stdio", action="store_true",
                        help="use standard input and output (the default and only transport; "
                        "accepted because editors pass it)")
    parser.add_argument("--log-level", default="warning",
                        choices=["critical", "error", "warning", "info", "debug"],
                        help="what to log on standard error (default: warning)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    require("lsp", "pygls", "lsprotocol")
    from sentra_lang.lsp.server import serve

    serve(args.log_level)
    return EXIT_OK
