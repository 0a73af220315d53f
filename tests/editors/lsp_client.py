"""A real LSP client for tests and benchmarks: pygls' `LanguageClient` driving a
`sentra-lang lsp` subprocess over stdio JSON-RPC, behind blocking methods.

The client runs on its own event loop; each method runs one exchange on it to completion (with
a timeout), so tests read top to bottom. Diagnostics the server publishes are queued per URI.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections import defaultdict
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

TIMEOUT = 30.0
T = TypeVar("T")


def server_command() -> list[str]:
    """`sentra-lang lsp`: the console script installed beside this Python."""
    script = Path(sys.executable).with_name("sentra-lang")
    if script.exists():
        return [str(script), "lsp"]
    found = shutil.which("sentra-lang")
    return [found, "lsp"] if found else [sys.executable, "-m", "sentra_lang", "lsp"]


def uri(path: Path) -> str:
    return from_fs_path(str(path)) or str(path)


class LspSession:
    """One server process and an initialized client talking to it."""

    def __init__(self, *, encodings: list[str] | None = None,
                 options: dict[str, Any] | None = None, cwd: Path | None = None,
                 arguments: tuple[str, ...] = ()) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = LanguageClient("sentra-tests", "1")
        self.published: dict[str, list[types.PublishDiagnosticsParams]] = defaultdict(list)
        self.logs: list[str] = []
        self._arrived = asyncio.Event()
        self.versions: dict[str, int] = {}

        @self.client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def diagnostics(params: types.PublishDiagnosticsParams) -> None:
            self.published[params.uri].append(params)
            self._arrived.set()

        @self.client.feature(types.WINDOW_LOG_MESSAGE)
        def log(params: types.LogMessageParams) -> None:
            self.logs.append(params.message)

        command = server_command()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.run(self.client.start_io(*command, *arguments, cwd=str(cwd) if cwd else None,
                                      env=env))
        self.stderr: list[str] = []
        self._drain = self.loop.create_task(self._read_stderr())
        general = types.GeneralClientCapabilities(position_encodings=encodings) if encodings \
            else None
        self.initialized = self.run(self.client.initialize_async(types.InitializeParams(
            capabilities=types.ClientCapabilities(general=general),
            process_id=os.getpid(), initialization_options=options)))
        self.client.initialized(types.InitializedParams())

    # ------------------------------------------------------------------------- plumbing
    async def _read_stderr(self) -> None:
        """Keep the server's standard error flowing (a full pipe would stall the server)."""
        server = self.client._server
        if server is None or server.stderr is None:
            return
        while line := await server.stderr.readline():
            self.stderr.append(line.decode("utf-8", "replace"))

    def run(self, work: Coroutine[Any, Any, T], timeout: float = TIMEOUT) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(work, timeout))

    def pump(self, seconds: float) -> None:
        """Let the client read what the server sends for a while."""
        self.loop.run_until_complete(asyncio.sleep(seconds))

    @property
    def encoding(self) -> str:
        kind = self.initialized.capabilities.position_encoding
        return str(getattr(kind, "value", kind) or "utf-16")

    def close(self) -> int | None:
        """shutdown, exit, and the server's exit code."""
        try:
            if not self.client.stopped:
                self.run(self.client.shutdown_async(None))
                self.client.exit(None)
            server = self.client._server
            if server is not None:
                self.run(server.wait(), timeout=10)
                self.run(self._drain, timeout=10)
                return server.returncode
            return None
        finally:
            self.run(self.client.stop(), timeout=10)
            self.loop.close()

    # ----------------------------------------------------------------------- documents
    def open(self, path: Path, text: str | None = None, language: str | None = None) -> str:
        address = uri(path)
        text = path.read_text(encoding="utf-8") if text is None else text
        language = language or ("sentra-test" if path.suffix == ".sentra-test" else "sentra")
        self.versions[address] = 1
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri=address, language_id=language, version=1, text=text)))
        return address

    def change(self, address: str, text: str, start: tuple[int, int] | None = None,
               end: tuple[int, int] | None = None) -> int:
        """Replace the whole text, or the range `start`-`end` (line, character)."""
        self.versions[address] += 1
        if start is None or end is None:
            change: Any = types.TextDocumentContentChangeWholeDocument(text=text)
        else:
            change = types.TextDocumentContentChangePartial(
                range=types.Range(start=types.Position(line=start[0], character=start[1]),
                                  end=types.Position(line=end[0], character=end[1])),
                text=text)
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(
                uri=address, version=self.versions[address]),
            content_changes=[change]))
        return self.versions[address]

    def save(self, address: str) -> None:
        self.client.text_document_did_save(types.DidSaveTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=address)))

    def changed_on_disk(self, address: str) -> None:
        """`workspace/didChangeWatchedFiles`: the editor saw a file change on disk."""
        self.client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=address, type=types.FileChangeType.Changed)]))

    def close_document(self, address: str) -> None:
        self.client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=address)))

    def diagnostics(self, address: str, version: int | None = None,
                    timeout: float = TIMEOUT) -> list[types.Diagnostic]:
        """The first diagnostics published for `address` (at `version`, if given) not yet read."""
        async def wait() -> list[types.Diagnostic]:
            while True:
                queue = self.published[address]
                while queue:
                    params = queue.pop(0)
                    if version is None or params.version == version:
                        return list(params.diagnostics)
                self._arrived.clear()
                await self._arrived.wait()
        return self.run(wait(), timeout)

    # ------------------------------------------------------------------------ requests
    def _position(self, address: str, line: int, character: int) -> dict[str, Any]:
        return {"text_document": types.TextDocumentIdentifier(uri=address),
                "position": types.Position(line=line, character=character)}

    def hover(self, address: str, line: int, character: int) -> types.Hover | None:
        return self.run(self.client.text_document_hover_async(
            types.HoverParams(**self._position(address, line, character))))

    def definition(self, address: str, line: int, character: int) -> Any:
        return self.run(self.client.text_document_definition_async(
            types.DefinitionParams(**self._position(address, line, character))))

    def completion(self, address: str, line: int, character: int) -> list[types.CompletionItem]:
        result = self.run(self.client.text_document_completion_async(
            types.CompletionParams(**self._position(address, line, character))))
        if result is None:
            return []
        return list(result.items if isinstance(result, types.CompletionList) else result)

    def formatting(self, address: str) -> list[types.TextEdit] | None:
        result = self.run(self.client.text_document_formatting_async(
            types.DocumentFormattingParams(
                text_document=types.TextDocumentIdentifier(uri=address),
                options=types.FormattingOptions(tab_size=2, insert_spaces=True))))
        return None if result is None else list(result)
