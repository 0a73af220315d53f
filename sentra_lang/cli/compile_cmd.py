"""`sentra-lang compile FILE -o OUT.json`: write the decision table (or, with `--emit python`,
the Python the runtime generates from it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sentra_lang.cli import EXIT_FAILURE, EXIT_OK, UsageError
from sentra_lang.cli.color import add_color_option, use_color
from sentra_lang.cli.paths import add_root_option, root_of


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "compile", help="compile a policy to its decision table (JSON)",
        description="Compile a policy to its canonical decision table. Byte-identical output "
        "for the same source. Exit 1 when the policy has errors (nothing is written).")
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("-o", "--output", metavar="OUT", help="output file (default: stdout)")
    add_color_option(parser)
    parser.add_argument("--emit", choices=["table", "python"], default="table",
                        help="what to write: the decision table (JSON, the default) or the "
                             "matcher the runtime generates from it when it loads the table "
                             "(Python source, exactly the code that runs)")
    add_root_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from sentra_lang.compiler import compile_file
    from sentra_lang.diagnostics import Severity, render_human
    from sentra_lang.files import refuse_overwriting, write_atomically
    from sentra_lang.loader import FileUnreadable
    from sentra_lang.table import dump_table

    try:
        result = compile_file(args.file, analyse=False, root=root_of(args))
    except FileUnreadable as error:
        raise UsageError(str(error)) from error
    for diag in result.sorted_diagnostics():
        if diag.severity is Severity.ERROR:
            print(render_human(diag, color=use_color(args.color, sys.stderr)), file=sys.stderr)
    if not result.ok or result.table is None:
        if result.ok:
            print(f"{args.file}: a library (no `policy` header) has no table", file=sys.stderr)
        return EXIT_FAILURE
    text = dump_table(result.table)
    if args.emit == "python":
        from sentra_runtime import load_policy
        from sentra_runtime.codegen import compile_matcher

        text = compile_matcher(load_policy(result.table.model_dump(mode="json"))).source
    if args.output:
        try:
            refuse_overwriting(args.output, [f.real for f in result.program.files], "table")
        except ValueError as error:
            raise UsageError(str(error)) from error
        try:
            write_atomically(Path(args.output), text)
        except OSError as error:
            raise UsageError(f"cannot write `{args.output}`: {error.strerror or error}") from error
    else:
        sys.stdout.write(text)
    return EXIT_OK
