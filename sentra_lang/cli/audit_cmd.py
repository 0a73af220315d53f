"""`sentra-lang audit verify|export`: check or export an audit log.

LOG is a SQLite store file, a PostgreSQL URL (``postgresql://...``), or (for ``verify`` and
``head``) an exported JSON Lines log. ``head`` prints ``SEQ:HASH`` of the log's last record, to
keep elsewhere (the defence against someone who can rewrite the whole log): ``verify --anchor
SEQ:HASH`` then checks the log still holds that record, unchanged. Verification reads the log once, in order and in bounded memory: the
hash chain, the log's end against the store's head (or the export's head line), and every
agent's stored state against the log. Exit codes: 0 the log verifies (or the export was
written); 1 tampering found (the first broken seq is printed); 2 usage errors (missing or
unreadable file, unreachable database, not an audit log).
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from sentra_lang.cli import EXIT_FAILURE, EXIT_OK, UsageError
from sentra_lang.cli.extras import require
from sentra_lang.cli.paths import store_file_error
from sentra_lang.diagnostics import visible


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "audit", help="verify or export an audit log",
        description="Verify an audit log (its hash chain, its end against the stored head, the "
        "agents' stored states against it), or export it as JSON Lines.")
    commands = parser.add_subparsers(dest="audit_command", metavar="SUBCOMMAND", required=True)
    verify = commands.add_parser("verify", help="check the log and the states (exit 1 on "
                                                "tampering)")
    verify.add_argument("log", metavar="LOG", help="SQLite store file, postgresql:// URL, or "
                                                   ".jsonl export")
    verify.add_argument("--expected-head", metavar="HASH",
                        help="the hash the log must end at (for an export or a copy taken "
                             "when the head was noted)")
    verify.add_argument("--anchor", metavar="SEQ:HASH", type=_anchor,
                        help="a record noted earlier with `audit head`: the log must still hold "
                             "it, unchanged (it may have grown since); detects a log rewritten "
                             "with its head")
    add_answer_timeout(verify)
    verify.set_defaults(run=run_verify)
    head = commands.add_parser("head", help="print the seq and hash of the log's last record, "
                                            "to anchor elsewhere")
    head.add_argument("log", metavar="LOG", help="SQLite store file, postgresql:// URL, or "
                                                 ".jsonl export")
    add_answer_timeout(head)
    head.set_defaults(run=run_head)
    export = commands.add_parser("export", help="write the log as JSON Lines, then the agents' "
                                                "states and the head")
    export.add_argument("log", metavar="LOG", help="SQLite store file or postgresql:// URL")
    export.add_argument("-o", "--output", metavar="FILE", help="output file (default: stdout)")
    add_answer_timeout(export)
    export.set_defaults(run=run_export)


def add_answer_timeout(parser: argparse.ArgumentParser) -> None:
    """``--db-answer-timeout SECONDS``: how long a command on a PostgreSQL URL waits for each
    answer of the database (shared by ``audit`` and ``db``; not given: the runtime's
    ``ONE_SHOT_ANSWER_SECONDS``, which the help names, imported only when a command runs)."""
    parser.add_argument("--db-answer-timeout", type=seconds, metavar="SECONDS",
                        help="on a postgresql:// URL, how long to wait for each answer of the "
                             "database (each batch of rows of a long read, not the whole "
                             "command) before giving up with exit 2 (default: 60)")


def answer_timeout(args: argparse.Namespace) -> dict[str, float]:
    """The ``answer_timeout`` option of a one-shot PostgreSQL read, when one was given."""
    given = args.db_answer_timeout
    return {} if given is None else {"answer_timeout": given}


def seconds(text: str) -> float:
    """A time option's value: seconds, more than 0 and at most an hour."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds <= 3600:
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 3600, not `{text}`")
    return seconds


def run_verify(args: argparse.Namespace) -> int:
    from sentra_runtime.audit import read_jsonl, verify_export
    from sentra_runtime.stores.postgres import redacted

    with _reading(args.log) as (kind, target):
        if kind == "postgres":
            from sentra_runtime.stores.postgres import verify_database

            result = verify_database(target, expected_head=args.expected_head,
                                     anchor=args.anchor, **answer_timeout(args))
        elif kind == "sqlite":
            from sentra_runtime.stores.sqlite import verify_file

            result = verify_file(target, expected_head=args.expected_head, anchor=args.anchor)
        else:
            result = verify_export(read_jsonl(target), expected_head=args.expected_head,
                                   anchor=args.anchor)
    # a problem quotes agent ids, which an agent chose: escaped, never acted on by the terminal
    print(f"{redacted(args.log)}: {visible(str(result))}")
    return EXIT_OK if result.ok else EXIT_FAILURE


def run_head(args: argparse.Namespace) -> int:
    """``SEQ:HASH`` of the last record: what ``verify --anchor`` checks later."""
    from sentra_runtime.audit import head, read_jsonl

    with _reading(args.log) as (kind, target):
        if kind == "postgres":
            from sentra_runtime.stores.postgres import database_head

            seq, digest = database_head(target, **answer_timeout(args))
        elif kind == "sqlite":
            from sentra_runtime.stores.sqlite import file_head

            seq, digest = file_head(target)
        else:
            records = list(read_jsonl(target))
            digest = head(records)
            seq = next((line.get("seq") for line in reversed(records)
                        if line.get("hash") == digest), 0) if digest else 0
    print(f"{seq}:{digest}" if digest else "0: the log is empty")
    return EXIT_OK


def _anchor(text: str) -> tuple[int, str]:
    """``SEQ:HASH`` as `audit head` prints it."""
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or not digest.startswith("sha256:"):
        raise argparse.ArgumentTypeError(f"expected SEQ:HASH as `audit head` prints it, not "
                                         f"`{text}`")
    return int(seq), digest


def run_export(args: argparse.Namespace) -> int:
    if not args.output:
        _export(args, sys.stdout)
        return EXIT_OK
    from sentra_lang.files import atomic_output

    try:
        with atomic_output(Path(args.output)) as out:
            count = _export(args, out)
    except OSError as error:
        raise UsageError(f"cannot write `{args.output}`: {error.strerror or error}") from None
    print(f"wrote {count} records to {args.output}", file=sys.stderr)
    return EXIT_OK


def _export(args: argparse.Namespace, out: IO[str]) -> int:
    log = args.log
    with _reading(log) as (kind, target):
        if kind == "postgres":
            from sentra_runtime.stores.postgres import export_database

            return export_database(target, out, **answer_timeout(args))
        if kind == "sqlite":
            from sentra_runtime.stores.sqlite import export_file

            return export_file(target, out)
    raise UsageError(f"{log} is not a store (a SQLite file or a postgresql:// URL); an export "
                     "is already JSON Lines")


@contextlib.contextmanager
def _reading(log: str) -> Iterator[tuple[str, str]]:
    """What ``log`` is (``postgres``, ``sqlite`` or ``jsonl``) and where; the errors of reading
    it as usage errors."""
    from sentra_runtime.stores import SchemaError, StoreUnavailable, is_postgres_url
    from sentra_runtime.stores.postgres import redacted
    from sentra_runtime.stores.sqlite import is_sqlite_file

    if is_postgres_url(log):
        require("postgres", "psycopg", "psycopg_pool")
        kind = "postgres"
    elif not Path(log).is_file():
        raise UsageError(f"no such audit log: {log}")
    else:
        kind = "sqlite" if is_sqlite_file(log) else "jsonl"
    try:
        yield kind, log
    except BrokenPipeError:
        raise   # the reader of standard output has gone: `main` ends quietly
    except (SchemaError, StoreUnavailable) as error:
        raise UsageError(f"{redacted(log)}: {error}") from None
    except sqlite3.Error as error:
        raise store_file_error(log, error, "audit store") from None
    except (OSError, UnicodeDecodeError) as error:
        if kind != "jsonl":   # a store's read errors are its own: this is the output's
            raise
        raise UsageError(f"cannot read {log}: {error}") from None
