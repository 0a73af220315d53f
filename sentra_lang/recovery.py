"""Syntax errors: Lark's exceptions as diagnostics, and recovery that reports each mistake once.

Shared by the policy parser and the scenario suite parser. After an error the parser runs again
on a repaired working copy of the text, to find the next independent error. Repairs replace
characters and never insert any (except at the very end), so every offset, and so every error,
points into the original source:

- a bracket that is never closed (SL010) is closed right before the token that proves it: a
  closing bracket of another kind, a declaration that can only start a new item (`action`
  inside a block), or the end of the file. The error names the opening bracket as a related
  span ("this block is never closed"), so a missing `}` is one error where it belongs, not a
  cascade at the next block;
- a closing bracket that closes nothing is blanked, and a missing opening bracket (one that a
  later closer shows was meant) is put back (SL011);
- any other error blanks its line, and with it every bracket group the line opens, so a broken
  block header drops its block rather than leave the block's `}` to cause a second error.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import lark
from lark import Lark

from sentra_lang.diagnostics import Diagnostic, Related, diagnostic, did_you_mean
from sentra_lang.keywords import MAX_NUMBER_DIGITS, OUTCOMES
from sentra_lang.source import Source, Span

MAX_SYNTAX_ERRORS = 20
RECOVERY_BUDGET = 4 * 1024 * 1024
"""Characters re-parsed after errors, at most: a large file reports fewer errors (at least one)
rather than spend minutes re-parsing; a file of up to 200 KiB always reports up to 20."""
BRACKETS = {"{": "}", "(": ")", "[": "]"}
_OPENER_OF = {closer: opener for opener, closer in BRACKETS.items()}
# Strings and comments (whose brackets do not count), then brackets; other text is skipped.
_LEXEME = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|[{}()\[\]]')
_FIRST_WORD = re.compile(r"[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*(.?)")
_SET_INTRODUCERS = ("in", "enum", "=", ",")
_OTHER_NUMBER = re.compile(
    r"(?<![\w.])-?(?:[0-9]+(?:\.[0-9]+)?[eE][+-]?[0-9]+|\.[0-9]+|[0-9]+\.(?![0-9])"
    r"|[0-9][0-9_]*_[0-9_]*|0[xXoObB][0-9A-Fa-f_]+)(?![\w.])")
"""A number as other languages write it, which the language does not read: with an exponent
(`1e5`), without a digit before or after its point (`.5`, `5.`), with underscores (`1_000`), or
in hexadecimal, octal or binary (`0x1F`)."""
# A node of Lark's concrete syntax tree (a Tree or a Token); its shape is the grammar's.
Node = Any


@dataclass(frozen=True)
class Syntax:
    """What error reporting needs to know of a grammar.

    `words` describes pattern terminals in messages ("a string"); `top_level` are the words
    that can only start a top-level item, so meeting one inside a bracket proves the bracket
    was never closed.
    """

    lark: Lark
    words: Mapping[str, str]
    top_level: frozenset[str]


def parse_recovering(source: Source, syntax: Syntax,
                     start: str = "start") -> tuple[Node | None, list[Diagnostic]]:
    """Parse; on errors, the diagnostics of every independent mistake (at most 20) and no tree."""
    recovery = _Recovery(source, syntax)
    errors: list[Diagnostic] = []
    most = max(1, min(MAX_SYNTAX_ERRORS, RECOVERY_BUDGET // max(1, len(source.text))))
    while len(errors) < most:
        try:
            tree = syntax.lark.parse(recovery.work, start=start)
        except lark.exceptions.UnexpectedInput as error:
            problem, repaired = recovery.explain(error)
            errors.append(problem)
            if not repaired:
                break
        else:
            return (None if errors else tree), errors
    return None, errors


def describe_expected(expected: set[str], grammar: Lark, words: Mapping[str, str]) -> str:
    """What the parser expected, in words: `words` names the grammar's pattern terminals."""
    terminals = {t.name: t for t in grammar.terminals}
    described = set()
    for name in expected:
        if name in words:
            described.add(words[name])
        elif name in terminals and terminals[name].pattern.type == "str":
            described.add(f"`{terminals[name].pattern.value}`")
        else:
            described.add(name.lower())
    ordered = sorted(described)
    if len(ordered) == 1:
        return ordered[0]
    return ", ".join(ordered[:-1]) + " or " + ordered[-1]


class _Recovery:
    """One file's errors: explains each Lark error and repairs the working text after it."""

    def __init__(self, source: Source, syntax: Syntax) -> None:
        self.source = source
        self.syntax = syntax
        self.work = source.text
        self.literals = {t.name: t.pattern.value for t in syntax.lark.terminals
                         if t.pattern.type == "str"}

    # -- explaining
    def explain(self, error: lark.exceptions.UnexpectedInput) -> tuple[Diagnostic, bool]:
        """The diagnostic for `error` and whether the text could be repaired to go on."""
        if isinstance(error, lark.exceptions.UnexpectedCharacters):
            return self._unexpected_character(error.pos_in_stream or 0, set(error.allowed or ()))
        token = getattr(error, "token", None)
        expected = set(getattr(error, "expected", ()) or ())
        interactive = getattr(error, "interactive_parser", None)
        if interactive is not None:
            expected = set(interactive.accepts()) or expected
        if token is None or token.type == "$END":
            position, value = len(self.work), ""
        else:
            position, value = token.start_pos or 0, str(token)
        expected_chars = {self.literals[name] for name in expected if name in self.literals}
        return (self._other_number(position)
                or self._unclosed(position, value, expected_chars)
                or self._unmatched(position, value, expected_chars)
                or self._unexpected_token(position, value, expected))

    def _other_number(self, position: int) -> tuple[Diagnostic, bool] | None:
        """SL017 when the error is at or just after a number written as other languages write
        it (`1e5`, `.5`, `0x1F`), outside strings and comments: the parser read it as a number
        and a name, or a point and a number, and stopped at the second part or after it."""
        start = self.work.rfind("\n", 0, position) + 1
        end = self.work.find("\n", position)
        line = self.work[start:len(self.work) if end < 0 else end]
        code = _code_only(line)
        for match in _OTHER_NUMBER.finditer(code):
            after = len(code) - len(code[match.end():].lstrip(" \t"))   # and the blanks after
            if start + match.start() <= position <= start + after:
                written = match.group()
                span = self._span(start + match.start(), start + match.end())
                return (diagnostic("SL017", f"number `{written}` is not written in decimal digits",
                                   span, help=_as_decimal(written)),
                        self._blank_line(position))
        return None

    def _unexpected_character(self, offset: int, allowed: set[str]) -> tuple[Diagnostic, bool]:
        char = self.work[offset]
        span = self._span(offset, offset + 1)
        if char == '"':
            problem = diagnostic("SL003", "unterminated string", span,
                                 help="close the string with `\"` on the same line")
        else:
            problem = diagnostic("SL002", f"unexpected character `{char}`", span,
                                 help=self._expected_text(allowed) if allowed else None)
            if unicodedata.category(char)[0] in "CZ":  # invisible: a byte order mark, a
                return problem, self._replace(offset, " ")  # zero-width or control character
        return problem, self._blank_line(offset)

    def _unexpected_token(self, position: int, value: str,
                          expected: set[str]) -> tuple[Diagnostic, bool]:
        help = self._expected_text(expected)
        if not value:
            return diagnostic("SL004", "unexpected end of file", self._last_line(),
                              help=help), False
        span = self._span(position, position + len(value))
        outcome = did_you_mean(value, OUTCOMES) if value not in OUTCOMES else None
        if outcome is not None:   # a misspelt outcome (`reveiw`) where a rule starts
            help = f"{outcome} (a rule's outcome is {_or(OUTCOMES)})"
        return (diagnostic("SL001", f"unexpected `{value}`", span, help=help),
                self._blank_line(position))

    def _unclosed(self, position: int, value: str,
                  expected_chars: set[str]) -> tuple[Diagnostic, bool] | None:
        """SL010 when an open bracket had to close before `position` (None otherwise)."""
        declaration = self._declaration_before(position)
        if declaration is not None and open_at(self.work, declaration):
            at = declaration  # an item starts while a bracket is open: it closes before
        else:
            declaration, at = None, position
        open_brackets = open_at(self.work, at)
        if not open_brackets:
            return None
        opener = open_brackets[-1]
        closer = BRACKETS[self.work[opener]]
        if declaration is None and closer not in expected_chars:
            return None
        if at >= len(self.work):
            span, where = self._last_line(), "at the end of the file"
        else:
            word = self.work[at:at + len(value)] if declaration is None else \
                _FIRST_WORD.match(self.work, at).group(1)  # type: ignore[union-attr]
            span, where = self._span(at, at + len(word)), f"before `{word}`"
        what = self._what(opener)
        problem = diagnostic(
            "SL010", f"missing `{closer}` {where}", span,
            help=f"close the {what} with `{closer}`",
            related=[Related(self._span(opener, opener + 1), f"this {what} is never closed")])
        return problem, self._put(at, closer)

    def _unmatched(self, position: int, value: str,
                   expected_chars: set[str]) -> tuple[Diagnostic, bool] | None:
        """SL011: a closer that closes nothing, or an opener a later closer shows is missing."""
        if value in _OPENER_OF:
            if _OPENER_OF[value] in (self.work[i] for i in open_at(self.work, position)):
                return None
            problem = diagnostic("SL011", f"`{value}` closes nothing", self._span(position, position + 1),
                                 help=f"remove it, or open the group with `{_OPENER_OF[value]}`")
            return problem, self._replace(position, " ")
        for opener in sorted(expected_chars & set(BRACKETS)):
            closer = unmatched_closer(self.work, position, opener)
            if closer is None:
                continue
            where = f"before `{value}`" if value else "at the end of the file"
            span = self._span(position, position + len(value)) if value else self._last_line()
            problem = diagnostic(
                "SL011", f"missing `{opener}` {where}", span,
                help=f"open the group with `{opener}`",
                related=[Related(self._span(closer, closer + 1),
                                 f"this `{BRACKETS[opener]}` closes nothing")])
            return problem, self._put(position, opener)
        return None

    # -- repairing
    def _put(self, position: int, char: str) -> bool:
        """Put `char` just before `position`, in place of white space or a comment."""
        work = self.work
        if position >= len(work):
            self.work = work + char
            return True
        before = position - 1
        if before < 0 or work[before] not in " \t\r\n":
            return False
        if work[before] in "\r\n":
            line_start = work.rfind("\n", 0, before) + 1
            comment = _comment_in(work, line_start, before)
            if comment is not None:  # the comment gives way: its line stays a line
                self.work = work[:comment] + char + " " * (before - comment - 1) + work[before:]
                return True
        return self._replace(before, char)

    def _replace(self, position: int, char: str) -> bool:
        self.work = self.work[:position] + char + self.work[position + 1:]
        return True

    def _blank_line(self, position: int) -> bool:
        """Blank the line at `position` and the bracket groups it opens; closers it holds of
        groups opened earlier stay, so the structure around the line is kept."""
        work = self.work
        start = work.rfind("\n", 0, position) + 1
        end = work.find("\n", position)
        end = len(work) if end < 0 else end
        if not work[start:end].strip():
            return False
        opened: list[int] = []
        kept: set[int] = set()
        for match in _LEXEME.finditer(work, start, end):
            char = match.group()
            if char in BRACKETS:
                opened.append(match.start())
            elif char in _OPENER_OF:
                if opened and work[opened[-1]] == _OPENER_OF[char]:
                    opened.pop()
                else:
                    kept.add(match.start())
        if opened:
            closer = matching_closer(work, opened[0])
            end = max(end, closer + 1) if closer is not None else end
        blanked = "".join(char if index in kept or char == "\n" else " "
                          for index, char in enumerate(work[start:end], start))
        self.work = work[:start] + blanked + work[end:]
        return True

    # -- helpers
    def _declaration_before(self, position: int) -> int | None:
        """The offset of a top-level word starting the line of `position`, if there is one
        (a word followed by `:` or `.` is a field name, not a declaration)."""
        line_start = self.work.rfind("\n", 0, min(position, len(self.work))) + 1
        match = _FIRST_WORD.match(self.work, line_start)
        if match is None or match.group(1) not in self.syntax.top_level:
            return None
        if match.group(2) in (":", ".") or match.start(1) > position:
            return None
        return match.start(1)

    def _what(self, opener: int) -> str:
        char = self.work[opener]
        if char == "(":
            return "parenthesis"
        if char == "[":
            return "list"
        before = self.work[:opener].rstrip()
        return "set" if before.endswith(_SET_INTRODUCERS) else "block"

    def _expected_text(self, names: set[str]) -> str:
        return f"expected {describe_expected(names, self.syntax.lark, self.syntax.words)}"

    def _span(self, start: int, end: int) -> Span:
        size = len(self.source.text)
        return Span.of_offsets(self.source, min(start, size), min(end, size))

    def _last_line(self) -> Span:
        stripped = self.source.text.rstrip()
        line_start = stripped.rfind("\n") + 1
        indent = len(stripped[line_start:]) - len(stripped[line_start:].lstrip())
        return Span.of_offsets(self.source, line_start + indent, len(stripped))


def open_at(text: str, end: int) -> list[int]:
    """Offsets of the brackets still open at `end`, outermost first.

    A closer of another kind than the innermost open bracket closes back to the nearest open
    bracket of its own kind (those in between were never closed); one with none of its kind
    open closes nothing and is ignored.
    """
    stack: list[int] = []
    for match in _LEXEME.finditer(text, 0, end):
        char = match.group()
        if char in BRACKETS:
            stack.append(match.start())
        elif char in _OPENER_OF:
            opener = _OPENER_OF[char]
            for index in range(len(stack) - 1, -1, -1):
                if text[stack[index]] == opener:
                    del stack[index:]
                    break
    return stack


def matching_closer(text: str, opener: int) -> int | None:
    """The offset of the bracket closing the one at `opener`, or None."""
    kind, closer = text[opener], BRACKETS[text[opener]]
    depth = 0
    for match in _LEXEME.finditer(text, opener):
        char = match.group()
        if char == kind:
            depth += 1
        elif char == closer:
            depth -= 1
            if depth == 0:
                return match.start()
    return None


def unmatched_closer(text: str, start: int, opener: str) -> int | None:
    """The first closer of `opener`'s kind after `start` that no opener accounts for: not a
    later one, nor one still open at `start` (the first closers after `start` close those)."""
    closer = BRACKETS[opener]
    depth = sum(1 for index in open_at(text, start) if text[index] == opener)
    for match in _LEXEME.finditer(text, start):
        char = match.group()
        if char == opener:
            depth += 1
        elif char == closer:
            if depth == 0:
                return match.start()
            depth -= 1
    return None


def _comment_in(text: str, start: int, end: int) -> int | None:
    """The offset of a comment that runs to `end` on the line [start, end), or None."""
    for match in _LEXEME.finditer(text, start, end):
        if match.group().startswith("#"):
            return match.start()
    return None


def _or(words: tuple[str, ...]) -> str:
    """`a`, `b` or `c`."""
    quoted = [f"`{word}`" for word in words]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _code_only(line: str) -> str:
    """``line`` with its strings and its comment blanked (as many spaces): what is left is
    code, at the same offsets."""
    return _LEXEME.sub(lambda match: match.group() if len(match.group()) == 1
                       else " " * len(match.group()), line)


def _as_decimal(written: str) -> str:
    """How to write a number of another language's form in the language: its exact value in
    decimal digits when that has at most :data:`MAX_NUMBER_DIGITS` of them."""
    from decimal import Decimal, InvalidOperation

    text = written.replace("_", "")
    try:
        body = text.lstrip("-")
        if body[:2].lower() in ("0x", "0o", "0b"):
            value = Decimal(int(body, 0)) * (-1 if text.startswith("-") else 1)
        else:
            value = Decimal(text)
    except (InvalidOperation, ValueError):
        value = None
    if value is None or abs(value.adjusted()) >= MAX_NUMBER_DIGITS:
        return (f"numbers are written in decimal digits, with at most {MAX_NUMBER_DIGITS} of "
                "them: `-12`, `0.5`, `100000`")
    digits = format(value.normalize() if value == value.to_integral_value() else value, "f")
    return f"numbers are written in decimal digits: write `{digits}`"
