"""Source text and spans: every AST node and every diagnostic points into a `Source`."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from functools import cached_property

_LONE_CR = re.compile(r"\r(?!\n)")


@dataclass(frozen=True, eq=False)
class Source:
    """A file's text, kept so that any diagnostic can render the lines it points at.

    Lines end at `\\n`, `\\r\\n` or a lone `\\r`, as editors and LSP break them: a lone `\\r`
    is made a `\\n` (one character for one, so offsets do not move), so that a comment or a
    string ends where the editor shows its line end and every position counts the lines the
    editor shows. Other characters (U+2028, a form feed) break no line.
    """

    path: str
    text: str

    def __post_init__(self) -> None:
        if "\r" in self.text:
            object.__setattr__(self, "text", _LONE_CR.sub("\n", self.text))

    @cached_property
    def lines(self) -> list[str]:
        return [line.removesuffix("\r") for line in self.text.split("\n")]

    def line(self, number: int) -> str:
        """The 1-based line `number`, or "" past the end."""
        return self.lines[number - 1] if 0 < number <= len(self.lines) else ""

    @cached_property
    def line_starts(self) -> list[int]:
        """Offsets where lines start (`str.find` in a loop: fast on megabyte sources)."""
        starts = [0]
        index = self.text.find("\n")
        while index >= 0:
            starts.append(index + 1)
            index = self.text.find("\n", index + 1)
        return starts

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset (a binary search over line starts)."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self.line_starts, offset)
        return line, offset - self.line_starts[line - 1] + 1


@dataclass(frozen=True, eq=False)
class Span:
    """A range in a source: 1-based lines and columns (end exclusive) and character offsets.

    Two spans are equal when they cover the same range of the same file (by path): the
    source text is not compared, but the path is, so the same range in two files never
    compares equal and a diagnostic can never stand in for another file's.
    """

    source: Source = field(repr=False)
    line: int
    column: int
    end_line: int
    end_column: int
    start: int
    end: int

    def _key(self) -> tuple[str, int, int, int, int, int, int]:
        return (self.source.path, self.start, self.end, self.line, self.column, self.end_line,
                self.end_column)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Span):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    @property
    def path(self) -> str:
        return self.source.path

    @property
    def text(self) -> str:
        return self.source.text[self.start : self.end]

    @classmethod
    def of_offsets(cls, source: Source, start: int, end: int) -> Span:
        line, column = source.position(start)
        end_line, end_column = source.position(end)
        return cls(source, line, column, end_line, end_column, start, end)

    def merge(self, other: Span) -> Span:
        """The smallest span covering both."""
        first, last = (self, other) if self.start <= other.start else (other, self)
        end = self if self.end >= other.end else other
        return Span(
            self.source, first.line, first.column, end.end_line, end.end_column,
            first.start, end.end,
        )

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


UNKNOWN_SOURCE = Source("<unknown>", "")
NO_SPAN = Span(UNKNOWN_SOURCE, 1, 1, 1, 1, 0, 0)
