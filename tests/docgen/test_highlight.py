"""The `sentra` and `sentra-test` lexers and TextMate grammars: keyword lists that are the
grammars' (read here from the `.lark` files themselves, the suite grammar's imports resolved by
Lark), no error tokens on real files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from lark import Lark
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.token import Error, Keyword, Name, Operator, String

from sentra_lang import keywords
from sentra_lang.checker import SETTINGS
from sentra_lang.compiler import compile_source
from sentra_lang.highlight import (
    SUITE_KEYWORDS,
    SentraLexer,
    SentraSuiteLexer,
    suite_textmate_grammar,
    textmate_files,
    textmate_grammar,
)
from sentra_lang.parser import grammar_keywords

ROOT = Path(__file__).resolve().parents[2]
POLICY_GRAMMAR = ROOT / "sentra_lang" / "grammar.lark"
SUITE_GRAMMAR = ROOT / "sentra_lang" / "testing" / "suite.lark"
SOURCES = sorted(p for p in (ROOT / "policies").rglob("*") if p.suffix in {".sentra", ".sentra-test"})
FENCE = re.compile(r"^(`{3,})sentra[^\n]*\n(.*?)^\1\s*$", re.MULTILINE | re.DOTALL)
LEXICAL_ERRORS = {"SL002", "SL003", "SL008"}  # examples of text the parser's lexer rejects too


def lark_keywords(path: Path) -> set[str]:
    """The words a Lark grammar reserves: quoted literals, and the alternatives of regular
    expression terminals written `/(a|b)(?![A-Za-z0-9_])/` (comments removed first)."""
    text = re.sub(r"//[^\n]*", "", path.read_text(encoding="utf-8"))
    words = set(re.findall(r'"([a-z_]+)"', text))
    for group in re.findall(r"/\(?([a-z_|]+)\)?\(\?!", text):
        words.update(group.split("|"))
    return words


def suite_grammar_keywords() -> set[str]:
    """The words the suite grammar reserves, its own and those of the policy grammar's rules it
    `%import`s (conditions): Lark resolves the imports, the compiled terminals are read with the
    rules of `lark_keywords`."""
    grammar = Lark(SUITE_GRAMMAR.read_text(encoding="utf-8"), parser="lalr",
                   import_paths=[str(POLICY_GRAMMAR.parent)])
    words: set[str] = set()
    for terminal in grammar.terminals:
        pattern = terminal.pattern.value
        if terminal.pattern.type == "str" and re.fullmatch(r"[a-z_]+", pattern):
            words.add(pattern)
        elif match := re.fullmatch(r"\(?([a-z_|]+)\)?\(\?!.*", pattern):
            words.update(match.group(1).split("|"))
    return words


POLICY_WORDS = lark_keywords(POLICY_GRAMMAR)
SUITE_WORDS = suite_grammar_keywords()
LEXERS = {"policy": (SentraLexer, POLICY_WORDS), "suite": (SentraSuiteLexer, SUITE_WORDS)}
GRAMMARS = {"policy": (textmate_grammar, POLICY_WORDS),
            "suite": (suite_textmate_grammar, SUITE_WORDS)}


def error_tokens(text: str, lexer: type = SentraLexer) -> list[str]:
    return [value for token, value in lexer().get_tokens(text) if token in Error]


def lexer_for(path: Path) -> type:
    return SentraSuiteLexer if path.suffix == ".sentra-test" else SentraLexer


def keyword_patterns(grammar: dict[str, object]) -> list[str]:
    repository = grammar["repository"]
    assert isinstance(repository, dict)
    return [pattern["match"] for pattern in repository["keywords"]["patterns"]]


# Suite words a policy does not reserve; `strikes` is also a policy setting (highlighted so)
SUITE_ONLY = SUITE_WORDS - POLICY_WORDS - set(SETTINGS)


def docs_blocks() -> list[tuple[str, str]]:
    blocks = []
    for path in sorted((ROOT / "docs").glob("*.md")):
        for number, match in enumerate(FENCE.finditer(path.read_text(encoding="utf-8"))):
            blocks.append((f"{path.name}#{number}", match.group(2)))
    return blocks


def test_keyword_lists_are_the_grammars() -> None:
    assert keywords.KEYWORDS == grammar_keywords() == POLICY_WORDS
    assert SUITE_KEYWORDS == SUITE_WORDS
    assert {"scenario", "agent", "allowed", "rule", "cumulative", "property", "never"} <= \
        SUITE_WORDS


def test_lexers_are_registered_under_their_names_and_extensions() -> None:
    assert isinstance(get_lexer_by_name("sentra"), SentraLexer)
    assert isinstance(get_lexer_by_name("sentra-test"), SentraSuiteLexer)
    assert isinstance(get_lexer_for_filename("policy.sentra"), SentraLexer)
    assert isinstance(get_lexer_for_filename("suite.sentra-test"), SentraSuiteLexer)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_no_error_tokens_in_policies_and_suites(path: Path) -> None:
    assert error_tokens(path.read_text(encoding="utf-8"), lexer_for(path)) == []


def test_no_error_tokens_in_docs_code_blocks() -> None:
    blocks = docs_blocks()
    assert blocks, "docs/*.md have sentra code blocks"
    for where, text in blocks:
        codes = {d.code for d in compile_source(text, "block.sentra").diagnostics}
        if codes & LEXICAL_ERRORS:
            continue
        assert error_tokens(text) == [], where


@pytest.mark.parametrize("kind", sorted(LEXERS))
def test_every_keyword_of_the_grammar_is_highlighted_by_its_lexer(kind: str) -> None:
    lexer, words = LEXERS[kind]
    for word in words:
        tokens = [t for t, v in lexer().get_tokens(f"{word} x") if v == word]
        assert tokens and (tokens[0] in Keyword or tokens[0] in Operator.Word), word


def test_suite_words_are_plain_names_in_a_policy() -> None:
    """`agent`, `state`, `status`, ... are ordinary field names in a policy."""
    assert {"agent", "state", "status", "with", "none"} <= SUITE_ONLY
    for word in SUITE_ONLY:
        tokens = [t for t, v in SentraLexer().get_tokens(f"when {word} allow") if v == word]
        assert tokens == [Name], word


def test_suite_structure_is_highlighted() -> None:
    tokens = list(SentraSuiteLexer().get_tokens(
        'scenario "s" {\n  agent "a" PAY { note: "{x}" } -> blocked rule BIG strikes 1\n}\n'))
    assert (Keyword.Declaration, "scenario") in tokens and (Keyword, "agent") in tokens
    assert (Keyword.Reserved, "blocked") in tokens and (Name.Label, "BIG") in tokens
    assert (Keyword, "strikes") in tokens and (Operator, "->") in tokens
    assert (String.Interpol, "{x}") not in tokens       # a suite's strings are literal text


def test_strings_show_interpolation_and_unterminated_strings_end_at_the_line() -> None:
    tokens = list(SentraLexer().get_tokens('"amount {amount} over"\n"open\nallow'))
    assert (String.Interpol, "{amount}") in tokens
    assert tokens[-2][1] == "allow"


def test_rule_ids_after_as_are_labels() -> None:
    tokens = list(SentraLexer().get_tokens("allow as ALLOW_ALL"))
    assert (Name.Label, "ALLOW_ALL") in tokens


def test_textmate_grammars_are_current() -> None:
    for path, text in textmate_files().items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path}: regenerate with `python -m sentra_lang.highlight`")
        assert json.loads(text)["scopeName"] in ("source.sentra", "source.sentra-test")


@pytest.mark.parametrize("kind", sorted(GRAMMARS))
def test_every_keyword_of_the_grammar_is_highlighted_by_its_textmate_grammar(kind: str) -> None:
    build, words = GRAMMARS[kind]
    patterns = keyword_patterns(build())
    for word in words:
        assert any(re.search(pattern, f" {word} x") for pattern in patterns), word


def test_the_policy_textmate_grammar_leaves_suite_words_alone() -> None:
    patterns = keyword_patterns(textmate_grammar())
    for word in SUITE_ONLY:
        assert not any(re.search(pattern, f" {word} ") for pattern in patterns), word


def test_the_agents_state_is_highlighted_as_built_in() -> None:
    from pygments.token import Name as PygName

    tokens = list(SentraLexer().get_tokens('when agent.cumulative_risk > 5 and agent.group == ""'))
    assert (PygName.Builtin.Pseudo, "agent.cumulative_risk") in tokens
    assert (PygName.Builtin.Pseudo, "agent.group") in tokens
    assert (PygName.Builtin.Pseudo, "agent.groupx") not in tokens


def test_review_its_expiry_and_timeout_are_highlighted() -> None:
    source = 'policy p {\n  review_timeout 1h\n}\naction A {\n  review as R "x" expires 2h\n}\n'
    tokens = [(t, v) for t, v in SentraLexer().get_tokens(source) if v.strip()]
    from pygments.token import Number
    assert (Name.Builtin, "review_timeout") in tokens
    assert (Keyword.Reserved, "review") in tokens and (Keyword, "expires") in tokens
    assert (Number.Integer, "1h") in tokens and (Number.Integer, "2h") in tokens
    patterns = keyword_patterns(textmate_grammar())
    for word in ("review", "expires"):
        assert any(re.search(pattern, f" {word} x") for pattern in patterns), word
