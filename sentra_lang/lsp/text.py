"""Documents as the editor holds them, and the translation between offsets and LSP positions.

LSP splits lines at `\\n`, `\\r\\n` and `\\r` only (not at the other breaks `str.splitlines`
knows, such as U+2028) and counts columns in code units of the negotiated encoding: UTF-16
unless the client offers another. The compiler counts code points from the start of the text;
`LineIndex` translates between the two, so a `😀` before an error moves its column by two in
UTF-16 and by one in UTF-32.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

UTF8 = "utf-8"
UTF16 = "utf-16"
UTF32 = "utf-32"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
SUITE_SUFFIX = ".sentra-test"
SUITE_LANGUAGE = "sentra-test"


def code_units(text: str, encoding: str) -> int:
    """How many code units `text` takes in `encoding` (lone surrogates count as one)."""
    if encoding == UTF32:
        return len(text)
    if encoding == UTF8:
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _char_units(char: str, encoding: str) -> int:
    return code_units(char, encoding) if ord(char) > 0x7F else 1


class LineIndex:
    """Line starts of a text, by LSP's rules, for offset <-> (line, character) conversions."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0] + [match.end() for match in _LINE_BREAK.finditer(text)]

    def line_end(self, line: int) -> int:
        """The offset where line `line`'s content ends (before its line break)."""
        end = self.starts[line + 1] if line + 1 < len(self.starts) else len(self.text)
        while end > self.starts[line] and self.text[end - 1] in "\r\n":
            end -= 1
        return end

    def position(self, offset: int, encoding: str = UTF16) -> tuple[int, int]:
        """The zero-based (line, character) of a code-point offset, clamped to the text."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect_right(self.starts, offset) - 1
        offset = min(offset, self.line_end(line))
        return line, code_units(self.text[self.starts[line]:offset], encoding)

    def offset(self, line: int, character: int, encoding: str = UTF16) -> int:
        """The code-point offset of an LSP position; past a line's end means its end (LSP)."""
        if line < 0:
            return 0
        if line >= len(self.starts):
            return len(self.text)
        start, end = self.starts[line], self.line_end(line)
        if encoding == UTF32:
            return start + max(0, min(character, end - start))
        count = 0
        for index in range(start, end):
            if count >= character:
                return index
            count += _char_units(self.text[index], encoding)
        return end

    def end(self, encoding: str = UTF16) -> tuple[int, int]:
        """The position just past the text's last character."""
        return self.position(len(self.text), encoding)


@dataclass
class Document:
    """An open document: the text the editor has (saved or not) and its version."""

    uri: str
    text: str
    version: int
    language_id: str = ""
    path: Path | None = None
    """The file the document is, when its URI is a `file:` URI."""
    _index: LineIndex | None = field(default=None, repr=False)

    @property
    def is_suite(self) -> bool:
        name = self.path.name if self.path is not None else self.uri
        return self.language_id == SUITE_LANGUAGE or name.endswith(SUITE_SUFFIX)

    @property
    def display(self) -> str:
        """The name diagnostics and spans use: the file's absolute path, else the URI."""
        return str(self.path) if self.path is not None else self.uri

    @property
    def lines(self) -> LineIndex:
        if self._index is None or self._index.text is not self.text:
            self._index = LineIndex(self.text)
        return self._index

    def replace(self, start: tuple[int, int] | None, end: tuple[int, int] | None, new_text: str,
                encoding: str = UTF16) -> None:
        """Apply one content change: a range's text replaced, or (no range) the whole text."""
        if start is None or end is None:
            self.text = new_text
            return
        first = self.lines.offset(*start, encoding)
        last = self.lines.offset(*end, encoding)
        first, last = min(first, last), max(first, last)
        self.text = self.text[:first] + new_text + self.text[last:]


@dataclass(frozen=True)
class Word:
    """The name being typed at a position: its text up to the cursor, and where it starts."""

    prefix: str
    start: int


_WORD_BEFORE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")


def word_before(text: str, offset: int) -> Word:
    """The dotted name that ends at `offset` (empty when the cursor follows no name)."""
    line_start = max(text.rfind("\n", 0, offset), text.rfind("\r", 0, offset)) + 1
    match = _WORD_BEFORE.search(text, line_start, offset)
    if match is None:
        return Word("", offset)
    return Word(match.group(0), match.start())
