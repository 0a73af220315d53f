"""The `sentra` lexer and TextMate grammar: one keyword list, no error tokens on real files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.token import Error, Keyword, Name, Operator, String

from sentra_lang import keywords
from sentra_lang.compiler import compile_source
from sentra_lang.highlight import TEXTMATE_PATH, SentraLexer, textmate_json
from sentra_lang.parser import grammar_keywords

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(p for p in (ROOT / "policies").rglob("*") if p.suffix in {".sentra", ".sentra-test"})
FENCE = re.compile(r"^(`{3,})sentra[^\n]*\n(.*?)^\1\s*$", re.MULTILINE | re.DOTALL)
LEXICAL_ERRORS = {"SL002", "SL003", "SL008"}  # examples of text the parser's lexer rejects too


def error_tokens(text: str) -> list[str]:
    return [value for token, value in SentraLexer().get_tokens(text) if token in Error]


def docs_blocks() -> list[tuple[str, str]]:
    blocks = []
    for path in sorted((ROOT / "docs").glob("*.md")):
        for number, match in enumerate(FENCE.finditer(path.read_text(encoding="utf-8"))):
            blocks.append((f"{path.name}#{number}", match.group(2)))
    return blocks


def test_keyword_list_is_the_grammars() -> None:
    assert keywords.KEYWORDS == grammar_keywords()


def test_lexer_is_registered_under_its_name_and_extensions() -> None:
    assert isinstance(get_lexer_by_name("sentra"), SentraLexer)
    assert isinstance(get_lexer_for_filename("suite.sentra-test"), SentraLexer)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_no_error_tokens_in_policies(path: Path) -> None:
    assert error_tokens(path.read_text(encoding="utf-8")) == []


def test_no_error_tokens_in_docs_code_blocks() -> None:
    blocks = docs_blocks()
    assert blocks, "docs/*.md have sentra code blocks"
    for where, text in blocks:
        codes = {d.code for d in compile_source(text, "block.sentra").diagnostics}
        if codes & LEXICAL_ERRORS:
            continue
        assert error_tokens(text) == [], where


def test_every_keyword_is_highlighted_as_a_keyword() -> None:
    for word in keywords.KEYWORDS:
        tokens = [t for t, v in SentraLexer().get_tokens(f"{word} x") if v == word]
        assert tokens and (tokens[0] in Keyword or tokens[0] in Operator.Word), word


def test_strings_show_interpolation_and_unterminated_strings_end_at_the_line() -> None:
    tokens = list(SentraLexer().get_tokens('"amount {amount} over"\n"open\nallow'))
    assert (String.Interpol, "{amount}") in tokens
    assert tokens[-2][1] == "allow"


def test_rule_ids_after_as_are_labels() -> None:
    tokens = list(SentraLexer().get_tokens("allow as ALLOW_ALL"))
    assert (Name.Label, "ALLOW_ALL") in tokens


def test_textmate_grammar_is_current() -> None:
    assert TEXTMATE_PATH.read_text(encoding="utf-8") == textmate_json(), (
        "regenerate with `python -m sentra_lang.highlight`")


def test_textmate_grammar_knows_every_keyword() -> None:
    grammar = json.loads(textmate_json())
    assert grammar["scopeName"] == "source.sentra"
    patterns = [p["match"] for p in grammar["repository"]["keywords"]["patterns"]]
    for word in keywords.KEYWORDS:
        assert any(re.search(pattern, f" {word} ") for pattern in patterns), word
