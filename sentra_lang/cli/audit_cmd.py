"""`sentra-lang audit verify|export`: check or export an audit log.

LOG is a SQLite store file or an exported JSON Lines log. Exit codes: 0 the chain verifies (or
the export was written); 1 tampering found (the first broken seq is printed); 2 usage errors
(missing or unreadable file, not an audit log).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sentra_lang.cli import EXIT_FAILURE, EXIT_OK, UsageError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "audit", help="verify or export an audit log",
        description="Verify the hash chain of an audit log, or export it as JSON Lines.")
    commands = parser.add_subparsers(dest="audit_command", metavar="SUBCOMMAND", required=True)
    verify = commands.add_parser("verify", help="check the hash chain (exit 1 on tampering)")
    verify.add_argument("log", metavar="LOG", help="SQLite store file or .jsonl export")
    verify.add_argument("--expected-head", metavar="HASH",
                        help="the last record's hash as anchored earlier (detects truncation)")
    verify.set_defaults(run=run_verify)
    export = commands.add_parser("export", help="write the log as JSON Lines")
    export.add_argument("log", metavar="LOG", help="SQLite store file")
    export.add_argument("-o", "--output", metavar="FILE", help="output file (default: stdout)")
    export.set_defaults(run=run_export)


def _records(path_text: str) -> list[dict[str, Any]]:
    from sentra_runtime.audit import read_jsonl
    from sentra_runtime.stores.sqlite import is_sqlite_file, read_audit

    path = Path(path_text)
    if not path.is_file():
        raise UsageError(f"no such audit log: {path_text}")
    try:
        records: Iterator[dict[str, Any]] = (read_audit(path) if is_sqlite_file(path)
                                             else read_jsonl(path))
        return list(records)
    except sqlite3.Error as error:
        raise UsageError(f"{path_text}: not a sentra audit store ({error})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {path_text}: {error}") from None


def run_verify(args: argparse.Namespace) -> int:
    from sentra_runtime.audit import verify_records

    result = verify_records(_records(args.log), expected_head=args.expected_head)
    print(f"{args.log}: {result}")
    return EXIT_OK if result.ok else EXIT_FAILURE


def run_export(args: argparse.Namespace) -> int:
    from sentra_runtime.audit import write_jsonl

    records = _records(args.log)
    if not args.output:
        write_jsonl(records, sys.stdout)
        return EXIT_OK
    try:
        with open(args.output, "w", encoding="utf-8", newline="\n") as out:
            count = write_jsonl(records, out)
    except OSError as error:
        raise UsageError(f"cannot write `{args.output}`: {error.strerror or error}") from None
    print(f"wrote {count} records to {args.output}", file=sys.stderr)
    return EXIT_OK
