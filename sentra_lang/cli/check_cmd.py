"""`sentra-lang check PATH...`: diagnostics and exact analysis of policy files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sentra_lang import __version__
from sentra_lang.cli import EXIT_FAILURE, EXIT_OK, UsageError
from sentra_lang.cli.color import add_color_option, use_color
from sentra_lang.cli.paths import add_root_option, expand, root_of

if TYPE_CHECKING:
    from sentra_lang.analysis import AnalysisOptions
    from sentra_lang.diagnostics import Diagnostic
    from sentra_lang.source import Span


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check", help="check policy files: errors, warnings and analysis findings",
        description="Check .sentra files (folders are searched recursively). Exit 0 when no "
        "errors were found, 1 on errors (or warnings with --strict), 2 on usage errors.")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    parser.add_argument("--format", choices=["human", "json", "sarif", "github"], default="human",
                        help="output on stdout: human (default), json, sarif (SARIF 2.1.0) or "
                        "github (workflow commands that annotate a pull request)")
    parser.add_argument("--strict", action="store_true", help="fail on warnings too")
    parser.add_argument("--notes", action="store_true",
                        help="include analysis notes (overlaps, uncovered inputs), in every format")
    add_color_option(parser)
    parser.add_argument("--no-analysis", action="store_true", help="skip the exact analysis")
    add_root_option(parser)
    parser.add_argument("--all-witnesses", action="store_true",
                        help="one overlap note (with its witness) per pair of rules, instead "
                        "of one summary per rule that out-decides many")
    parser.add_argument("--progress", action="store_true",
                        help="report how far a long analysis has come on stderr (default: "
                        "when stderr is a terminal)")
    parser.set_defaults(run=run)


def collect(paths: list[str], *, analyse: bool = True,
            root: Path | None = None,
            options: AnalysisOptions | None = None) -> tuple[list[Diagnostic], int, list[Span]]:
    """Every file's diagnostics, sorted; how many files; and where each policy that ignores
    undeclared fields says so (`undeclared_fields ignore`), in file order."""
    from sentra_lang.compiler import compile_file
    from sentra_lang.diagnostics import sort_diagnostics
    from sentra_lang.loader import FileUnreadable

    diagnostics: list[Diagnostic] = []
    ignoring: list[Span] = []
    files = expand(paths)
    for path in files:
        try:
            compilation = compile_file(path, analyse=analyse, root=root, analysis=options)
        except FileUnreadable as error:
            raise UsageError(str(error)) from error
        diagnostics.extend(compilation.diagnostics)
        model = compilation.model
        if model is not None and model.undeclared_fields == "ignore" and model.undeclared_span:
            ignoring.append(model.undeclared_span)
    return sort_diagnostics(diagnostics), len(files), ignoring


def settings_lines(ignoring: list[Span]) -> list[str]:
    """What the summary says of the policies that read past undeclared fields (a typo in a
    field name then fails open), whether or not notes are shown."""
    return [f"{span.path}: undeclared fields are ignored (`undeclared_fields ignore` at line "
            f"{span.line}): a misspelt field is read past, not refused" for span in ignoring]


def run(args: argparse.Namespace) -> int:
    from sentra_lang.analysis import AnalysisOptions
    from sentra_lang.cli.progress import ProgressLine
    from sentra_lang.diagnostics import (
        Severity,
        render_github,
        render_human,
        render_json,
        render_sarif,
        render_summary,
    )

    line = ProgressLine(sys.stderr, force=args.progress)
    options = AnalysisOptions(all_witnesses=args.all_witnesses, progress=line.show)
    try:
        diagnostics, count, ignoring = collect(args.paths, analyse=not args.no_analysis,
                                               root=root_of(args), options=options)
    finally:
        line.clear()
    shown = [d for d in diagnostics if args.notes or d.severity is not Severity.INFO]
    if args.format == "json":
        sys.stdout.write(render_json(shown))
    elif args.format == "sarif":
        sys.stdout.write(render_sarif(shown, version=__version__))
    elif args.format == "github":
        for diag in shown:
            print(render_github(diag))
    else:
        color = use_color(args.color, sys.stdout)
        for diag in shown:
            print(render_human(diag, color=color))
            print()
        hidden = len(diagnostics) - len(shown)
        hint = f" (add --notes to see {'it' if hidden == 1 else 'them'})" if hidden else ""
        for text in settings_lines(ignoring):
            print(text)
        print(render_summary(diagnostics, count) + hint)
    failing = {Severity.ERROR} | ({Severity.WARNING} if args.strict else set())
    return EXIT_FAILURE if any(d.severity in failing for d in diagnostics) else EXIT_OK
