"""Numbers as other languages write them (`1e5`, `.5`, `0x1F`) are SL017 at the number, with its
exact decimal digits in the help, in policies and in scenario suites (docs/language.md,
"Numbers"; docs/diagnostics.md, SL017). Before, `1e5` was "unexpected `e5`" in a policy and
"unexpected `,`, expected `:`" after it in a suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentra_lang.diagnostics import Diagnostic
from sentra_lang.parser import parse
from sentra_lang.testing.suite_parser import parse_suite

POLICY = 'policy p version "1" {{}}\ninput {{ amount: number }}\naction PAY {{\n  when amount > {} block as BIG\n}}\notherwise allow as O\n'
SUITE = 'suite "s" for "p.sentra"\n\nscenario "one" {{\n  agent "a" PAY {{ amount: {} }} -> blocked\n}}\n'

FORMS = {"1e5": "100000", "2.5E-3": "0.0025", "1E+2": "100", "-1e3": "-1000", ".5": "0.5",
         "-.25": "-0.25", "5.": "5", "1_000": "1000", "0x1F": "31", "0b101": "5", "0o17": "15"}


def only(diagnostics: list[Diagnostic]) -> Diagnostic:
    assert len(diagnostics) == 1, [d.message for d in diagnostics]
    return diagnostics[0]


@pytest.mark.parametrize("written", FORMS)
def test_a_policy_number_in_another_form_is_sl017_with_its_digits(written: str) -> None:
    text = POLICY.format(written)
    found = only(parse(text, "p.sentra")[1])
    assert (found.code, found.message, found.help) == (
        "SL017", f"number `{written}` is not written in decimal digits",
        f"numbers are written in decimal digits: write `{FORMS[written]}`")
    assert (found.span.line, found.span.column) == (4, text.splitlines()[3].index(written) + 1)
    assert found.span.end_column - found.span.column == len(written)


@pytest.mark.parametrize("written", FORMS)
def test_a_suite_number_in_another_form_is_sl017_with_its_digits(written: str) -> None:
    text = SUITE.format(written)
    found = only(parse_suite(text, "s.sentra-test")[1])
    assert (found.code, found.help) == (
        "SL017", f"numbers are written in decimal digits: write `{FORMS[written]}`")
    assert (found.span.line, found.span.column) == (4, text.splitlines()[3].index(written) + 1)


@pytest.mark.parametrize("written", ["1e400", "1e-400", "1e999999999", "0b102"])
def test_a_number_too_long_in_digits_gets_the_general_help(written: str) -> None:
    """An exponent that would need more than 100 digits is not expanded (never a huge string)."""
    found = only(parse(POLICY.format(written), "p.sentra")[1])
    assert found.code == "SL017" and "at most 100" in (found.help or ""), found.help


def test_numbers_in_strings_and_comments_are_left_alone() -> None:
    text = ('policy p version "1" {}\ninput {\n  amount: number\n  note: string\n}\naction PAY {\n'
            '  when note == "1e5" block as TEXT  # 0x1F, .5\n  when amount > 1e5 block as BIG\n}\n'
            'otherwise allow as O\n')
    found = only(parse(text, "p.sentra")[1])
    assert (found.code, found.span.line, found.span.column) == ("SL017", 8, 17)


def test_each_number_is_reported_once_and_parsing_goes_on(tmp_path: Path) -> None:
    text = POLICY.format("1e5").replace("block as BIG", "block as BIG\n  when amount < .5 block as SMALL")
    found = parse(text, "p.sentra")[1]
    assert [(d.code, d.span.line) for d in found] == [("SL017", 4), ("SL017", 5)]
