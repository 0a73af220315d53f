"""A document analysed at one version: its diagnostics and what its names mean.

A policy is compiled from the editor's text with `compiler.compile_source`, under the file's
own path, so its imports resolve relative to it even when the buffer is unsaved; imported
files, and the policy a suite names, are read from disk as saved. A suite gets the diagnostics
`sentra-lang test` reports when it collects the suite (`runner.collect_suite`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from sentra_lang import ast
from sentra_lang.compiler import compile_source
from sentra_lang.diagnostics import Diagnostic, Severity
from sentra_lang.files import MAX_SOURCE_BYTES, real_path
from sentra_lang.loader import FileUnreadable, Program
from sentra_lang.lsp.symbols import PolicyIndex, References, index_program, suite_references
from sentra_lang.lsp.text import Document, LineIndex
from sentra_lang.parser import decode_source
from sentra_lang.source import NO_SPAN, Source, Span
from sentra_lang.testing import suite_ast as s
from sentra_lang.testing.policies import PolicyUnderTest, load
from sentra_lang.testing.runner import collect_suite
from sentra_lang.testing.suite_parser import parse_suite

_SUITE_HEADER = re.compile(r'^\s*suite\s+"(?:[^"\\\n]|\\.)*"\s+for\s+"((?:[^"\\\n]|\\.)*)"',
                           re.MULTILINE)


@dataclass
class Snapshot:
    """One version of a document, analysed."""

    version: int
    text: str
    display: str
    diagnostics: list[Diagnostic]
    references: References
    index: PolicyIndex | None
    """The policy's declarations: the document's own, or (a suite) its policy's."""
    anchors: dict[str, Span] = field(default_factory=dict)
    """Where in this document to show a problem of another file (by that file's path)."""
    policy_path: Path | None = None
    """A suite's policy file."""
    failure: str | None = None
    """Why the document could not be checked at all (an internal error, logged)."""
    lines: LineIndex = field(init=False)

    def __post_init__(self) -> None:
        self.lines = LineIndex(self.text)


def analyse(document: Document, policies: PolicyStore) -> Snapshot:
    """Analyse a document as it is now: a suite against its policy, else a policy."""
    if document.is_suite:
        return analyse_suite(document, policies)
    return analyse_policy(document)


# ------------------------------------------------------------------------------- policies

def analyse_policy(document: Document) -> Snapshot:
    text, display = document.text, document.display
    unreadable = unreadable_text(text, display)
    if unreadable is not None:
        return Snapshot(document.version, text, display, unreadable, References(()), None)
    compilation = compile_source(text, display)
    program = compilation.program
    if program.main.module is None:
        recovered = compile_source(blank_lines(text, compilation.diagnostics, display), display,
                                   analyse=False)
        program = recovered.program
        model = recovered.model
    else:
        model = compilation.model
    index = index_program(program, model) if program.main.module else None
    references = index.references if index is not None else References(())
    return Snapshot(document.version, text, display, compilation.diagnostics, references, index,
                    anchors=import_anchors(program))


def blank_lines(text: str, diagnostics: list[Diagnostic], display: str) -> str:
    """The text with the lines its errors are on blanked (offsets kept): the rest of a file
    whose one line is being typed still parses, so its names still hover, jump and complete."""
    broken = {diag.span.line for diag in diagnostics
              if diag.severity is Severity.ERROR and located_in(diag, display)}
    lines = text.split("\n")
    for number in broken:
        if 0 < number <= len(lines):
            lines[number - 1] = re.sub(r"[^\r]", " ", lines[number - 1])
    return "\n".join(lines)


def unreadable_text(text: str, display: str) -> list[Diagnostic] | None:
    """The loader's diagnostics for text a policy file may not hold: over the size limit, not
    UTF-8 (a lone surrogate, which JSON can carry) or binary (a NUL character). A file is
    checked as bytes where it is read (`parser.read_source`); the editor's text goes through
    the same check (`parser.decode_source`) here."""
    try:
        size = len(text) if text.isascii() else len(text.encode("utf-8"))
    except UnicodeEncodeError:
        size = -1
    if 0 <= size <= MAX_SOURCE_BYTES and "\x00" not in text:
        return None
    data = text.encode("utf-8", "surrogatepass")
    return decode_source(data, display, len(data))[1]


def import_anchors(program: Program) -> dict[str, Span]:
    """For every file the main file imports, directly or not, the import that brings it in."""
    main = program.main
    if main.module is None:
        return {}
    by_real = {loaded.real: loaded for loaded in program.files}
    anchors: dict[str, Span] = {}
    for item in main.module.of_type(ast.Import):
        pending = [real_path(main.real.parent / item.path.value)]
        while pending:
            loaded = by_real.get(pending.pop())
            if loaded is None or loaded.display in anchors or loaded is main:
                continue
            anchors[loaded.display] = item.span
            if loaded.module is not None:
                pending.extend(real_path(loaded.real.parent / i.path.value)
                               for i in loaded.module.of_type(ast.Import))
    return anchors


# --------------------------------------------------------------------------------- suites

@dataclass
class _Entry:
    policy: PolicyUnderTest
    index: PolicyIndex
    stamps: tuple[tuple[int, int] | None, ...]


class PolicyStore:
    """The policies suites name, compiled once and again when one of their files changes."""

    def __init__(self) -> None:
        self._entries: dict[Path, _Entry] = {}

    def clear(self) -> None:
        self._entries.clear()

    def get(self, path: Path) -> tuple[PolicyUnderTest, PolicyIndex]:
        """The policy at `path` and its index. Raises `FileUnreadable`."""
        key = real_path(path)
        entry = self._entries.get(key)
        if entry is None or entry.stamps != _stamps(_files(entry.policy)):
            policy = load(key)
            compilation = policy.compilation
            entry = _Entry(policy, index_program(compilation.program, compilation.model),
                           _stamps(_files(policy)))
            self._entries[key] = entry
        return entry.policy, entry.index


def _files(policy: PolicyUnderTest) -> list[Path]:
    return [loaded.real for loaded in policy.compilation.program.files]


def _stamps(paths: Iterable[Path]) -> tuple[tuple[int, int] | None, ...]:
    stamps: list[tuple[int, int] | None] = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            stamps.append(None)
            continue
        stamps.append((stat.st_mtime_ns, stat.st_size))
    return tuple(stamps)


def suite_file(document: Document) -> Path:
    """The suite's file; an unsaved suite is taken to be in the working folder (a suite's
    policy path is relative to its folder)."""
    return document.path if document.path is not None else Path.cwd() / "untitled"


def suite_policy_path(document: Document, suite: s.Suite | None) -> Path | None:
    """The policy a suite names, relative to the suite's folder (the header, read leniently
    when the suite does not parse, so completion still knows the policy's names)."""
    if suite is not None:
        name = suite.policy
    else:
        match = _SUITE_HEADER.search(document.text)
        if match is None:
            return None
        name = match.group(1)
    return suite_file(document).parent / name


def analyse_suite(document: Document, policies: PolicyStore) -> Snapshot:
    """A suite with the diagnostics `sentra-lang test` reports when it collects it
    (`runner.collect_suite`), and its names resolved against its policy."""
    text, display = document.text, document.display
    unreadable = unreadable_text(text, display)
    if unreadable is not None:
        return Snapshot(document.version, text, display, unreadable, References(()), None)
    loaded, diagnostics = collect_suite(text, suite_file(document),
                                        lambda path: policies.get(path)[0], display)
    suite = loaded.suite
    policy_path = suite_policy_path(document, suite)
    policy: PolicyUnderTest | None = None
    index: PolicyIndex | None = None
    if policy_path is not None:
        with suppress(FileUnreadable):      # reported by collect_suite
            policy, index = policies.get(policy_path)
    snapshot = Snapshot(document.version, text, display, diagnostics, References(()), index,
                        policy_path=policy_path)
    if suite is None:
        suite, _ = parse_suite(blank_lines(text, diagnostics, display), display)
        if suite is not None:
            snapshot.references = suite_references(suite, index or PolicyIndex())
        return snapshot
    snapshot.references = suite_references(suite, index or PolicyIndex())
    snapshot.anchors = _policy_anchors(policy, suite)
    return snapshot


def _policy_anchors(policy: PolicyUnderTest | None, suite: s.Suite) -> dict[str, Span]:
    """A suite shows its policy's problems on the policy's name in its header."""
    if policy is None:
        return {}
    return {loaded.display: suite.policy_span for loaded in policy.compilation.program.files}


def located_in(diag: Diagnostic, display: str) -> bool:
    """Whether a diagnostic points into the document itself (or nowhere in particular)."""
    return diag.span is NO_SPAN or diag.span.path == display


def source_lines(source: Source, cache: dict[Source, LineIndex]) -> LineIndex:
    """The line index of a span's file (its source travels with it), built once per source."""
    index = cache.get(source)
    if index is None:
        index = cache[source] = LineIndex(source.text)
    return index
