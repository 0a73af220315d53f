"""`sentra-lang serve POLICY`: the decision server (FastAPI on uvicorn), see docs/server.md."""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
from typing import Any

from sentra_lang.cli import EXIT_FAILURE, EXIT_OK, UsageError
from sentra_lang.cli.audit_cmd import seconds
from sentra_lang.cli.extras import require

OPERATOR_VARIABLE = "SENTRA_OPERATOR_TOKEN"
READ_VARIABLE = "SENTRA_READ_TOKEN"
MAX_TOKEN_FILE_BYTES = 4096
MAX_WORKERS = 64


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve", help="run the decision server (Sentra-compatible API, /v1, dashboard)",
        description="Serve a policy over HTTP: the Sentra-compatible API, the native /v1 API, "
        "/metrics and the live dashboard at /dashboard. State and audit log are kept in a SQLite "
        "file or a PostgreSQL database, so they survive restarts; several processes "
        "(--workers) and several instances (one PostgreSQL database) may share them. Exit 1 "
        "when the policy does not compile, 2 on a usage error (a missing policy file, a bad "
        "option or token, a database that cannot be used).")
    parser.add_argument("policy", metavar="POLICY", help="a .sentra policy or a compiled .json "
                        "table")
    parser.add_argument("--db", default="sentra.db", help="where agent state and the audit log "
                        "live: a SQLite file, or a PostgreSQL URL (postgresql://USER@HOST:5432/DB; "
                        "the password from PGPASSWORD or ~/.pgpass) that any number of instances "
                        "share (default: sentra.db)")
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="server processes "
                        "on the port, sharing the store (default: 1)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: "
                        "127.0.0.1, loopback only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="a name the Host header may give, against DNS rebinding; "
                        "repeatable; `*` accepts any (default: the loopback names, and the bound "
                        "address)")
    parser.add_argument("--operator-token-file", metavar="PATH", help="file holding the bearer "
                        "token for resets and reload (or the environment variable "
                        f"{OPERATOR_VARIABLE}); without one, operator actions are refused")
    parser.add_argument("--operator-token", metavar="TOKEN", help="the operator token itself "
                        "(visible to anyone who can list processes: prefer the file or the "
                        "environment)")
    parser.add_argument("--read-token-file", metavar="PATH", help="file holding a bearer token "
                        "that event, agent, policy and metrics reads then need (or the "
                        f"environment variable {READ_VARIABLE}); required beyond loopback "
                        "unless --open-reads")
    parser.add_argument("--read-token", metavar="TOKEN", help="the read token itself (visible "
                        "to anyone who can list processes)")
    parser.add_argument("--open-reads", action="store_true", help="serve the audit log and agent "
                        "states without a read token even beyond loopback")
    parser.add_argument("--max-body-bytes", type=int, default=64 * 1024, metavar="N",
                        help="largest accepted request body (default: 65536)")
    parser.add_argument("--header-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="time a client has to send a request's head (default: 10)")
    parser.add_argument("--body-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="time a client has to send a request's body after its head "
                        "(default: 10)")
    parser.add_argument("--db-answer-timeout", type=seconds, metavar="SECONDS",
                        help="with a postgresql:// --db, how long to wait for each answer of "
                        "the database (a decision's, a read's) before answering 503 (default: "
                        "15, the store's; an agent's lock is waited for 5 s at most, and at "
                        "most half of it)")
    parser.add_argument("--log-level", default="warning",
                        choices=["critical", "error", "warning", "info", "debug"],
                        help="uvicorn log level (default: warning)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    require("server", "fastapi", "uvicorn")
    from sentra_runtime.stores import is_postgres_url

    if is_postgres_url(args.db):
        require("postgres", "psycopg", "psycopg_pool")
        # each failed reconnection would be a warning: the server logs the outage once itself
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    import uvicorn

    from sentra_lang.server import auth
    from sentra_lang.server.app import create_app
    from sentra_lang.server.edge import allowed_hosts, is_loopback
    from sentra_lang.server.gate import PolicyRefused
    from sentra_lang.server.protocol import SWITCH_INTERVAL, uvicorn_settings

    check_options(args)
    loopback = is_loopback(args.host)
    operator_token = token(args, "operator", OPERATOR_VARIABLE, auth)
    read_token = token(args, "read", READ_VARIABLE, auth)
    if not loopback and read_token is None and not args.open_reads:
        raise UsageError(f"serving beyond loopback ({args.host}) needs a read token, or the "
                         "audit log and agent states are open to anyone who can reach the port: "
                         f"give --read-token-file PATH (or {READ_VARIABLE}), or --open-reads to "
                         "serve them openly")
    hosts = allowed_hosts(args.host, args.allowed_host)

    def make_app(metrics_dir: str | None = None) -> Any:
        return create_app(args.policy, args.db, operator_token=operator_token,
                          read_token=read_token, allowed_hosts=hosts,
                          max_body_bytes=args.max_body_bytes, metrics_dir=metrics_dir,
                          db_answer_timeout=args.db_answer_timeout)

    settings = uvicorn_settings(args.host, args.port, log_level=args.log_level,
                                header_timeout=args.header_timeout,
                                body_timeout=args.body_timeout)
    app: Any = None
    try:
        if args.workers == 1:
            app = make_app()
        else:
            check_before_forking(args)
    except PolicyRefused as refused:
        if refused.unreadable:
            raise UsageError("; ".join(refused.problems)) from refused
        for problem in refused.problems:
            print(problem, file=sys.stderr)
        return EXIT_FAILURE
    except Exception as error:
        unusable = database_error(args.db, error)
        if unusable is None:
            raise
        raise unusable from error
    announce(args, loopback, hosts, operator_token, read_token)
    sys.setswitchinterval(SWITCH_INTERVAL)
    if args.workers == 1:
        uvicorn.run(app, **settings)
        return EXIT_OK
    from sentra_lang.server.workers import Supervisor, listen

    try:
        sock = listen(args.host, args.port)
    except OSError as error:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: "
                         f"{error.strerror or error}") from error
    return Supervisor(make_app, settings, args.workers).run(sock)


def check_before_forking(args: argparse.Namespace) -> None:
    """What a worker would refuse, refused once before any is started: a policy that does not
    compile, a database that cannot be used (its schema is created or upgraded here)."""
    from pathlib import Path

    from sentra_lang.server.gate import load_table, open_state

    load_table(Path(args.policy))
    open_state(args.db, args.db_answer_timeout).close()


def database_error(db: str, error: Exception) -> UsageError | None:
    """The usage error for a state database that cannot be used (``None`` when ``error`` is
    not about the database)."""
    from sentra_runtime.stores import SchemaError, StoreUnavailable
    from sentra_runtime.stores.postgres import redacted

    where = redacted(db)
    if isinstance(error, (SchemaError, StoreUnavailable)):
        return UsageError(f"cannot use {where} as the state database: {error}")
    if isinstance(error, sqlite3.Error):
        return UsageError(f"cannot use {where} as the state database ({error}): give --db "
                          "a new file in an existing, writable folder, or a database written "
                          "by `sentra-lang serve`")
    if isinstance(error, OSError):
        return UsageError(f"cannot open the state database {where}: "
                          f"{error.strerror or error}")
    return None


def check_options(args: argparse.Namespace) -> None:
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, not {args.port}")
    if not 1 <= args.workers <= MAX_WORKERS:
        raise UsageError(f"--workers must be between 1 and {MAX_WORKERS}, not {args.workers}")
    if args.max_body_bytes < 1024:
        raise UsageError("--max-body-bytes must be at least 1024")
    for name in ("header_timeout", "body_timeout"):
        seconds = getattr(args, name)
        if not 0 < seconds <= 3600:
            raise UsageError(f"--{name.replace('_', '-')} must be between 0 and 3600 seconds, "
                             f"not {seconds}")


def token(args: argparse.Namespace, role: str, variable: str, auth: Any) -> str | None:
    """The ``role`` token from its file, the environment or the command line (one of them),
    checked; a token on the command line gets a warning (``ps`` shows it)."""
    path = getattr(args, f"{role}_token_file")
    given = getattr(args, f"{role}_token")
    from_environment = os.environ.get(variable)
    sources = [name for name, value in ((f"--{role}-token-file", path),
                                        (f"--{role}-token", given)) if value is not None]
    if len(sources) > 1:
        raise UsageError(f"give the {role} token once: {' and '.join(sources)} both given")
    if path is not None:
        value, source = read_token_file(path, role), path
    elif given is not None:
        value, source = given, f"--{role}-token"
        print(f"sentra-lang serve: warning: --{role}-token puts the token on the command line, "
              f"where anyone who can list processes reads it: use --{role}-token-file or "
              f"{variable}", file=sys.stderr)
    elif from_environment:
        value, source = from_environment, variable
    else:
        return None
    try:
        return str(auth.checked_token(value, source))
    except auth.TokenRefused as refused:
        raise UsageError(str(refused)) from refused


def read_token_file(path: str, role: str) -> str:
    """A token file's text, without the one line break that ends it."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_TOKEN_FILE_BYTES + 1)
    except OSError as error:
        raise UsageError(f"cannot read the {role} token file {path}: "
                         f"{error.strerror or error}") from error
    if len(data) > MAX_TOKEN_FILE_BYTES:
        raise UsageError(f"the {role} token file {path} is larger than "
                         f"{MAX_TOKEN_FILE_BYTES} bytes: it should hold the token alone")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(f"the {role} token file {path} is not UTF-8 text") from error
    return text.removesuffix("\n").removesuffix("\r")


def announce(args: argparse.Namespace, loopback: bool, hosts: list[str],
             operator_token: str | None, read_token: str | None) -> None:
    lines = []
    if not loopback:
        lines.append(f"warning: listening on {args.host}, beyond loopback; Host names "
                     f"answered: {', '.join(hosts)} (add others with --allowed-host)")
    if operator_token is None:
        lines.append("no operator token: reset and reload are refused")
    if read_token is None:
        lines.append("no read token: events, agents, policy and metrics are open to whoever "
                     "reaches the port")
    from sentra_runtime.stores.postgres import redacted

    if "@" in args.db and redacted(args.db) != args.db:
        lines.append("warning: the --db URL holds a password, which anyone who can list "
                     "processes reads: give it in PGPASSWORD or ~/.pgpass instead")
    workers = f", {args.workers} workers" if args.workers > 1 else ""
    lines.append(f"{args.policy} on http://{args.host}:{args.port}{workers} (dashboard "
                 f"/dashboard, API docs /docs, state {redacted(args.db)})")
    for line in lines:
        print(f"sentra-lang serve: {line}", file=sys.stderr)
