"""`sentra-lang review list|show|approve|deny`: the review queue of a decision server.

An operator's command line for actions held for review (docs/runtime.md, "Review"), over the
server's `/v1/reviews` API with the SDK's `RemoteEngine` (standard library only: it needs no
extra). Tokens come from files or the environment, never the command line: the read token
(`--read-token-file`, or `SENTRA_READ_TOKEN`) for `list` and `show` when the server has one, the
operator token (`--token-file`, or `SENTRA_OPERATOR_TOKEN`) for `approve` and `deny` (it opens
the reads too). Exit codes: 0 done; 1 the server refused or could not answer (an unknown
ticket, a ticket no longer pending, a wrong token, no server); 2 usage errors.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from sentra_lang.cli import EXIT_FAILURE, EXIT_OK, UsageError
from sentra_lang.cli.serve_cmd import OPERATOR_VARIABLE, READ_VARIABLE, read_token_file
from sentra_lang.diagnostics import visible, visible_json

STATUSES = ("pending", "approved", "blocked", "denied", "expired", "cancelled")
"""``sentra_runtime.review.STATUSES``, spelled out so that building the command line imports no
runtime (start-up); a test checks the two agree."""
COLUMNS = ("ticket", "status", "agent_id", "action", "rule_id", "risk", "expires")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "review", help="list, show, approve or deny a decision server's review tickets",
        description="The review queue of a running decision server (`sentra-lang serve`): "
        "list the tickets of actions held for review, show one, or give an operator's verdict.")
    commands = parser.add_subparsers(dest="review_command", metavar="SUBCOMMAND",
                                     required=True)
    listing = commands.add_parser("list", help="the tickets, oldest first")
    listing.add_argument("--status", choices=STATUSES, help="only tickets with this status")
    listing.add_argument("--agent", metavar="ID", help="only this agent's tickets")
    show = commands.add_parser("show", help="one ticket, as JSON")
    show.add_argument("ticket", metavar="TICKET")
    verdicts = []
    for name, meaning in (("approve", "approve a pending ticket: the review rule's allow, "
                                      "decided now against the agent's state"),
                          ("deny", "deny a pending ticket: a block with the review rule's id, "
                                   "and a strike")):
        verdict = commands.add_parser(name, help=meaning)
        verdict.add_argument("ticket", metavar="TICKET")
        verdict.add_argument("--operator", required=True, metavar="NAME",
                             help="who gives the verdict (kept in the audit log)")
        verdict.add_argument("--note", metavar="TEXT", help="why (kept in the audit log)")
        verdicts.append(verdict)
    for sub in (listing, show, *verdicts):
        sub.add_argument("--server", default="http://127.0.0.1:8000", metavar="URL",
                         help="the decision server (default: %(default)s)")
        sub.add_argument("--token-file", metavar="PATH", help="a file holding the operator "
                         f"token (or the environment variable {OPERATOR_VARIABLE})")
        sub.add_argument("--read-token-file", metavar="PATH", help="a file holding the read "
                         f"token (or the environment variable {READ_VARIABLE})")
        sub.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                         help="how long one request may take (default: %(default)s)")
        sub.add_argument("--json", action="store_true", help="JSON instead of text")
    listing.set_defaults(run=run_list)
    show.set_defaults(run=run_show)
    for verdict in verdicts:
        verdict.set_defaults(run=run_verdict)


def run_list(args: argparse.Namespace) -> int:
    from sentra_runtime.client import SentraError

    engine = _engine(args)
    try:
        tickets = engine.tickets(args.status, args.agent)
    except SentraError as error:
        return _refused(error)
    finally:
        engine.close()
    if args.json:
        for ticket in tickets:
            print(visible_json(ticket, sort_keys=True))
        return EXIT_OK
    if not tickets:
        print("no review tickets" + (f" with status {args.status}" if args.status else ""))
        return EXIT_OK
    rows = [[_cell(ticket.get(column)) for column in COLUMNS] for ticket in tickets]
    widths = [max(len(column), *(len(row[i]) for row in rows)) for i, column in
              enumerate(COLUMNS)]
    print("  ".join(column.upper().ljust(width) for column, width in zip(COLUMNS, widths))
          .rstrip())
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return EXIT_OK


def run_show(args: argparse.Namespace) -> int:
    from sentra_runtime.client import SentraError

    engine = _engine(args)
    try:
        ticket = engine.ticket(args.ticket)
    except SentraError as error:
        return _refused(error)
    finally:
        engine.close()
    print(visible_json(ticket, sort_keys=True, indent=None if args.json else 2))
    return EXIT_OK


def run_verdict(args: argparse.Namespace) -> int:
    from sentra_runtime.client import SentraError

    engine = _engine(args)
    if not engine.token:
        engine.close()
        raise UsageError(f"a verdict needs the operator token: --token-file PATH or "
                         f"{OPERATOR_VARIABLE}")
    try:
        decision = engine.review(args.ticket, args.review_command == "approve",
                                 operator=args.operator, note=args.note)
    except SentraError as error:
        return _refused(error)
    finally:
        engine.close()
    if args.json:
        print(visible_json({"seq": decision.seq, "decision": decision.to_dict()},
                           sort_keys=True))
    else:
        print(visible(f"{args.ticket}: {decision.label} ({decision.rule_id}): "
                      f"{decision.reason}"))
        print(f"agent {visible(decision.agent_id)}: cumulative risk "
              f"{decision.cumulative_risk}, blocked attempts {decision.blocked_attempts}, "
              f"{decision.status}")
    return EXIT_OK


def _engine(args: argparse.Namespace) -> Any:
    from sentra_runtime.client import RemoteEngine

    token = (read_token_file(args.token_file, "operator") if args.token_file
             else os.environ.get(OPERATOR_VARIABLE) or None)
    read_token = (read_token_file(args.read_token_file, "read") if args.read_token_file
                  else os.environ.get(READ_VARIABLE) or None)
    try:
        return RemoteEngine(args.server, token=token, read_token=read_token,
                            timeout=args.timeout)
    except ValueError as error:   # no http(s) URL, a timeout out of range, a bad token
        raise UsageError(str(error)) from error


def _refused(error: Exception) -> int:
    print(f"sentra-lang review: {error}", file=sys.stderr)
    return EXIT_FAILURE


def _cell(value: Any) -> str:
    """A table cell: what an agent sent (its id, a reason built from its fields) is shown with
    control and bidirectional characters escaped, so it can neither forge a row nor drive the
    operator's terminal."""
    return "-" if value is None else visible(str(value))
