"""The language server: pygls wiring of the features, over standard input and output.

Every handler is guarded: an exception is logged (to standard error and as a `window/logMessage`)
and the request answers `null`, so no input, however broken, stops the server. Documents are
kept here with LSP's line rules (`text.py`) rather than in pygls' workspace.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol, lsp_method
from pygls.uris import from_fs_path, to_fs_path

from sentra_lang import __version__
from sentra_lang.compiler import compile_source
from sentra_lang.diagnostics import Diagnostic, Severity, format_witness, sort_diagnostics
from sentra_lang.formatter import format_source
from sentra_lang.lsp import completion as completing
from sentra_lang.lsp import hover as hovering
from sentra_lang.lsp.snapshots import (
    PolicyStore,
    Snapshot,
    analyse,
    located_in,
    source_lines,
)
from sentra_lang.lsp.symbols import (
    ACTION,
    FIELD,
    IMPORT,
    LET,
    POLICY_FILE,
    RULE,
    PolicyIndex,
    Reference,
    References,
)
from sentra_lang.lsp.text import UTF16, Document, LineIndex
from sentra_lang.source import NO_SPAN, Source, Span
from sentra_lang.testing.suite_parser import parse_suite

logger = logging.getLogger("sentra_lang.lsp")

DIAGNOSTICS_DELAY = 0.05
"""The shortest time between two checks of a document while it is edited, in seconds (the
initialization option `diagnosticsDelay`, in milliseconds, changes it): an edit after a pause is
checked at once; edits quicker than that are checked together, the last one always."""
_UNNECESSARY = {"SL107", "SL108", "SL401"}  # unused field, unused let, shadowed rule
_SEVERITY = {Severity.ERROR: types.DiagnosticSeverity.Error,
             Severity.WARNING: types.DiagnosticSeverity.Warning,
             Severity.INFO: types.DiagnosticSeverity.Information}
_COMPLETION_KIND = {completing.KEYWORD: types.CompletionItemKind.Keyword,
                    completing.FIELD: types.CompletionItemKind.Field,
                    completing.LET: types.CompletionItemKind.Variable,
                    completing.RULE: types.CompletionItemKind.Constant,
                    completing.ACTION: types.CompletionItemKind.Class,
                    completing.VALUE: types.CompletionItemKind.EnumMember}
Handler = TypeVar("Handler", bound=Callable[..., Any])


class SentraProtocol(LanguageServerProtocol):
    """pygls' protocol, minus its own copy of open documents (the server keeps them)."""

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams) -> Iterator[Any]:
        yield from self._user_handler(types.TEXT_DOCUMENT_DID_OPEN, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams,
                                      ) -> Iterator[Any]:
        yield from self._user_handler(types.TEXT_DOCUMENT_DID_CHANGE, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams,
                                     ) -> Iterator[Any]:
        yield from self._user_handler(types.TEXT_DOCUMENT_DID_CLOSE, params)

    def _user_handler(self, method: str, params: Any) -> Iterator[Any]:
        handler = self.fm.features.get(method)
        if handler is not None:
            yield handler, (params,), None


class SentraServer(LanguageServer):
    """The server's state: open documents, their latest analyses, and pending diagnostics."""

    def __init__(self) -> None:
        super().__init__("sentra-lang", __version__, protocol_cls=SentraProtocol,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.documents: dict[str, Document] = {}
        self.snapshots: dict[str, Snapshot] = {}
        self.known: dict[str, PolicyIndex] = {}
        """The last policy index each document had (completion while a file does not parse)."""
        self.policies = PolicyStore()
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.checked_at: dict[str, float] = {}
        """When each document's diagnostics were last published (event-loop time)."""
        self.delay = DIAGNOSTICS_DELAY

    @property
    def encoding(self) -> str:
        try:
            kind = self.workspace.position_encoding
        except RuntimeError:  # before `initialize`
            return UTF16
        return str(getattr(kind, "value", kind) or UTF16)

    def snapshot(self, document: Document) -> Snapshot:
        """The analysis of the document's current text (computed once per version)."""
        cached = self.snapshots.get(document.uri)
        if cached is not None and cached.version == document.version and cached.text == document.text:
            return cached
        started = time.perf_counter()
        try:
            snapshot = analyse(document, self.policies)
            logger.debug("checked %s (version %d) in %.1f ms", document.display,
                         document.version, (time.perf_counter() - started) * 1000)
        except Exception as error:
            self.log_failure(f"checking {document.display}")
            snapshot = Snapshot(document.version, document.text, document.display, [],
                                References(()), None, failure=repr(error))
        self.snapshots[document.uri] = snapshot
        if snapshot.index is not None:
            self.known[document.uri] = snapshot.index
        return snapshot

    def cursor(self, params: Any) -> tuple[Document, Snapshot, int] | None:
        """For a request at a position: the document, its analysis, and the cursor's offset."""
        document = self.documents.get(params.text_document.uri)
        if document is None:
            return None
        snapshot = self.snapshot(document)
        return document, snapshot, snapshot.lines.offset(
            params.position.line, params.position.character, self.encoding)

    def reference_at(self, params: Any) -> tuple[Document, Snapshot, Reference] | None:
        """For a request at a position: the name under the cursor, if any."""
        found = self.cursor(params)
        reference = found[1].references.at(found[2]) if found is not None else None
        return None if found is None or reference is None else (found[0], found[1], reference)

    def publish(self, uri: str) -> None:
        self.timers.pop(uri, None)
        document = self.documents.get(uri)
        if document is None:
            return
        snapshot = self.snapshot(document)
        self.checked_at[uri] = asyncio.get_running_loop().time()
        diagnostics = lsp_diagnostics(snapshot, document.uri, self.encoding)
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=uri, diagnostics=diagnostics, version=document.version))

    def publish_soon(self, uri: str) -> None:
        """Publish after an edit: at once after a pause, else `delay` after the last check."""
        pending = self.timers.pop(uri, None)
        if pending is not None:
            pending.cancel()
        loop = asyncio.get_running_loop()
        wait = self.checked_at.get(uri, -self.delay) + self.delay - loop.time()
        self.timers[uri] = loop.call_later(max(0.0, wait), self.guard(self.publish), uri)

    def refresh(self) -> None:
        """Files changed on disk (a save, a watched file): analyse every open document again."""
        self.snapshots.clear()
        self.policies.clear()
        for uri in list(self.documents):
            self.publish(uri)

    def log_failure(self, what: str) -> None:
        logger.exception("sentra-lang lsp: %s failed", what)
        try:
            self.window_log_message(types.LogMessageParams(
                type=types.MessageType.Error,
                message=f"sentra-lang lsp: {what} failed: {sys.exc_info()[1]!r}"))
        except Exception:  # the client is gone; standard error has it
            logger.exception("sentra-lang lsp: cannot report to the client")

    def guard(self, function: Handler, default: Any = None) -> Handler:
        """`function`, answering `default` (and logging) instead of raising."""
        @functools.wraps(function)
        def guarded(*args: Any) -> Any:
            try:
                return function(*args)
            except Exception:
                self.log_failure(function.__name__)
                return default
        return guarded  # type: ignore[return-value]


# ---------------------------------------------------------------------------- conversions

def position(line_character: tuple[int, int]) -> types.Position:
    return types.Position(line=line_character[0], character=line_character[1])


def offsets_range(start: int, end: int, lines: LineIndex, encoding: str) -> types.Range:
    return types.Range(start=position(lines.position(start, encoding)),
                       end=position(lines.position(end, encoding)))


def lsp_range(span: Span, lines: LineIndex, encoding: str) -> types.Range:
    return offsets_range(span.start, span.end, lines, encoding)


def _uri(path: str, snapshot: Snapshot, uri: str) -> str:
    return uri if path == snapshot.display else (from_fs_path(path) or path)


def location(span: Span, snapshot: Snapshot, uri: str, encoding: str,
             cache: dict[Source, LineIndex]) -> types.Location:
    lines = snapshot.lines if span.path == snapshot.display else source_lines(span.source, cache)
    return types.Location(uri=_uri(span.path, snapshot, uri), range=lsp_range(span, lines, encoding))


def file_location(path: Path) -> types.Location | None:
    if not path.is_file():
        return None
    start = position((0, 0))
    return types.Location(uri=from_fs_path(str(path)) or str(path),
                          range=types.Range(start=start, end=start))


def lsp_diagnostics(snapshot: Snapshot, uri: str, encoding: str) -> list[types.Diagnostic]:
    """The document's diagnostics; another file's problem shows on the line that brings the
    file in (an import, a suite's policy), with a link to where it is."""
    cache: dict[Source, LineIndex] = {}
    ordered = sorted(sort_diagnostics(snapshot.diagnostics),
                     key=lambda diag: not located_in(diag, snapshot.display))
    found = [_diagnostic(diag, snapshot, uri, encoding, cache) for diag in ordered]
    if snapshot.failure is not None:
        start = position((0, 0))
        found.append(types.Diagnostic(
            range=types.Range(start=start, end=start), severity=types.DiagnosticSeverity.Error,
            source="sentra-lang", message="sentra-lang could not check this file (an internal "
            f"error, please report it): {snapshot.failure}"))
    return found


def _diagnostic(diag: Diagnostic, snapshot: Snapshot, uri: str, encoding: str,
                cache: dict[Source, LineIndex]) -> types.Diagnostic:
    message = diag.message
    related = [types.DiagnosticRelatedInformation(
        location=location(r.span, snapshot, uri, encoding, cache), message=r.message)
        for r in diag.related]
    if located_in(diag, snapshot.display):
        where = lsp_range(diag.span, snapshot.lines, encoding)
    else:
        anchor = snapshot.anchors.get(diag.span.path, NO_SPAN)
        where = lsp_range(anchor, snapshot.lines, encoding)
        message = f"{os.path.basename(diag.span.path)}:{diag.span.line}:{diag.span.column}: {message}"
        related.insert(0, types.DiagnosticRelatedInformation(
            location=location(diag.span, snapshot, uri, encoding, cache), message=diag.message))
    if diag.witness is not None:
        message += f"\nwitness: {format_witness(diag.witness)}"
    if diag.help:
        message += f"\nhelp: {diag.help}"
    return types.Diagnostic(
        range=where, message=message, severity=_SEVERITY[diag.severity], code=diag.code,
        source="sentra-lang", related_information=related or None,
        tags=[types.DiagnosticTag.Unnecessary] if diag.code in _UNNECESSARY else None)


# ------------------------------------------------------------------------------- features

def hover_text(reference: Reference, snapshot: Snapshot) -> str | None:
    index, here = snapshot.index, snapshot.display
    if reference.kind == POLICY_FILE and snapshot.policy_path is not None:
        return hovering.policy_file_hover(snapshot.policy_path, index)
    if reference.kind == RULE and reference.name in hovering.RUNTIME_RULES:
        return hovering.runtime_rule_hover(reference.name)
    if index is None:
        return None
    if reference.kind == FIELD and reference.name in index.fields:
        return hovering.field_hover(index.fields[reference.name], here)
    if reference.kind == LET and reference.name in index.lets:
        return hovering.let_hover(index.lets[reference.name], here)
    if reference.kind == RULE:
        rule = index.rule(reference.name)
        return hovering.rule_hover(rule, here) if rule is not None else None
    if reference.kind == ACTION:
        action = index.action(reference.name)
        return (hovering.action_hover(action, index, here) if action is not None
                else hovering.unknown_action_hover(reference.name, index))
    if reference.kind == IMPORT and reference.name in index.imports:
        return hovering.import_hover(index.imports[reference.name], index)
    return None


def definition_of(reference: Reference, snapshot: Snapshot) -> Span | Path | None:
    """Where a reference's name is declared: a span, or (imports, a suite's policy) a file."""
    index = snapshot.index
    if reference.kind == POLICY_FILE:
        return snapshot.policy_path
    if index is None:
        return None
    if reference.kind == FIELD and reference.name in index.fields:
        return index.fields[reference.name].path.span
    if reference.kind == LET and reference.name in index.lets:
        return index.lets[reference.name].name.span
    if reference.kind == RULE:
        rule = index.rule(reference.name)
        return rule.target if rule is not None else None
    if reference.kind == ACTION:
        action = index.action(reference.name)
        return action.span if action is not None else None
    if reference.kind == IMPORT:
        return index.imports.get(reference.name)
    return None


def build_server() -> SentraServer:
    """A server with every feature registered (not started)."""
    server = SentraServer()
    guard = server.guard

    def document(params: Any) -> Document | None:
        return server.documents.get(params.text_document.uri)

    @server.feature(types.INITIALIZE)
    @guard
    def initialize(params: types.InitializeParams) -> None:
        options = params.initialization_options
        delay = options.get("diagnosticsDelay") if isinstance(options, dict) else None
        if isinstance(delay, (int, float)) and not isinstance(delay, bool) and 0 <= delay <= 10_000:
            server.delay = delay / 1000

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    @guard
    def did_open(params: types.DidOpenTextDocumentParams) -> None:
        item = params.text_document
        path = to_fs_path(item.uri) if item.uri.startswith("file:") else None
        server.documents[item.uri] = Document(item.uri, item.text, item.version, item.language_id,
                                              Path(path) if path else None)
        server.publish(item.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    @guard
    def did_change(params: types.DidChangeTextDocumentParams) -> None:
        current = document(params)
        if current is None:
            return
        for change in params.content_changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                start, end = change.range.start, change.range.end
                current.replace((start.line, start.character), (end.line, end.character),
                                change.text, server.encoding)
            else:
                current.replace(None, None, change.text)
        current.version = params.text_document.version
        server.publish_soon(current.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    @guard
    def did_save(params: types.DidSaveTextDocumentParams) -> None:
        server.refresh()

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    @guard
    def did_change_watched_files(params: types.DidChangeWatchedFilesParams) -> None:
        server.refresh()

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    @guard
    def did_close(params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        pending = server.timers.pop(uri, None)
        if pending is not None:
            pending.cancel()
        for store in (server.documents, server.snapshots, server.known, server.checked_at):
            store.pop(uri, None)
        server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri,
                                                                                diagnostics=[]))

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    @guard
    def hover(params: types.HoverParams) -> types.Hover | None:
        found = server.reference_at(params)
        if found is None:
            return None
        _document, snapshot, reference = found
        text = hover_text(reference, snapshot)
        if text is None:
            return None
        return types.Hover(
            contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text),
            range=offsets_range(reference.start, reference.end, snapshot.lines, server.encoding))

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    @guard
    def definition(params: types.DefinitionParams) -> types.Location | None:
        found = server.reference_at(params)
        if found is None:
            return None
        current, snapshot, reference = found
        target = definition_of(reference, snapshot)
        if isinstance(target, Path):
            return file_location(target)
        if target is None:
            return None
        return location(target, snapshot, current.uri, server.encoding, {})

    @server.feature(types.TEXT_DOCUMENT_FORMATTING)
    @guard
    def formatting(params: types.DocumentFormattingParams) -> list[types.TextEdit] | None:
        current = document(params)
        if current is None or current.is_suite:
            return None
        formatted, _diagnostics = format_source(current.text, current.display)
        if formatted is None:
            server.window_log_message(types.LogMessageParams(
                type=types.MessageType.Warning,
                message=f"sentra-lang: {current.display} not formatted: it does not parse"))
            return None
        if formatted == current.text:
            return []
        whole = types.Range(start=position((0, 0)), end=position(current.lines.end(server.encoding)))
        return [types.TextEdit(range=whole, new_text=formatted)]

    @server.feature(types.TEXT_DOCUMENT_COMPLETION,
                    types.CompletionOptions(trigger_characters=["."]))
    @guard
    def completion(params: types.CompletionParams) -> types.CompletionList | None:
        at = server.cursor(params)
        if at is None:
            return None
        current, snapshot, offset = at
        index = snapshot.index or server.known.get(current.uri)
        found = completing.complete(current.text, offset, index, suite=current.is_suite)
        start = position(snapshot.lines.position(found.start, server.encoding))
        replaced = types.Range(start=start, end=params.position)
        items = [types.CompletionItem(label=item.label, kind=_COMPLETION_KIND[item.kind],
                                      detail=item.detail or None,
                                      text_edit=types.TextEdit(range=replaced,
                                                               new_text=item.label))
                 for item in found.items]
        return types.CompletionList(is_incomplete=False, items=items)

    @server.feature(types.SHUTDOWN)
    @guard
    def shutdown(params: None) -> None:
        for pending in server.timers.values():
            pending.cancel()
        server.timers.clear()

    return server


_WARM_UP_POLICY = 'policy warm version "1" {}\ninput { x: bool = false }\n' \
    'action A {\n  when x block as B "b"\n  allow as C "c"\n}\notherwise allow as D "d"\n'
_WARM_UP_SUITE = 'suite "warm" for "warm.sentra"\nscenario "s" {\n  agent "a" A -> allowed\n}\n'


def warm_up() -> None:
    """Build the parsers and run every stage once before the first document arrives, then
    leave what is loaded so far out of the garbage collector's scans (`gc.freeze`): fewer and
    shorter pauses in the middle of a check."""
    compile_source(_WARM_UP_POLICY, "warm.sentra")
    format_source(_WARM_UP_POLICY, "warm.sentra")
    parse_suite(_WARM_UP_SUITE, "warm.sentra-test")
    gc.collect()
    gc.freeze()


MAX_MESSAGE_BYTES = 256 * 1024 * 1024
"""The largest message the server reads (documents over 8 MiB are already refused, SL006): a
`Content-Length` above it closes the connection instead of allocating that much."""
_MAX_HEADER_BYTES = 64 * 1024


class BoundedInput:
    """Standard input as pygls reads it, bounded: a header line is read at most 64 KiB at a
    time, and a body over `MAX_MESSAGE_BYTES` reads as the end of input (the server stops,
    logging why) instead of a MemoryError."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def readline(self) -> bytes:
        return self.stream.readline(_MAX_HEADER_BYTES)

    def read(self, size: int) -> bytes:
        if size > MAX_MESSAGE_BYTES:
            logging.getLogger(__name__).error(
                "a message of %d bytes is over the limit of %d MiB: closing the connection",
                size, MAX_MESSAGE_BYTES // 1024 // 1024)
            return b""
        return self.stream.read(size)


def serve(log_level: str = "WARNING") -> None:
    """Run the server on standard input and output until the client says `exit`.

    Standard output carries the protocol alone: anything else printed goes to standard error.
    """
    logging.basicConfig(stream=sys.stderr, level=log_level.upper(),
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    protocol_out = sys.stdout.buffer
    sys.stdout = sys.stderr
    server = build_server()
    warm_up()
    server.start_io(cast(BinaryIO, BoundedInput(sys.stdin.buffer)), protocol_out)
