"""Errors where the mistake is (issue 17): a bracket never closed is reported where it had to
close, with the opening bracket as a related span, and nothing else; the same in suites.

Each case is a file in tests/fixtures/brackets/ with its rendered diagnostics as a golden file
in tests/golden/diagnostics/brackets/ (`--update-goldens` rewrites them); the table below pins
what every golden must say, so a regenerated golden cannot quietly drift.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sentra_lang.diagnostics import Diagnostic, render_human
from sentra_lang.parser import parse
from sentra_lang.testing.suite_parser import parse_suite

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "brackets"

# file -> every diagnostic as (code, line:col, related opener line:col or None)
EXPECTED: dict[str, list[tuple[str, str, str | None]]] = {
    "action_open.sentra": [("SL010", "6:1", "3:10")],
    "comment_before_block.sentra": [("SL010", "6:1", "3:10")],
    "header_open.sentra": [("SL010", "4:1", "1:22")],
    "input_open.sentra": [("SL010", "7:1", "3:7")],
    "enum_open.sentra": [("SL010", "7:1", "3:7")],
    "paren_open.sentra": [("SL010", "9:17", "9:8")],
    "set_open.sentra": [("SL010", "6:26", "6:16")],
    "let_set_open.sentra": [("SL010", "7:1", "5:17")],
    "eof_open.sentra": [("SL010", "6:3", "5:10")],
    "wrong_closer.sentra": [("SL010", "9:16", "9:8")],
    "two_open.sentra": [("SL010", "3:1", "1:22"), ("SL010", "6:1", "3:10")],
    "extra_closer.sentra": [("SL011", "6:1", None)],
    "missing_opener.sentra": [("SL011", "4:3", "5:1")],
    # a closer after the mistake that closes a bracket opened before it is no missing opener
    "misspelt_value.sentra": [("SL001", "4:28", None)],
    "unterminated_string.sentra": [("SL003", "3:8", None), ("SL003", "8:14", None)],
    "suite_scenario_open.sentra-test": [("SL010", "6:1", "3:18")],
    "suite_tags_open.sentra-test": [("SL010", "3:36", "3:23")],
    "suite_fields_open.sentra-test": [("SL010", "4:39", "4:15")],
    "suite_list_open.sentra-test": [("SL010", "5:13", "5:3")],
    "suite_where_paren_open.sentra-test": [("SL010", "3:55", "3:26")],
    "suite_string_open.sentra-test": [("SL003", "3:10", None), ("SL003", "8:33", None)],
    "suite_eof_open.sentra-test": [("SL010", "4:3", "3:18")],
}


def diagnostics_of(path: Path) -> list[Diagnostic]:
    text = path.read_text("utf-8")
    parsed = parse_suite if path.suffix == ".sentra-test" else parse
    _, diagnostics = parsed(text, path.name)
    return diagnostics


def position(line: int, column: int) -> str:
    return f"{line}:{column}"


def test_every_fixture_has_expectations() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.sentra*")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_one_error_at_the_mistake_with_the_opener(name: str, golden) -> None:
    diagnostics = diagnostics_of(FIXTURES / name)
    found = [(d.code, position(d.span.line, d.span.column),
              position(d.related[0].span.line, d.related[0].span.column) if d.related else None)
             for d in diagnostics]
    assert found == EXPECTED[name]
    golden.check(f"diagnostics/brackets/{Path(name).stem}.txt",
                 "\n\n".join(render_human(d) for d in diagnostics) + "\n")


@pytest.mark.parametrize("name", [n for n, e in EXPECTED.items() if e[0][0] == "SL010"])
def test_the_related_span_is_the_opening_bracket(name: str) -> None:
    for diag in diagnostics_of(FIXTURES / name):
        [related] = diag.related
        assert related.span.text in "{(["
        assert related.message.startswith("this ") and related.message.endswith(" is never closed")
        closer = {"{": "}", "(": ")", "[": "]"}[related.span.text]
        assert diag.message.startswith(f"missing `{closer}`")


def test_a_fixed_file_parses() -> None:
    """The repair the message suggests is the right one: closing the bracket where the error
    is reported makes the file parse."""
    text = (FIXTURES / "action_open.sentra").read_text("utf-8")
    [diag] = diagnostics_of(FIXTURES / "action_open.sentra")
    fixed = text[:diag.span.start] + "}\n" + text[diag.span.start:]
    module, diagnostics = parse(fixed, "fixed.sentra")
    assert module is not None and diagnostics == []


def test_independent_errors_after_a_bracket_are_still_reported() -> None:
    text = ('policy p version "1" {}\naction A {\n  allow as X\n\naction B {\n'
            '  allow risk as Y\n}\notherwise allow as O\n')
    _, diagnostics = parse(text, "t.sentra")
    assert [(d.code, d.span.line) for d in diagnostics] == [("SL010", 5), ("SL001", 6)]


def test_a_bracket_in_a_string_or_comment_does_not_count() -> None:
    text = ('policy p version "1" {}  # { not a bracket\naction A {\n'
            '  allow as X "a { in a string"\n}\notherwise allow as O\n')
    module, diagnostics = parse(text, "t.sentra")
    assert module is not None and diagnostics == []
