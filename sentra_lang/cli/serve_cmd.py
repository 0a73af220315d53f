"""`sentra-lang serve POLICY`: the decision server (FastAPI on uvicorn), see docs/server.md."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from typing import Any, Literal

from sentra_lang.cli import EXIT_FAILURE, EXIT_OK, UsageError
from sentra_lang.cli.extras import require

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve", help="run the decision server (Sentra-compatible API, /v1, dashboard)",
        description="Serve a policy over HTTP: the Sentra-compatible API, the native /v1 API, "
        "/metrics and the live dashboard at /dashboard. State and audit log are kept in a SQLite "
        "file, so they survive restarts. Exit 1 when the policy does not compile.")
    parser.add_argument("policy", metavar="POLICY", help="a .sentra policy or a compiled .json "
                        "table")
    parser.add_argument("--db", default="sentra.db", help="SQLite file for agent state and the "
                        "audit log (default: sentra.db)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: "
                        "127.0.0.1, loopback only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    parser.add_argument("--operator-token", default=None, metavar="TOKEN",
                        help="bearer token for reset and reload (default: the environment "
                        "variable SENTRA_OPERATOR_TOKEN; without one, operator actions are "
                        "refused)")
    parser.add_argument("--max-body-bytes", type=int, default=64 * 1024, metavar="N",
                        help="largest accepted request body (default: 65536)")
    parser.add_argument("--log-level", default="warning",
                        choices=["critical", "error", "warning", "info", "debug"],
                        help="uvicorn log level (default: warning)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    require("server", "fastapi", "uvicorn")
    import uvicorn

    from sentra_lang.server import create_app
    from sentra_lang.server.gate import PolicyRefused

    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, not {args.port}")
    if args.max_body_bytes < 1024:
        raise UsageError("--max-body-bytes must be at least 1024")
    token = args.operator_token or os.environ.get("SENTRA_OPERATOR_TOKEN") or None
    try:
        app = create_app(args.policy, args.db, operator_token=token,
                         max_body_bytes=args.max_body_bytes)
    except PolicyRefused as refused:
        for problem in refused.problems:
            print(problem, file=sys.stderr)
        return EXIT_FAILURE
    except sqlite3.Error as error:
        raise UsageError(f"cannot use {args.db} as the state database ({error}): give --db "
                         "a new file in an existing, writable folder, or a database written "
                         "by `sentra-lang serve`") from error
    except OSError as error:
        raise UsageError(f"cannot open the state database {args.db}: "
                         f"{error.strerror or error}") from error
    if args.host not in LOOPBACK:
        print(f"sentra-lang serve: warning: listening on {args.host}, beyond loopback",
              file=sys.stderr)
    if token is None:
        print("sentra-lang serve: no operator token: reset and reload are refused",
              file=sys.stderr)
    print(f"sentra-lang serve: {args.policy} on http://{args.host}:{args.port} "
          f"(dashboard /dashboard, API docs /docs, state {args.db})", file=sys.stderr)
    http, loop = fast_stack()
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                timeout_graceful_shutdown=3, access_log=False, http=http, loop=loop)
    return EXIT_OK


def fast_stack() -> tuple[Literal["httptools", "auto"], Literal["uvloop", "auto"]]:
    """httptools and uvloop (``uvicorn[standard]``) named explicitly when installed: about
    twice the speed of h11 and asyncio's loop; uvicorn's own choice otherwise."""
    return ("httptools" if _importable("httptools") else "auto",
            "uvloop" if _importable("uvloop") else "auto")


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True
