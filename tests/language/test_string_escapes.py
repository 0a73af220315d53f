"""Strings take JSON's escapes (docs/language.md, "Strings"; docs/diagnostics.md, SL008): any
JSON string is a string of the language, so `replay --to-suite` can write any recorded value,
and `sentra-lang fmt` writes every string so that it reads back as the same text, with what a
terminal would act on or hide written as an escape."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentra_lang.compiler import compile_source
from sentra_lang.formatter import format_source, format_string
from sentra_lang.parser import parse

POLICY = 'policy p version "1" {{\n  description {}\n}}\n\notherwise allow as OTHER\n'


def value_of(literal: str) -> str:
    """The description a policy with this string literal compiles to (no diagnostic
    allowed; a description interpolates nothing)."""
    compiled = compile_source(POLICY.format(literal), "p.sentra", analyse=False)
    assert compiled.table is not None and not compiled.diagnostics, compiled.diagnostics
    description: str = compiled.table.model_dump(mode="json")["policy"]["description"]
    return description


def refusal(literal: str) -> str:
    """The first diagnostic's message (each bad escape has one: SL008, the escapes listed)."""
    _, diagnostics = parse(POLICY.format(literal), "p.sentra")
    assert diagnostics and all(problem.code == "SL008" and "JSON's escapes" in (problem.help or "")
                               for problem in diagnostics), diagnostics
    return diagnostics[0].message


@pytest.mark.parametrize("literal, value", [
    (r'"tab\there"', "tab\there"), (r'"a\\b"', "a\\b"), (r'"say \"hi\""', 'say "hi"'),
    (r'"\/"', "/"), (r'"\b\f\r\n"', "\b\f\r\n"), (r'"\u0041\u00e9"', "Aé"),
    (r'"nul \u0000 here"', "nul \x00 here"), (r'"\uD83D\uDE00"', "\U0001F600"),
    (r'"\u202e"', "\u202e"),
])
def test_each_escape_reads_as_documented(literal: str, value: str) -> None:
    assert value_of(literal) == value


@pytest.mark.parametrize("literal, message", [
    (r'"\q"', "invalid escape `\\q` in string"),
    (r'"\u12"', "invalid escape `\\u12` in string"),
    (r'"\uzz00"', "invalid escape `\\u` in string"),
    (r'"\ud800"', "invalid escape `\\ud800` in string: half of a surrogate pair"),
    (r'"\udc00\ud800"', "invalid escape `\\udc00` in string: half of a surrogate pair"),
])
def test_a_bad_escape_is_sl008_with_the_escapes_listed(literal: str, message: str) -> None:
    assert refusal(literal) == message


@given(st.text(max_size=40))
def test_any_json_string_is_a_string_of_the_language(text: str) -> None:
    assert value_of(json.dumps(text)) == text                       # ASCII, \u escapes
    assert value_of(json.dumps(text, ensure_ascii=False)) == text   # as replay writes it


@given(st.text(max_size=40))
def test_a_formatted_string_reads_back_as_itself_and_shows_what_it_holds(text: str) -> None:
    literal = format_string(text)
    assert value_of(literal) == text
    assert not any(ord(char) < 0x20 or 0x7f <= ord(char) <= 0x9f
                   or char in "\u200b\u202e\u2066\ufeff" for char in literal), repr(literal)
    formatted, _ = format_source(POLICY.format(literal))
    assert formatted is not None and literal in formatted


def test_fmt_writes_a_hidden_character_as_an_escape() -> None:
    formatted, _ = format_source(POLICY.format('"pay \u202eevil"'))
    assert formatted is not None and '"pay \\u202eevil"' in formatted
