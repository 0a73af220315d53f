"""Diagnostics: one constructor for every problem, and its renderings.

The data (`Diagnostic`) is separate from the rendering, so one diagnostic comes out as a
compiler-style message with a snippet, as JSON, as SARIF 2.1.0 or as a GitHub annotation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sentra_lang.codes import CODES
from sentra_lang.source import NO_SPAN, Span


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
    """A "did you mean `x`?" help line for the closest candidate, if one is close enough."""
    import difflib

    pool = sorted(set(candidates))
    matches = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    if not matches:
        lowered = {c.lower(): c for c in pool}
        matches = [lowered[name.lower()]] if name.lower() in lowered else []
    if not matches:
        suffix = [c for c in pool if c.rsplit(".", 1)[-1] == name.rsplit(".", 1)[-1]]
        matches = suffix[:1]
    return f"did you mean `{matches[0]}`?" if matches else None


# ---------------------------------------------------------------------------------- human

_LABEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def render_human(diag: Diagnostic, *, color: bool = False) -> str:
    """`path:line:col: error[CODE]: message`, the source line, carets, and the help lines."""
    span = diag.span
    label = _LABEL[diag.severity]
    if color:
        tint = {"error": "\x1b[1;31m", "warning": "\x1b[1;33m", "note": "\x1b[1;36m"}[label]
        head = f"\x1b[1m{span}:\x1b[0m {tint}{label}[{diag.code}]\x1b[0m: {diag.message}"
    else:
        head = f"{span}: {label}[{diag.code}]: {diag.message}"
    lines = [head]
    lines.extend(_snippet(span, color=color))
    for related in diag.related:
        lines.append(f"  = note: {related.message} at {related.span}")
    if diag.witness is not None:
        lines.append(f"  = witness: {format_witness(diag.witness)}")
    if diag.help:
        lines.append(f"  = help: {diag.help}")
    return "\n".join(lines)


def _snippet(span: Span, *, color: bool = False) -> list[str]:
    if span is NO_SPAN or not span.source.text:
        return []
    text = span.source.line(span.line)
    gutter = len(str(span.line))
    end_column = span.end_column if span.end_line == span.line else len(text) + 1
    width = max(1, end_column - span.column)
    shown = text.replace("\t", " ")
    if color:
        # the source line in the sentra lexer's colours; ANSI escapes take no columns, so the
        # carets below stay aligned (with the escapes removed it is the plain rendering)
        from pygments import highlight
        from pygments.formatters import TerminalFormatter

        from sentra_lang.highlight import SentraLexer

        coloured: str = highlight(shown, SentraLexer(stripnl=False, ensurenl=False),
                                  TerminalFormatter())
        shown = coloured.removesuffix("\n") if not shown.endswith("\n") else coloured
    return [
        f"{' ' * gutter} |",
        f"{span.line} | {shown}",
        f"{' ' * gutter} | {' ' * (span.column - 1)}{'^' * width}",
    ]


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


def render_sarif(diagnostics: Sequence[Diagnostic], *, version: str) -> str:
    """SARIF 2.1.0, one run, with every code used as a rule of the driver."""
    used = sorted({d.code for d in diagnostics})
    rules = [
        {
            "id": code,
            "name": CODES[code].title,
            "shortDescription": {"text": CODES[code].title},
            "helpUri": f"https://sentra-lang.dev/diagnostics/#{code.lower()}",
        }
        for code in used
    ]
    results = []
    for diag in diagnostics:
        message = diag.message + (f" ({diag.help})" if diag.help else "")
        results.append(
            {
                "ruleId": diag.code,
                "ruleIndex": used.index(diag.code),
                "level": _SARIF_LEVEL[diag.severity],
                "message": {"text": message},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": diag.span.path},
                            "region": {
                                "startLine": diag.span.line,
                                "startColumn": diag.span.column,
                                "endLine": diag.span.end_line,
                                "endColumn": diag.span.end_column,
                            },
                        }
                    }
                ],
            }
        )
    sarif = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "sentra-lang",
                        "version": version,
                        "informationUri": "https://sentra-lang.dev",
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(sarif, indent=2) + "\n"


_GITHUB_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def _escape_github(text: str, *, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def render_github(diag: Diagnostic) -> str:
    """A GitHub Actions workflow command that annotates the line in a pull request."""
    span = diag.span
    props = ",".join(
        [
            f"file={_escape_github(span.path, property_value=True)}",
            f"line={span.line}",
            f"col={span.column}",
            f"endLine={span.end_line}",
            f"endColumn={span.end_column}",
            f"title={_escape_github(diag.code + ' ' + diag.title, property_value=True)}",
        ]
    )
    message = diag.message + (f" ({diag.help})" if diag.help else "")
    return f"::{_GITHUB_LEVEL[diag.severity]} {props}::{_escape_github(message)}"
