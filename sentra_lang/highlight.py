"""Syntax highlighting for `.sentra` policies and `.sentra-test` suites: Pygments lexers and
TextMate grammars.

All four are built from keyword groups: the policy words in `keywords.py` (the list the grammar
is tested against) and the suite words below (tested against `testing/suite.lark`), so a new
keyword reaches the docs site and editors without a second edit. The lexers are registered
through the `pygments.lexers` entry point as `sentra` and `sentra-test`. `python -m
sentra_lang.highlight` writes the TextMate grammars to `sentra_lang/editors/` (package data) and,
in a source checkout, to the VS Code extension (`editors/vscode/syntaxes/`); a test checks that
every copy is current.

Suites have a lexer and a grammar of their own because their words (`agent`, `state`, `with`,
`status`, ...) are ordinary field names in a policy.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Whitespace,
)

from sentra_lang import keywords
from sentra_lang.keywords import NORMALIZATIONS, SETTINGS, SIMPLE_TYPES

TEXTMATE_PATH = Path(__file__).parent / "editors" / "sentra.tmLanguage.json"
SUITE_TEXTMATE_PATH = Path(__file__).parent / "editors" / "sentra-test.tmLanguage.json"
VSCODE_SYNTAXES = Path(__file__).resolve().parents[1] / "editors" / "vscode" / "syntaxes"
"""The VS Code extension's copies of the grammars (present in a source checkout only)."""

# Scenario suites: the words of `testing/suite.lark` beyond the condition words they share
# with policies (`keywords.OPERATOR_WORDS`, `keywords.CONSTANTS`).
SUITE_DECLARATIONS = ("suite", "for", "defaults", "scenario", "cases", "property")
SUITE_STEPS = ("agent", "reset", "state", "with", "tags", "examples", "where", "sequence",
               "after", "assign", "approve", "deny", "ticket", "last", "by", "note")
SUITE_DECISIONS = ("allowed", "blocked", "shutdown", "review")
SUITE_QUANTIFIERS = ("never", "always")
SUITE_CLAUSES = ("rule", "reason", "threat", "risk", "applied", "projected", "cumulative",
                 "strikes", "decayed", "status", "group", "as")
SUITE_CONSTANTS = ("none", "all")
SUITE_STATUSES = ("active", "shut_down")
"""The values of `status` (names to the grammar, constants to a reader)."""
SUITE_KEYWORDS: frozenset[str] = frozenset(
    SUITE_DECLARATIONS + SUITE_STEPS + SUITE_DECISIONS + SUITE_QUANTIFIERS + SUITE_CLAUSES
    + SUITE_CONSTANTS + keywords.OPERATOR_WORDS + keywords.CONSTANTS
)

_IDENT_END = r"(?![A-Za-z0-9_])"
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_COMPARE = r"==|!=|<=|>=|<|>"
_ARITHMETIC = r"[+*/-]"  # after the arrow `->` and after negative numbers such as `-5`
_ARROW = r"->"  # scenario suites: `agent "a" ACTION -> allowed`
_ESCAPE = r'\\(?:[\\"/bfnrt]|u[0-9A-Fa-f]{4})'
_INTERPOLATION = r"\{[A-Za-z_][A-Za-z0-9_.]*\}|\{\{|\}\}"
_DURATION = r"[0-9]+[A-Za-z_][A-Za-z0-9_]*"
"""A duration (`risk_decay 10 per 1h`, a suite's `after 30m`), or what the checker will call a
bad one (`1hr`): one token either way, as the parser reads it."""


def _words(group: tuple[str, ...]) -> Any:
    return words(sorted(group, key=len, reverse=True), suffix=_IDENT_END)


_LEXICAL = [
    (r"\s+", Whitespace),
    (r"#.*?$", Comment.Single),
    (r'"', String.Double, "string"),
    (r"-?[0-9]+\.[0-9]+" + _IDENT_END, Number.Float),
    (r"-?[0-9]+" + _IDENT_END, Number.Integer),
    (_DURATION + _IDENT_END, Number.Integer),
]
_STRING = [
    (r'"', String.Double, "#pop"),
    (_ESCAPE, String.Escape),
    (_INTERPOLATION, String.Interpol),
    (r'[^"\\{}\n]+', String.Double),
    (r"[{}\\]", String.Double),
    (r"\n", String.Double, "#pop"),
]
_SUITE_STRING = [rule for rule in _STRING if rule[0] != _INTERPOLATION]
"""A suite's strings are the text a decision carries: `{x}` in them is literal."""
AGENT_STATE = r"\bagent\.(?:group|cumulative_risk|blocked_attempts)\b"
"""The agent's own state as conditions read it (`sentra_runtime.policy.STATE_FIELDS`)."""

_NAMES_AND_OPERATORS = [
    (_NAME, Name),
    (_ARROW + "|" + _COMPARE + r"|[=?]|" + _ARITHMETIC, Operator),
    (r"[{}()\[\],:.;]", Punctuation),
]


class SentraLexer(RegexLexer):  # type: ignore[misc]
    """Pygments lexer for sentra policies."""

    name = "Sentra"
    aliases: ClassVar[list[str]] = ["sentra"]
    filenames: ClassVar[list[str]] = ["*.sentra"]
    mimetypes: ClassVar[list[str]] = ["text/x-sentra"]
    url = "https://github.com/sentra-lang/sentra-lang"

    tokens: ClassVar[dict[str, Any]] = {
        "root": [
            *_LEXICAL,
            (words(("action",), suffix=_IDENT_END), Keyword.Declaration, "action-names"),
            (AGENT_STATE, Name.Builtin.Pseudo),
            (r"(as)(\s+)(" + _NAME + ")", bygroups(Keyword, Whitespace, Name.Label)),
            (_words(keywords.DECLARATIONS), Keyword.Declaration),
            (_words(keywords.OUTCOMES), Keyword.Reserved),
            (_words(keywords.OPERATOR_WORDS), Operator.Word),
            (_words(keywords.CONSTANTS), Keyword.Constant),
            (_words(keywords.CLAUSES + keywords.TYPE_WORDS + keywords.RATE_WORDS), Keyword),
            (_words(SIMPLE_TYPES), Keyword.Type),
            (_words(NORMALIZATIONS + SETTINGS), Name.Builtin),
            *_NAMES_AND_OPERATORS,
        ],
        "action-names": [
            (r"\s+", Whitespace),
            (r",", Punctuation),
            (r'"(?:[^"\\\n]|\\.)*"', Name.Class),
            (_NAME, Name.Class),
            (r"", Whitespace, "#pop"),
        ],
        "string": _STRING,
    }


class SentraSuiteLexer(RegexLexer):  # type: ignore[misc]
    """Pygments lexer for sentra scenario suites (`.sentra-test`)."""

    name = "Sentra suite"
    aliases: ClassVar[list[str]] = ["sentra-test"]
    filenames: ClassVar[list[str]] = ["*.sentra-test"]
    mimetypes: ClassVar[list[str]] = ["text/x-sentra-test"]
    url = "https://github.com/sentra-lang/sentra-lang"

    tokens: ClassVar[dict[str, Any]] = {
        "root": [
            *_LEXICAL,
            (r"(rule)(\s+)(" + _NAME + ")", bygroups(Keyword, Whitespace, Name.Label)),
            (_words(SUITE_DECLARATIONS), Keyword.Declaration),
            (_words(SUITE_DECISIONS + SUITE_QUANTIFIERS), Keyword.Reserved),
            (_words(keywords.OPERATOR_WORDS), Operator.Word),
            (_words(keywords.CONSTANTS + SUITE_CONSTANTS + SUITE_STATUSES), Keyword.Constant),
            (_words(SUITE_STEPS + SUITE_CLAUSES), Keyword),
            *_NAMES_AND_OPERATORS,
        ],
        "string": _SUITE_STRING,
    }


# ------------------------------------------------------------------------- TextMate grammar

def _alternation(group: tuple[str, ...]) -> str:
    return r"\b(?:" + "|".join(re.escape(w) for w in sorted(group, key=len, reverse=True)) + r")\b"


def _keyword_patterns(groups: list[tuple[str, tuple[str, ...]]]) -> dict[str, Any]:
    return {"patterns": [{"name": scope, "match": _alternation(group)} for scope, group in groups]}


def _grammar(name: str, scope: str, file_type: str, label: str, strings: dict[str, Any],
             keyword_groups: list[tuple[str, tuple[str, ...]]]) -> dict[str, Any]:
    """A TextMate grammar: comments, strings, numbers, `LABEL NAME` ids, keywords, operators."""
    suffix = "." + scope.removeprefix("source.")
    return {
        "$schema": "https://raw.githubusercontent.com/martinring/tmlanguage/master/tmlanguage.json",
        "name": name,
        "scopeName": scope,
        "fileTypes": [file_type],
        "comment": "Generated by `python -m sentra_lang.highlight` from its keyword groups.",
        "patterns": [
            {"include": "#comment"},
            {"include": "#string"},
            {"include": "#number"},
            {"include": "#rule-id"},
            {"include": "#agent-state"},
            {"include": "#keywords"},
            {"include": "#operator"},
        ],
        "repository": {
            "comment": {"name": "comment.line.number-sign" + suffix, "match": "#.*$"},
            "string": {"name": "string.quoted.double" + suffix, "begin": '"', "end": '"|$',
                       **strings},
            "number": {"name": "constant.numeric" + suffix,
                       "match": r"-?\b(?:[0-9]+(?:\.[0-9]+)?|" + _DURATION + r")\b"},
            "rule-id": {
                "match": r"\b(" + label + r")\s+(" + _NAME + r")\b",
                "captures": {"1": {"name": "keyword.other" + suffix},
                             "2": {"name": "entity.name.label" + suffix}},
            },
            "agent-state": {"name": "variable.language.agent-state" + suffix,
                            "match": AGENT_STATE},
            "keywords": _keyword_patterns([(scope_name + suffix, group)
                                           for scope_name, group in keyword_groups]),
            "operator": {"name": "keyword.operator.comparison" + suffix,
                         "match": _ARROW + "|" + _COMPARE + r"|[=?]|" + _ARITHMETIC},
        },
    }


def textmate_grammar() -> dict[str, Any]:
    """The policy grammar (VS Code, Sublime, GitHub linguist), from the keyword groups."""
    strings = {"patterns": [
        {"name": "constant.character.escape.sentra", "match": _ESCAPE},
        {"name": "variable.other.interpolation.sentra", "match": _INTERPOLATION},
    ]}
    return _grammar("Sentra", "source.sentra", "sentra", "as", strings, [
        ("storage.type.declaration", keywords.DECLARATIONS),
        ("keyword.control.outcome", keywords.OUTCOMES),
        ("keyword.operator.word", keywords.OPERATOR_WORDS),
        ("constant.language.boolean", keywords.CONSTANTS),
        ("keyword.other", keywords.CLAUSES + keywords.TYPE_WORDS + keywords.RATE_WORDS),
        ("storage.type", SIMPLE_TYPES),
        ("support.function.builtin", NORMALIZATIONS + SETTINGS),
    ])


def suite_textmate_grammar() -> dict[str, Any]:
    """The scenario-suite grammar (`.sentra-test`)."""
    strings = {"patterns": [{"name": "constant.character.escape.sentra-test", "match": _ESCAPE}]}
    return _grammar("Sentra suite", "source.sentra-test", "sentra-test", "rule", strings, [
        ("storage.type.declaration", SUITE_DECLARATIONS),
        ("keyword.control.decision", SUITE_DECISIONS + SUITE_QUANTIFIERS),
        ("keyword.operator.word", keywords.OPERATOR_WORDS),
        ("constant.language", keywords.CONSTANTS + SUITE_CONSTANTS + SUITE_STATUSES),
        ("keyword.other", SUITE_STEPS + SUITE_CLAUSES),
    ])


def _json(grammar: dict[str, Any]) -> str:
    return json.dumps(grammar, indent=2, sort_keys=True) + "\n"


def textmate_json() -> str:
    """The policy grammar file's exact text (sorted keys, two-space indent, trailing newline)."""
    return _json(textmate_grammar())


def suite_textmate_json() -> str:
    return _json(suite_textmate_grammar())


def textmate_files() -> dict[Path, str]:
    """Every grammar file and the text it must hold: package data, and the VS Code copies when
    the extension folder is there (a source checkout)."""
    files = {TEXTMATE_PATH: textmate_json(), SUITE_TEXTMATE_PATH: suite_textmate_json()}
    if VSCODE_SYNTAXES.parent.is_dir():
        files[VSCODE_SYNTAXES / TEXTMATE_PATH.name] = textmate_json()
        files[VSCODE_SYNTAXES / SUITE_TEXTMATE_PATH.name] = suite_textmate_json()
    return files


def write_textmate_grammars() -> list[Path]:
    written = []
    for path, text in textmate_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_textmate_grammars():
        print(written_path)
