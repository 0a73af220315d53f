"""`sentra-lang mcp-proxy POLICY [options] -- COMMAND ARGS...`: the MCP gateway.

It runs COMMAND (an MCP server that speaks over standard input and output), takes its place
towards the MCP client, and decides every tool call with POLICY before it is forwarded (see
docs/integrations.md). Needs the `mcp` extra, imported only when the command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import sys
from typing import TYPE_CHECKING, Any

from sentra_lang.cli import EXIT_FAILURE, EXIT_OK, UsageError

if TYPE_CHECKING:
    from sentra_runtime import Engine
    from sentra_runtime.client import RemoteEngine

_EXTRA_MODULES = {"mcp", "anyio", "httpx", "httpx_sse", "sse_starlette", "starlette",
                  "pydantic_settings", "jsonschema", "python_multipart", "multipart"}
SECRET_VARIABLES = ("SENTRA_OPERATOR_TOKEN", "SENTRA_READ_TOKEN")
"""Kept from the wrapped server's environment: its tools have no business reading them."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "mcp-proxy", help="wrap an MCP server: decide every tool call before it is forwarded",
        description="Run COMMAND, an MCP server that speaks over standard input and output, and "
        "stand in for it towards the MCP client: every tools/call becomes an action (the tool "
        "name is the action type, the arguments are the fields) decided by POLICY before it is "
        "forwarded; a call that is not allowed is answered with a tool error carrying the "
        "reason and never reaches the server. Everything else passes through unchanged. Put "
        "`--` before COMMAND. Needs the `mcp` extra. Exit 0 when the client ends the session, "
        "1 when the policy does not compile or the server ends it, 2 on a usage error.",
        usage="sentra-lang mcp-proxy POLICY [options] -- COMMAND [ARGS ...]")
    parser.add_argument("policy", metavar="POLICY", help="a .sentra policy or a compiled .json "
                        "table (with --server: the policy the server serves, to hide tools)")
    add_options(parser)
    parser.add_argument("wrapped", nargs=argparse.REMAINDER, metavar="-- COMMAND ARGS",
                        help="the MCP server to run, after `--`")
    parser.set_defaults(run=run)


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agent-id", default="mcp", metavar="ID",
                        help="the agent whose calls these are (default: mcp)")
    parser.add_argument("--db", metavar="PATH", help="SQLite file for agent state and the "
                        "audit log (default: kept in memory, lost when the gateway exits)")
    parser.add_argument("--server", metavar="URL", help="ask this decision server "
                        "(`sentra-lang serve`) instead of deciding in process")
    parser.add_argument("--read-token-file", metavar="PATH", help="with --server: a file "
                        "holding the server's read token, to check at start that it serves "
                        "POLICY (or the environment variable SENTRA_READ_TOKEN)")
    parser.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                        help="with --server: the longest one decision may take; past it the "
                        "call is refused (default: 5)")
    parser.add_argument("--review-wait", default="0", metavar="SECONDS",
                        help="how long a call the policy holds for review waits for the "
                        "operator's verdict, polling its ticket as the SDK's guard does: "
                        "approved, the call is forwarded once; denied, it is refused (default: "
                        "0, answered at once with the ticket)")
    parser.add_argument("--hide-never-allowed", action="store_true",
                        help="leave out of tools/list the tools the policy can never allow")
    parser.add_argument("--log-level", default="warning",
                        choices=["critical", "error", "warning", "info", "debug"],
                        help="what to log on standard error (default: warning; info logs "
                        "every refused call)")


def run(args: argparse.Namespace) -> int:
    command = split_command(args)
    try:
        from mcp.client.stdio import StdioServerParameters

        from sentra_lang.mcp.gateway import Gateway
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in _EXTRA_MODULES:
            raise
        raise UsageError("this command needs the `mcp` extra: pip install 'sentra-lang[mcp]'") \
            from error
    from sentra_runtime.client import PolicyEngine

    from sentra_lang.loader import FileUnreadable
    from sentra_lang.mcp.verdicts import never_allowed
    from sentra_lang.policy_file import load_policy_file

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    for name in ("sentra_lang", "sentra_runtime"):
        logging.getLogger(name).setLevel(args.log_level.upper())
    try:
        loaded = load_policy_file(args.policy)
    except FileUnreadable as error:
        raise UsageError(str(error)) from error
    if loaded.policy is None or loaded.table is None:
        for problem in loaded.problems:
            print(problem, file=sys.stderr)
        return EXIT_FAILURE
    policy = loaded.policy
    decider: PolicyEngine = remote(args, policy.hash) if args.server else embedded(args, loaded.table)
    hidden = (lambda tool: never_allowed(policy, tool)) if args.hide_never_allowed else None
    gateway = Gateway(decider, args.agent_id, hidden, offload=args.server is not None,
                      review_wait=args.review_wait)
    server = StdioServerParameters(command=command[0], args=command[1:], env={
        key: value for key, value in os.environ.items() if key not in SECRET_VARIABLES})
    try:
        client_ended = asyncio.run(gateway.run(server))
    except OSError as error:
        raise UsageError(f"cannot run `{command[0]}`: {error.strerror or error}") from error
    if not client_ended:
        print("sentra-lang mcp-proxy: the wrapped server ended the session", file=sys.stderr)
    return EXIT_OK if client_ended else EXIT_FAILURE


def split_command(args: argparse.Namespace) -> list[str]:
    """The wrapped command, after `--`; options between POLICY and `--` are read here."""
    command: list[str] = args.wrapped
    if "--" in command:
        at = command.index("--")
        options = argparse.ArgumentParser(prog="sentra-lang mcp-proxy", add_help=False)
        add_options(options)
        options.parse_args(command[:at], namespace=args)
        command = command[at + 1:]
    if not command:
        raise UsageError("give the MCP server to run after `--`: sentra-lang mcp-proxy POLICY "
                         "-- COMMAND [ARGS ...]")
    if command[0].startswith("-"):
        raise UsageError(f"`{command[0]}` is not a command: put `--` between the options and "
                         "the MCP server's command")
    if args.timeout <= 0 or args.timeout > 3600:
        raise UsageError(f"--timeout must be between 0 and 3600 seconds, not {args.timeout}")
    args.review_wait = review_wait(args.review_wait)
    return command


def review_wait(text: str) -> float:
    """``--review-wait``: a finite number of seconds, at least 0."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise UsageError(f"--review-wait must be a number of seconds, at least 0, not `{text}`")
    return seconds


def embedded(args: argparse.Namespace, table: dict[str, Any]) -> Engine:
    """An engine in this process, on a SQLite store (``--db``) or in memory."""
    import sqlite3

    from sentra_runtime import Engine, MemoryStore, SQLiteStore

    if args.db is None:
        print("sentra-lang mcp-proxy: agent state and the audit log are kept in memory and lost "
              "when the gateway exits; give --db FILE to keep them", file=sys.stderr)
        if args.review_wait:
            print("sentra-lang mcp-proxy: warning: no operator can judge the review tickets of "
                  "a store in memory, so a held call waits out --review-wait; give --db FILE "
                  "(shared with `sentra-lang serve`) or --server URL", file=sys.stderr)
        return Engine(table, MemoryStore())
    try:
        return Engine(table, SQLiteStore(args.db))
    except (sqlite3.Error, OSError) as error:
        raise UsageError(f"cannot use {args.db} as the state database ({error})") from error


def remote(args: argparse.Namespace, policy_hash: str) -> RemoteEngine:
    """The decision server; warns when it does not serve POLICY (tools are hidden by POLICY,
    calls decided by the server's policy)."""
    from sentra_runtime.client import RemoteEngine, SentraError

    from sentra_lang.cli.serve_cmd import READ_VARIABLE, read_token_file

    if args.db is not None:
        raise UsageError("--db and --server exclude each other: the server keeps the state")
    token = (read_token_file(args.read_token_file, "read") if args.read_token_file
             else os.environ.get(READ_VARIABLE) or None)
    try:
        engine = RemoteEngine(args.server, read_token=token, timeout=args.timeout)
    except ValueError as error:
        raise UsageError(str(error)) from error
    try:
        served = engine.policy_info().get("hash")
    except SentraError as error:
        print(f"sentra-lang mcp-proxy: warning: cannot check which policy the server serves "
              f"({error})", file=sys.stderr)
        return engine
    if served != policy_hash:
        print(f"sentra-lang mcp-proxy: warning: the server serves policy {served}, not "
              f"{args.policy} ({policy_hash}): calls are decided by the server's policy, tools "
              "are hidden by POLICY", file=sys.stderr)
    return engine
