"""`sentra-lang test [PATH...]`: run scenario suites, with coverage and CI reports.

Exit codes as pytest: 0 all passed, 1 failures (or coverage below --min-coverage), 2 usage or
suite/policy errors, 5 nothing collected.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sentra_lang.cli import UsageError
from sentra_lang.cli.color import add_color_option, use_color
from sentra_lang.cli.paths import add_root_option, root_of
from sentra_lang.cli.progress import ProgressLine

if TYPE_CHECKING:
    from sentra_lang.testing.runner import LoadedSuite, TestItem


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "test", help="run scenario suites (.sentra-test) with policy coverage",
        description="Run .sentra-test suites (folders are searched recursively). Exit 0 when "
        "all tests pass, 1 on failures or coverage below --min-coverage, 2 on usage or suite "
        "errors, 5 when no test was collected.")
    parser.add_argument("paths", nargs="*", default=["."], metavar="PATH",
                        help="suite files or folders (default: the current folder)")
    parser.add_argument("-k", dest="keyword", metavar="EXPR",
                        help="run tests whose name, file name or tag matches: substrings "
                        "combined with and / or / not and parentheses")
    parser.add_argument("--tag", action="append", default=[], metavar="TAG",
                        help="run tests with this tag (repeatable: any of them)")
    parser.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failure")
    parser.add_argument("--min-coverage", type=float, metavar="N",
                        help="fail when a policy's rule coverage is below N percent")
    parser.add_argument("--junit-xml", metavar="FILE", help="write a JUnit XML report")
    parser.add_argument("--json", dest="json_file", metavar="FILE", help="write a JSON report")
    parser.add_argument("--format", choices=["human", "github"], default="human",
                        help="output on stdout")
    parser.add_argument("--examples", type=int, metavar="N",
                        help="examples per property (overrides the suite's `examples`)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="list every passed test and each condition outcome never seen")
    add_color_option(parser)
    add_root_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.min_coverage is not None and not 0 <= args.min_coverage <= 100:
        raise UsageError("--min-coverage is a percentage between 0 and 100")
    if args.examples is not None and args.examples < 1:
        raise UsageError("--examples must be at least 1")
    from sentra_lang.diagnostics import visible
    from sentra_lang.files import refuse_overwriting
    from sentra_lang.loader import FileUnreadable
    from sentra_lang.testing import reports
    from sentra_lang.testing.runner import Runner, SelectionError

    line = ProgressLine(sys.stderr)
    try:
        runner = Runner(keyword=args.keyword, tags=args.tag, exitfirst=args.exitfirst,
                        examples=args.examples, progress=_progress(line), root=root_of(args))
        result = runner.run_paths(args.paths, min_coverage=args.min_coverage)
    except (SelectionError, FileNotFoundError, FileUnreadable) as error:
        raise UsageError(str(error)) from error
    finally:
        line.clear()
    if args.format == "github":
        sys.stdout.write(reports.render_github_report(result))
    else:
        if args.verbose:
            for item_result in result.results:
                method = f" ({item_result.method})" if item_result.method else ""
                print(visible(f"{item_result.outcome.upper():7} {item_result.item.nodeid}{method}"))
        sys.stdout.write(reports.render_human(result, color=use_color(args.color, sys.stdout),
                                              verbose=args.verbose))
    problems = []
    read = [file for loaded in result.suites for file in _files_read(loaded)]
    for path, kind, write in ((args.junit_xml, "JUnit XML", reports.write_junit),
                              (args.json_file, "JSON", reports.write_json)):
        if path:
            try:
                refuse_overwriting(path, read, f"{kind} report")
                write(result, path)
            except ValueError as error:
                problems.append(str(error))
            except OSError as error:
                problems.append(f"cannot write the {kind} report {path}: "
                                f"{error.strerror or error}")
    if problems:
        raise UsageError("; ".join(problems))
    return result.exit_code


def _files_read(loaded: LoadedSuite) -> list[Path]:
    """The suite file, the policy it names and the policy's imports."""
    named = [] if loaded.suite is None else [loaded.path.parent / loaded.suite.policy]
    imports = [] if loaded.policy is None else [
        file.real for file in loaded.policy.compilation.program.files]
    return [loaded.path, *named, *imports]


def _progress(line: ProgressLine) -> Callable[[int, int, TestItem], None]:
    """`[ 12/140] file::name` for each test as it starts, on stderr when it is a terminal."""
    from sentra_lang.diagnostics import visible

    def show(index: int, total: int, item: TestItem) -> None:
        width = len(str(total))
        line.show(visible(f"[{index + 1:>{width}}/{total}] {item.nodeid}")[:100])

    return show
