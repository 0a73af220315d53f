"""`sentra-lang replay AUDIT --policy NEW`: what a policy change does to recorded traffic.

Exit 0 when no decision changes, 1 when some do, 2 on usage or policy errors, a file that is not
an audit log, or a log with no decision to replay.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sentra_lang.cli import UsageError
from sentra_lang.cli.color import add_color_option, use_color
from sentra_lang.cli.paths import add_root_option, root_of


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay", help="re-decide a recorded audit log with another policy",
        description="Re-decide every decision of an audit log (a runtime SQLite store or its "
        "JSON Lines export), in order, on fresh state, with the policy NEW, and report the "
        "decisions that change, grouped and counted. Exit 0 when nothing changes, 1 when "
        "something does, 2 on usage or policy errors, a file that is not an audit log, or a "
        "log that records no decision.")
    parser.add_argument("audit", metavar="AUDIT", help="audit database or .jsonl export")
    parser.add_argument("--policy", required=True, metavar="NEW",
                        help="the policy to replay with: a .sentra file or a compiled table")
    parser.add_argument("--to-suite", metavar="FILE",
                        help="also write the traffic as a regression suite (.sentra-test)")
    add_root_option(parser)
    add_color_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from sentra_lang.files import refuse_overwriting
    from sentra_lang.loader import FileUnreadable
    from sentra_lang.policy_file import load_policy_file
    from sentra_lang.testing.replay import (
        AuditLogError,
        read_records,
        render,
        replay,
        write_suite,
    )

    audit = Path(args.audit)
    policy_path = Path(args.policy)
    if not audit.is_file():
        raise UsageError(f"no such audit log: {audit}")
    if not policy_path.is_file():
        raise UsageError(f"no such policy: {policy_path}")
    try:
        loaded = load_policy_file(policy_path, root=root_of(args),
                                  color=use_color(args.color, sys.stderr))
    except FileUnreadable as error:
        raise UsageError(str(error)) from error
    for problem in loaded.problems:
        print(problem, file=sys.stderr)
    if loaded.policy is None:
        raise UsageError(f"policy {policy_path} cannot be used")
    policy = loaded.policy
    if args.to_suite:
        program = [] if loaded.compilation is None else [
            file.real for file in loaded.compilation.program.files]
        try:
            refuse_overwriting(args.to_suite, [audit, policy_path, *program], "suite")
        except ValueError as error:
            raise UsageError(str(error)) from error
    fields = {spec.name for spec in policy.inputs}
    try:
        result = replay(read_records(audit), policy, keep_steps=bool(args.to_suite))
    except AuditLogError as error:
        raise UsageError(str(error)) from error
    except (KeyError, TypeError, ValueError) as error:
        raise UsageError(f"{audit} is not a sentra audit log: {error}") from error
    if not result.decisions:
        raise UsageError(f"no decisions recorded in {audit} ({result.resets} resets): nothing "
                         "to replay")
    sys.stdout.write(render(result))
    if args.to_suite:
        # a suite moves its clock in whole seconds and never back: its expectations are the
        # decisions made at those times (they differ from the report's only at the edge of a
        # window or a decay period, or where the recorded clock went back)
        written = result if not result.timed else replay(
            read_records(audit), policy, keep_steps=True, suite_timeline=True)
        try:
            write_suite(written, Path(args.to_suite), policy_path, fields)
        except OSError as error:
            raise UsageError(f"cannot write the suite {args.to_suite}: "
                             f"{error.strerror or error}") from error
    return 1 if result.changed else 0
