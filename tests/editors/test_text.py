"""LSP positions: LSP's line breaks (`\\n`, `\\r\\n`, `\\r` only) and code units of the
negotiated encoding, against hand-counted answers and round-trip laws."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentra_lang.lsp.text import UTF8, UTF16, UTF32, Document, LineIndex, word_before

ENCODINGS = [UTF8, UTF16, UTF32]


@pytest.mark.parametrize(("encoding", "column"), [(UTF16, 3), (UTF8, 5), (UTF32, 2)])
def test_a_character_outside_the_bmp_is_two_utf16_units_and_four_utf8_bytes(
        encoding: str, column: int) -> None:
    lines = LineIndex("x\na😀b")
    assert lines.position(4, encoding) == (1, column)
    assert lines.offset(1, column, encoding) == 4


@pytest.mark.parametrize(("text", "offset", "expected"), [
    ("a\r\nb", 3, (1, 0)),           # CRLF is one break
    ("a\r\nb", 2, (0, 1)),           # between CR and LF: the end of the line's content
    ("a\rb", 2, (1, 0)),             # a lone CR breaks a line
    ("a\u2028b", 2, (0, 2)),         # U+2028 does not (str.splitlines would say it does)
    ("a\x0cb\x1cc\x85d", 6, (0, 6)),
    ("ab\n", 3, (1, 0)),
    ("ab", 99, (0, 2)),              # clamped to the text
])
def test_lines_break_where_lsp_says(text: str, offset: int, expected: tuple[int, int]) -> None:
    assert LineIndex(text).position(offset) == expected


def test_positions_past_a_line_or_the_text_clamp_as_lsp_says() -> None:
    lines = LineIndex("ab\r\ncd\n")
    assert lines.offset(0, 99) == 2          # past the line's end: its end, not the next line
    assert lines.offset(1, 1) == 5
    assert lines.offset(9, 0) == len("ab\r\ncd\n")
    assert lines.offset(-1, 3) == 0
    assert lines.end() == (2, 0)


def test_a_position_inside_a_surrogate_pair_rounds_to_a_whole_character() -> None:
    assert LineIndex("😀x").offset(0, 1, UTF16) == 1
    assert LineIndex("é😀").offset(0, 3, UTF8) == 2


@given(st.text(alphabet=st.sampled_from("ab é😀\r\n\u2028\t"), max_size=40), st.data())
def test_position_then_offset_is_the_identity(text: str, data: st.DataObject) -> None:
    lines = LineIndex(text)
    offset = data.draw(st.integers(0, len(text)))
    if 0 < offset < len(text) and text[offset - 1:offset + 1] == "\r\n":
        offset -= 1        # no position is inside a CRLF
    for encoding in ENCODINGS:
        assert lines.offset(*lines.position(offset, encoding), encoding) == offset


@given(st.text(alphabet=st.sampled_from("ab é😀\r\n"), max_size=30),
       st.text(alphabet=st.sampled_from("xy😀\n"), max_size=5), st.data())
def test_a_range_edit_replaces_exactly_that_range(text: str, insert: str,
                                                  data: st.DataObject) -> None:
    first = data.draw(st.integers(0, len(text)))
    last = data.draw(st.integers(first, len(text)))
    for offset in (first, last):
        if 0 < offset < len(text) and text[offset - 1:offset + 1] == "\r\n":
            return
    for encoding in ENCODINGS:
        document = Document("file:///p.sentra", text, 1)
        lines = LineIndex(text)
        document.replace(lines.position(first, encoding), lines.position(last, encoding), insert,
                         encoding)
        assert document.text == text[:first] + insert + text[last:]


def test_a_whole_text_change_replaces_everything() -> None:
    document = Document("file:///p.sentra", "old", 1)
    document.replace(None, None, "new")
    assert document.text == "new" and document.lines.text == "new"


def test_the_name_before_the_cursor() -> None:
    assert word_before("when context.eli", 16).prefix == "context.eli"
    assert word_before("when context.eli", 16).start == 5
    assert word_before("when ", 5).prefix == ""
    assert word_before("a\nbc", 4).prefix == "bc"
    assert word_before("9abc", 4).prefix == "abc"


def test_suites_are_known_by_extension_or_language() -> None:
    assert Document("file:///s.sentra-test", "", 1).is_suite
    assert Document("untitled:1", "", 1, language_id="sentra-test").is_suite
    assert not Document("file:///p.sentra", "", 1, language_id="sentra").is_suite
