"""Diagnostics: one constructor for every problem, and its renderings.

The data (`Diagnostic`) is separate from the rendering, so one diagnostic comes out as a
compiler-style message with a snippet, as JSON, as SARIF 2.1.0 or as a GitHub annotation.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from sentra_lang.codes import CODES, Code
from sentra_lang.source import NO_SPAN, UNKNOWN_SOURCE, Span


class Severity(str, Enum):  # noqa: UP042 (StrEnum would change str() and format())
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "info": 2}[self.value]


@dataclass(frozen=True)
class Related:
    span: Span
    message: str


@dataclass(frozen=True, eq=False)
class Diagnostic:
    """One problem. Equal only to a diagnostic identical in every part: file (through the span),
    position, code, severity, message, help, related spans and witness. Deduplicating by
    equality therefore merges true repeats only and never drops a problem of another file."""

    code: str
    severity: Severity
    message: str
    span: Span
    help: str | None = None
    related: tuple[Related, ...] = ()
    witness: dict[str, Any] | None = None

    @property
    def title(self) -> str:
        return CODES[self.code].title

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.span.path, self.span.start, self.severity.rank, self.code)

    def _identity(self) -> tuple[Any, ...]:
        witness = None if self.witness is None else json.dumps(self.witness, sort_keys=True,
                                                               default=repr)
        return (self.span, self.code, self.severity, self.message, self.help, self.related,
                witness)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Diagnostic):
            return NotImplemented
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())


def diagnostic(
    code: str,
    message: str,
    span: Span = NO_SPAN,
    *,
    help: str | None = None,
    related: Iterable[Related] = (),
    witness: dict[str, Any] | None = None,
    severity: Severity | None = None,
) -> Diagnostic:
    """The one constructor of diagnostics; the code fixes the default severity."""
    if code not in CODES:
        raise KeyError(f"unknown diagnostic code {code}")
    return Diagnostic(
        code=code,
        severity=severity or Severity(CODES[code].severity),
        message=message,
        span=span,
        help=help,
        related=tuple(related),
        witness=witness,
    )


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """By file, position, severity and code; exact repeats (equal in every part) once."""
    unique = list(dict.fromkeys(diagnostics))
    return sorted(unique, key=Diagnostic.sort_key)


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity is Severity.ERROR for d in diagnostics)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A "did you mean `x`?" help line for the closest candidate, if one is close enough: by
    the runtime's rule (`sentra_runtime.inputs.closest`), so `check` and a blocked input with an
    undeclared field suggest the same name."""
    from sentra_runtime.inputs import closest

    match = closest(name, list(candidates))
    return f"did you mean `{match}`?" if match else None


# ---------------------------------------------------------------------------------- human

_LABEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


INVISIBLE_CHARACTERS = ("\x00-\x08\x0a-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5"
                        "\u180b-\u180f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u206f"
                        "\u3164\ud800-\udfff\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb"
                        "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff")
"""Characters a terminal, a CI log or an editor would act on or hide (a regular-expression
class body): control characters but the tab; line and paragraph separators; bidirectional
controls (Trojan Source); every character Unicode says to draw as nothing when it has no glyph
(Default_Ignorable_Code_Point: zero-width characters, the soft hyphen, Hangul fillers,
variation selectors, tag characters, which can carry hidden text after a visible one);
interlinear annotation marks; and lone surrogates, which stand for the bytes of a file name
that is not UTF-8 and which a UTF-8 stream cannot write. Diagnostics and every command's text
output escape them (:func:`visible`); `fmt` writes them in strings as escapes."""
_INVISIBLE = re.compile(f"[{INVISIBLE_CHARACTERS}]")


def visible(text: str) -> str:
    """``text`` with every invisible character (:data:`INVISIBLE_CHARACTERS`, a line break
    too) written as an escape (``\\x1b``, ``\\u202e``): what a policy file holds is shown,
    never acted on by the terminal."""
    return _INVISIBLE.sub(_escape, text)


def visible_lines(text: str) -> str:
    """:func:`visible` for text of several lines: its line breaks (``\\n``) are kept."""
    return "\n".join(visible(line) for line in text.split("\n"))


def visible_json(value: Any, **options: Any) -> str:
    """``value`` as JSON text (``json.dumps`` options), non-ASCII text as it is but every
    invisible character (:data:`INVISIBLE_CHARACTERS`) a JSON escape (``\\u202e``,
    ``\\u009b``): the same JSON, which can neither drive the terminal it is printed on nor
    reorder the line an editor shows (what agents send reaches `review show` and replayed
    suites). JSON escapes the control characters below U+0020 itself; a line break outside a
    string is the layout's (``indent``)."""
    return _INVISIBLE.sub(_json_escape, json.dumps(value, ensure_ascii=False, **options))


def json_escape(character: str) -> str:
    """``character`` as a JSON (and policy string) escape: ``\\u202e``, or a surrogate pair's
    two escapes above U+FFFF (``\\udb40\\udc01`` for the tag character U+E0001)."""
    code = ord(character)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _json_escape(match: re.Match[str]) -> str:
    character = match.group()
    return character if character == "\n" else json_escape(character)


def _escape(match: re.Match[str]) -> str:
    character = match.group()
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else json_escape(character)


def render_human(diag: Diagnostic, *, color: bool = False) -> str:
    """`path:line:col: error[CODE]: message`, the source line, carets, and the help lines;
    characters of the file a terminal would act on are escaped (:func:`visible`)."""
    span = diag.span
    label = _LABEL[diag.severity]
    message = visible(diag.message)
    if color:
        tint = {"error": "\x1b[1;31m", "warning": "\x1b[1;33m", "note": "\x1b[1;36m"}[label]
        head = f"\x1b[1m{visible(str(span))}:\x1b[0m {tint}{label}[{diag.code}]\x1b[0m: {message}"
    else:
        head = f"{visible(str(span))}: {label}[{diag.code}]: {message}"
    lines = [head]
    lines.extend(_snippet(span, color=color))
    for related in diag.related:
        lines.append(f"  = note: {visible(related.message)} at {visible(str(related.span))}")
    if diag.witness is not None:
        lines.append(f"  = witness: {visible(format_witness(diag.witness))}")
    if diag.help:
        lines.append(f"  = help: {visible(diag.help)}")
    return "\n".join(lines)


def _snippet(span: Span, *, color: bool = False) -> list[str]:
    if span is NO_SPAN or not span.source.text:
        return []
    text = span.source.line(span.line).replace("\t", " ")
    gutter = len(str(span.line))
    end_column = span.end_column if span.end_line == span.line else len(text) + 1
    # the carets under the escaped text: an escape takes the columns it is shown in
    before = len(visible(text[:span.column - 1]))
    width = max(1, len(visible(text[span.column - 1:end_column - 1])))
    shown, before, width = _window(visible(text), before, width)
    if color:
        shown = _highlight(shown)
    return [
        f"{' ' * gutter} |",
        f"{span.line} | {shown}",
        f"{' ' * gutter} | {' ' * before}{'^' * width}",
    ]


SNIPPET_WIDTH = 160
"""The most columns of a source line a snippet shows: a longer line is cut around the span."""


def _window(line: str, before: int, width: int) -> tuple[str, int, int]:
    """At most `SNIPPET_WIDTH` columns of `line` around the span that starts `before` columns
    in and is `width` wide, `…` where it was cut; the span's start and width in the window."""
    if len(line) <= SNIPPET_WIDTH:
        return line, before, width
    start = max(0, min(before - SNIPPET_WIDTH // 4, len(line) - SNIPPET_WIDTH))
    end = start + SNIPPET_WIDTH
    head, tail = ("…" if start else ""), ("…" if end < len(line) else "")
    return (head + line[start:end] + tail, before - start + len(head),
            max(1, min(width, end - before)))


def _highlight(line: str) -> str:
    """The source line in the sentra lexer's colours, or as it is without Pygments (an
    optional dependency). ANSI escapes take no columns, so the carets stay aligned: with the
    escapes removed it is the plain rendering."""
    try:
        from pygments import highlight
        from pygments.formatters import TerminalFormatter
    except ModuleNotFoundError:
        return line
    from sentra_lang.highlight import SentraLexer

    coloured: str = highlight(line, SentraLexer(stripnl=False, ensurenl=False),
                              TerminalFormatter())
    return coloured.removesuffix("\n") if not line.endswith("\n") else coloured


def format_witness(witness: dict[str, Any]) -> str:
    """`field=value` pairs; a field absent from the witness is missing from the input."""
    parts = [f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in witness.items()]
    return ", ".join(parts) if parts else "(any input)"


def render_summary(diagnostics: Sequence[Diagnostic], files: int) -> str:
    counts = {severity: 0 for severity in Severity}
    for diag in diagnostics:
        counts[diag.severity] += 1
    def plural(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"
    text = (
        f"{plural(files, 'file')} checked: {plural(counts[Severity.ERROR], 'error')}, "
        f"{plural(counts[Severity.WARNING], 'warning')}"
    )
    if counts[Severity.INFO]:
        text += f", {plural(counts[Severity.INFO], 'note')}"
    return text


# ----------------------------------------------------------------------------- machine

def to_dict(diag: Diagnostic) -> dict[str, Any]:
    span = diag.span
    return {
        "code": diag.code,
        "severity": diag.severity.value,
        "title": diag.title,
        "message": diag.message,
        "help": diag.help,
        "file": span.path,
        "line": span.line,
        "column": span.column,
        "end_line": span.end_line,
        "end_column": span.end_column,
        "related": [
            {"message": r.message, "file": r.span.path, "line": r.span.line,
             "column": r.span.column}
            for r in diag.related
        ],
        "witness": diag.witness,
    }


def render_json(diagnostics: Sequence[Diagnostic]) -> str:
    return json.dumps({"diagnostics": [to_dict(d) for d in diagnostics]}, indent=2) + "\n"


_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
_SARIF_ROOT = "%SRCROOT%"


def render_sarif(diagnostics: Sequence[Diagnostic], *, version: str,
                 root: Path | None = None) -> str:
    """SARIF 2.1.0: one run, every code used as a rule of the driver, with its documentation.

    Relative paths are read from `root` (default: the working folder), and files under it are
    written as URIs relative to the base id `%SRCROOT%`, which is `root`; other files as
    absolute `file:` URIs. Columns count code points, as everywhere in sentra-lang.
    """
    root = Path(os.path.abspath(root if root is not None else Path.cwd()))
    used = sorted({d.code for d in diagnostics})
    root_uri = root.as_uri().rstrip("/") + "/"
    run = {
        "tool": {"driver": {"name": "sentra-lang", "version": version,
                            "rules": [_sarif_rule(CODES[code]) for code in used]}},
        "invocations": [{"executionSuccessful": True, "workingDirectory": {"uri": root_uri}}],
        "originalUriBaseIds": {_SARIF_ROOT: {"uri": root_uri}},
        "columnKind": "unicodeCodePoints",
        "results": [_sarif_result(diag, used.index(diag.code), root) for diag in diagnostics],
    }
    sarif = {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
             "runs": [run]}
    return json.dumps(sarif, indent=2) + "\n"


def _sarif_rule(code: Code) -> dict[str, Any]:
    """A rule's metadata: the title, and the explanation and example of docs/diagnostics.md
    (both generated from `sentra_lang.codes`, the one source of a code's documentation)."""
    example = f"\n\nFor example:\n\n{code.example.rstrip()}" if code.example else ""
    example_md = f"\n\nFor example:\n\n```sentra\n{code.example}```" if code.example else ""
    where = f"\n\nDocumented under {code.code} in sentra-lang's docs/diagnostics.md."
    return {
        "id": code.code,
        "name": "".join(word.capitalize() for word in re.findall(r"[A-Za-z0-9]+", code.title)),
        "shortDescription": {"text": code.title},
        "fullDescription": {"text": code.explanation},
        "help": {"text": code.explanation + example + where,
                 "markdown": code.explanation + example_md + where},
        "defaultConfiguration": {"level": _SARIF_LEVEL[Severity(code.severity)]},
    }


def _sarif_result(diag: Diagnostic, rule_index: int, root: Path) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": diag.code,
        "ruleIndex": rule_index,
        "level": _SARIF_LEVEL[diag.severity],
        "message": {"text": diag.message + (f" ({diag.help})" if diag.help else "")},
    }
    location = _sarif_location(diag.span, root)
    if location is not None:
        result["locations"] = [location]
    related = [(r, _sarif_location(r.span, root)) for r in diag.related]
    if any(loc is not None for _, loc in related):
        result["relatedLocations"] = [
            {"id": index, **loc, "message": {"text": r.message}}
            for index, (r, loc) in enumerate(related) if loc is not None
        ]
    return result


def _sarif_location(span: Span, root: Path) -> dict[str, Any] | None:
    if span.source is UNKNOWN_SOURCE or not span.path:
        return None
    return {"physicalLocation": {
        "artifactLocation": sarif_artifact(span.path, root),
        "region": {"startLine": span.line, "startColumn": span.column,
                   "endLine": span.end_line, "endColumn": span.end_column},
    }}


def sarif_artifact(path: str, root: Path) -> dict[str, str]:
    """A SARIF artifact location: a percent-encoded URI reference relative to `%SRCROOT%` for
    a file under `root`, an absolute `file:` URI for any other (spaces, `%`, `#` and non-ASCII
    characters are encoded, so the URI names exactly the file)."""
    absolute = Path(os.path.abspath(root / path))
    if absolute.is_relative_to(root):
        relative = absolute.relative_to(root).as_posix()
        # a name that is not UTF-8 (bytes kept as surrogates) is encoded byte for byte
        return {"uri": urllib.parse.quote(relative, safe="/", errors="surrogateescape"),
                "uriBaseId": _SARIF_ROOT}
    return {"uri": absolute.as_uri()}


_GITHUB_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_github(text: str, *, property_value: bool = False) -> str:
    """Escape a workflow command's message, or (`property_value`) one of its `key=value`s; its
    invisible characters are escaped first (:func:`visible_lines`), since CI logs show ANSI
    escapes."""
    text = visible_lines(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def render_github(diag: Diagnostic) -> str:
    """A GitHub Actions workflow command that annotates the line in a pull request."""
    span = diag.span
    location = [] if span.source is UNKNOWN_SOURCE else [
        f"file={escape_github(span.path, property_value=True)}",
        f"line={span.line}",
        f"col={span.column}",
        f"endLine={span.end_line}",
        f"endColumn={span.end_column}",
    ]
    title = escape_github(diag.code + " " + diag.title, property_value=True)
    props = ",".join([*location, f"title={title}"])
    message = diag.message + (f" ({diag.help})" if diag.help else "")
    return f"::{_GITHUB_LEVEL[diag.severity]} {props}::{escape_github(message)}"
