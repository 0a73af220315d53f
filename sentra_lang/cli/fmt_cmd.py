"""`sentra-lang fmt PATH... [--check] [--diff]`: rewrite policy files in the canonical layout.

Files are rewritten atomically (a temporary file in the same folder, then `os.replace`), and
only when their text changes; a file with syntax errors is reported and never written.
`-` formats standard input to standard output.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sentra_lang.cli import EXIT_FAILURE, EXIT_OK, UsageError
from sentra_lang.cli.color import add_color_option, use_color
from sentra_lang.cli.paths import expand
from sentra_lang.diagnostics import visible

if TYPE_CHECKING:
    from sentra_lang.diagnostics import Diagnostic

STDIN = "-"
STDIN_NAME = "<stdin>"
BOM = "\ufeff"


_color = False
"""Whether this run's diagnostics are coloured (set once per run from `--color`)."""

def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "fmt", help="format policy files in the canonical layout",
        description="Rewrite .sentra files in the canonical layout (folders: every *.sentra "
                    "file in them, recursively). `-` formats standard input to standard output.")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files, folders, or - for stdin")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; list the files that would change and exit 1")
    parser.add_argument("--diff", action="store_true",
                        help="print a unified diff of the changes instead of writing them")
    add_color_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    global _color
    _color = use_color(args.color, sys.stderr)
    files = collect(args.paths)
    code = EXIT_OK
    for path in files:
        result = format_stdin(args) if path == STDIN else format_file(Path(path), args)
        code = max(code, result)
    return code


def collect(paths: list[str]) -> list[str]:
    """The files to format, in order: folders expand to their `*.sentra` files, sorted."""
    files: list[str] = []
    for raw in paths:
        files.extend([STDIN] if raw == STDIN else [str(p) for p in expand([raw])])
    return files


def _decoded(data: bytes, name: str, size: int | None = None) -> tuple[str, str] | None:
    """(the text as written, with its byte order mark if any; the text to format), or None
    after printing why it cannot be formatted (not UTF-8 text, over 8 MiB)."""
    from sentra_lang.parser import decode_source

    source, problems = decode_source(data, name, size)
    if problems:
        _report(problems, name)
        return None
    written = BOM + source.text if data.startswith(BOM.encode()) else source.text
    return written, source.text


def _read(path: Path) -> tuple[str, str] | None:
    """A file's text, read within the 8 MiB limit (`_decoded`)."""
    from sentra_lang.files import MAX_SOURCE_BYTES, read_bounded

    try:
        data, size = read_bounded(path, MAX_SOURCE_BYTES)
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from error
    return _decoded(data, str(path), size)


def _read_stdin() -> tuple[str, str] | None:
    """Standard input's text, read within the same limit as a file (`_decoded`)."""
    from sentra_lang.files import MAX_SOURCE_BYTES

    return _decoded(sys.stdin.buffer.read(MAX_SOURCE_BYTES + 1), STDIN_NAME)


def format_file(path: Path, args: argparse.Namespace) -> int:
    read = _read(path)
    formatted = None if read is None else _format_or_report(read[1], str(path))
    if read is None or formatted is None:
        return EXIT_FAILURE
    written = read[0]
    if formatted == written:
        return EXIT_OK
    if args.diff:
        sys.stdout.write(_diff(written, formatted, str(path)))
    if args.check:
        if not args.diff:
            print(f"would reformat {visible(str(path))}")
        return EXIT_FAILURE
    if not args.diff:
        from sentra_lang.files import write_atomically

        try:
            write_atomically(path, formatted)
        except OSError as error:   # the file is as it was (a full disk, a read-only folder)
            raise UsageError(f"cannot write `{visible(str(path))}`: "
                             f"{error.strerror or error}") from error
        print(f"reformatted {visible(str(path))}", file=sys.stderr)
    return EXIT_OK


def format_stdin(args: argparse.Namespace) -> int:
    read = _read_stdin()
    formatted = None if read is None else _format_or_report(read[1], STDIN_NAME)
    if read is None or formatted is None:
        return EXIT_FAILURE
    written = read[0]
    if args.diff:
        sys.stdout.write(_diff(written, formatted, STDIN_NAME))
    elif not args.check:
        sys.stdout.write(formatted)
    return EXIT_FAILURE if args.check and formatted != written else EXIT_OK


def _format_or_report(text: str, path: str) -> str | None:
    from sentra_lang.formatter import format_source

    formatted, diagnostics = format_source(text, path)
    if formatted is None:
        _report(diagnostics, path)
    return formatted


def _report(diagnostics: list[Diagnostic], path: str) -> None:
    from sentra_lang.diagnostics import render_human, sort_diagnostics

    for diag in sort_diagnostics(diagnostics):
        print(render_human(diag, color=_color), file=sys.stderr)
    print(f"sentra-lang fmt: {visible(path)} not formatted: it does not parse", file=sys.stderr)


def _diff(before: str, after: str, path: str) -> str:
    """A unified diff for the terminal: lines split at `\\n` only (a `\\r` left at the end of a
    line shows that its line break changes), invisible characters escaped (`visible`)."""
    lines = difflib.unified_diff(before.split("\n"), after.split("\n"), fromfile=path,
                                 tofile=path, lineterm="")
    return "".join(visible(line) + "\n" for line in lines)
