"""Completion: what may be typed at a position, from the tokens before it.

The text before the cursor is read with a small tokenizer (strings, comments, names,
punctuation) rather than the parser, because the file being typed rarely parses. The names
offered come from the last index of the policy (the document's own, or a suite's policy).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sentra_runtime.policy import STATE_FIELDS

from sentra_lang import ast, keywords
from sentra_lang.highlight import (
    SUITE_CLAUSES,
    SUITE_DECISIONS,
    SUITE_QUANTIFIERS,
    SUITE_STATUSES,
)
from sentra_lang.keywords import NORMALIZATIONS, SETTINGS, SIMPLE_TYPES
from sentra_lang.lsp.hover import RUNTIME_RULES, rule_risk
from sentra_lang.lsp.symbols import PolicyIndex, field_type
from sentra_lang.lsp.text import Word, word_before

KEYWORD, FIELD, LET, RULE, ACTION, VALUE = "keyword", "field", "let", "rule", "action", "value"

_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*("?)|#[^\n]*|[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]*)*'
                    r"|-?[0-9]+(?:\.[0-9]+)?|->|==|!=|<=|>=|\S")
_STRING_TOKEN = "<string>"
_NUMBER_TOKEN = "<number>"
_OPEN_INTERPOLATION = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_.]*)?\Z")

_SUITE_TOP = ("defaults", "scenario", "cases", "property")
_SCENARIO_BODY = ("agent", "reset", "state", "defaults")
_CASES_BODY = ("agent", "with", "defaults")
_CONDITION_WORDS = ("and", "or", "not", "in", "exists", "starts_with", "ends_with", "contains",
                    "true", "false")


@dataclass(frozen=True)
class Candidate:
    """One completion: the text to insert, what it is, and a short detail."""

    label: str
    kind: str
    detail: str = ""


@dataclass(frozen=True)
class Completions:
    """The candidates, and the start of the text they replace (the cursor is the end)."""

    start: int
    items: list[Candidate]


def complete(text: str, offset: int, index: PolicyIndex | None, *, suite: bool) -> Completions:
    """What may be typed at `offset` of a policy (or, `suite`, a suite) file."""
    offset = max(0, min(offset, len(text)))
    tokens, open_string = _tokens_before(text, offset)
    index = index or PolicyIndex()
    if open_string is not None:
        return Completions(offset, []) if suite else _in_string(open_string, offset, index)
    if tokens and tokens[-1] == "#":
        return Completions(offset, [])
    word = word_before(text, offset)
    if word.start < offset and tokens and tokens[-1] == word.prefix:
        tokens = tokens[:-1]
    if "." in word.prefix:
        return _field_segments(word, index)
    found = (_suite_candidates if suite else _policy_candidates)(tokens, index)
    return Completions(word.start, list(dict.fromkeys(found)))


def _tokens_before(text: str, offset: int) -> tuple[list[str], str | None]:
    """Significant tokens before `offset` (strings and numbers as placeholders, comments as
    `#` only when the cursor is in one), and the string the cursor is inside, if any."""
    tokens: list[str] = []
    for match in _TOKEN.finditer(text, 0, offset):
        token = match.group(0)
        if token.startswith('"'):
            if not match.group(1) and match.end() == offset:
                return tokens, token[1:]
            tokens.append(_STRING_TOKEN)
        elif token.startswith("#"):
            if match.end() == offset:
                tokens.append("#")
        elif token[0].isdigit() or (token[0] == "-" and len(token) > 1 and token != "->"):
            tokens.append(_NUMBER_TOKEN)
        else:
            tokens.append(token)
    return tokens, None


def _in_string(content: str, offset: int, index: PolicyIndex) -> Completions:
    """Inside a string only a reason's `{field}` completes."""
    match = _OPEN_INTERPOLATION.search(content)
    if match is None:
        return Completions(offset, [])
    return Completions(offset - len(match.group(1) or ""), _fields(index))


def _field_segments(word: Word, index: PolicyIndex) -> Completions:
    """After `context.`: the rest of every declared field under that prefix (after `agent.`:
    the agent's state, which conditions may read)."""
    head = word.prefix.rpartition(".")[0] + "."
    found = [Candidate(name[len(head):], FIELD, _type_text(decl))
             for name, decl in index.fields.items() if name.startswith(head)]
    found += [Candidate(c.label[len(head):], c.kind, c.detail) for c in _AGENT_STATE
              if c.label.startswith(head)]
    return Completions(word.start + len(head), found)


_AGENT_STATE = [Candidate(spec.name, FIELD, f"{spec.type}: the agent's state before the decision")
                for spec in STATE_FIELDS]
"""The agent's state as conditions read it (docs/language.md, "Agent state in conditions")."""


# ------------------------------------------------------------------------------- policies

def _policy_candidates(tokens: list[str], index: PolicyIndex) -> Iterator[Candidate]:
    previous = tokens[-1] if tokens else ""
    block = _open_block(tokens)
    if previous in ("as", "risk", "version", "threat", "description", "import", "let"):
        return
    if _in_normalize_list(tokens):
        yield from _words(NORMALIZATIONS, VALUE, "normalisation")
    elif block == "input":
        if previous == ":":
            yield from _words(SIMPLE_TYPES + ("enum", "set"), KEYWORD, "type")
        elif previous in ("?", _STRING_TOKEN, _NUMBER_TOKEN, "}", ">") or previous in SIMPLE_TYPES:
            yield from _words(("normalize",), KEYWORD)
    elif block == "policy":
        if previous in ("{", _STRING_TOKEN, _NUMBER_TOKEN) or previous in NORMALIZATIONS:
            yield from _words(SETTINGS, KEYWORD, "setting")
    elif previous == "in":
        yield from _lets(index, sets=True)
    elif block == "set":
        return
    else:
        yield from _fields(index)
        yield from _AGENT_STATE
        yield from _lets(index, sets=False)
        yield from _words(sorted(keywords.KEYWORDS), KEYWORD)


def _innermost_open(tokens: list[str]) -> int | None:
    """The position of the innermost `{` not yet closed (None at the top level)."""
    depth = 0
    for position in range(len(tokens) - 1, -1, -1):
        if tokens[position] == "}":
            depth += 1
        elif tokens[position] == "{":
            if depth == 0:
                return position
            depth -= 1
    return None


def _open_block(tokens: list[str]) -> str:
    """What the innermost open `{` belongs to: input, policy, action, set, or "" (top level)."""
    position = _innermost_open(tokens)
    return "" if position is None else _block_head(tokens[:position])


def _block_head(before: list[str]) -> str:
    for token in reversed(before[-12:]):
        if token in ("input", "policy", "action"):
            return token
        if token in ("=", "in", "enum"):
            return "set"
    return "action"


def _in_normalize_list(tokens: list[str]) -> bool:
    """After `normalize`, or after `normalize lower,` (a step list and a comma)."""
    position = len(tokens) - 1
    while position >= 1 and tokens[position] == "," and tokens[position - 1] in NORMALIZATIONS:
        position -= 2
    return position >= 0 and tokens[position] == "normalize"


# --------------------------------------------------------------------------------- suites

def _suite_candidates(tokens: list[str], index: PolicyIndex) -> Iterator[Candidate]:
    previous = tokens[-1] if tokens else ""
    statement = _statement(tokens)
    if previous == "rule":
        yield from _rules(index)
    elif previous == "status":
        yield from _words(SUITE_STATUSES, VALUE, "status")
    elif previous in ("tags", "reason", "threat", "for", "suite", "examples", "reset", ":"):
        return
    elif previous == "->" and statement == "property":
        yield from _words(SUITE_QUANTIFIERS, KEYWORD)
    elif previous in SUITE_QUANTIFIERS:
        yield from _words(SUITE_DECISIONS + ("rule",), KEYWORD)
    elif "->" in _since(tokens, statement):
        yield from _expectation(previous, statement)
    elif _expects_action(tokens, statement):
        yield from _actions(index)
    elif statement in ("with", "where") or _in_field_map(tokens):
        yield from _fields(index)
        if statement == "where":
            yield from _lets(index, sets=previous == "in")
            yield from _words(_CONDITION_WORDS, KEYWORD)
    else:
        yield from _words(_body_words(tokens), KEYWORD)


_STATEMENTS = ("suite", "defaults", "scenario", "cases", "property", "agent", "reset", "state",
               "with", "where")


def _statement(tokens: list[str]) -> str:
    """The keyword that starts the statement the cursor is in ("" when none does)."""
    for token in reversed(tokens):
        if token in _STATEMENTS:
            return token
        if token in ("{", "}"):
            return ""
    return ""


def _since(tokens: list[str], statement: str) -> list[str]:
    """The tokens from the statement's keyword (or the last brace) on."""
    for position in range(len(tokens) - 1, -1, -1):
        if tokens[position] in ("{", "}") or (statement and tokens[position] == statement):
            return tokens[position:]
    return tokens


def _expectation(previous: str, statement: str) -> Iterator[Candidate]:
    """After `->`: a decision (a `state` check has none), then clauses, then the next step."""
    if previous == "->" and statement != "state":
        yield from _words(SUITE_DECISIONS, KEYWORD, "decision")
        return
    if previous in SUITE_CLAUSES:
        return
    yield from _words(SUITE_CLAUSES, KEYWORD, "expectation")
    yield from _words(_SCENARIO_BODY, KEYWORD)


def _expects_action(tokens: list[str], statement: str) -> bool:
    """After `agent "ID"`, `cases "NAME"`, `property "NAME" [sequence]` and their commas."""
    tail = _since(tokens, statement)
    if statement in ("agent", "cases"):
        return len(tail) == 2
    if statement == "property":
        return len(tail) >= 2 and "where" not in tail and "->" not in tail and \
            tail[-1] in (_STRING_TOKEN, "sequence", ",")
    return False


def _in_field_map(tokens: list[str]) -> bool:
    """Inside the `{ ... }` of `defaults` or of a step (`agent "ID" ACTION {`)."""
    position = _innermost_open(tokens)
    if position is None:
        return False
    before = tokens[max(0, position - 3):position]
    return before[-1:] == ["defaults"] or before[:1] == ["agent"]


def _body_words(tokens: list[str]) -> tuple[str, ...]:
    """The statements that may start here: in a scenario's or cases' body, or at the top."""
    position = _innermost_open(tokens)
    if position is None:
        return _SUITE_TOP if tokens else ("suite",)
    return _CASES_BODY if _statement(tokens[:position]) == "cases" else _SCENARIO_BODY


def _rules(index: PolicyIndex) -> Iterator[Candidate]:
    for rule in index.rules:
        if rule.id is not None:
            risk = rule_risk(rule.outcome)
            yield Candidate(rule.id, RULE, rule.outcome.kind + (f", risk {risk}" if risk else ""))
    for rule_id in sorted(RUNTIME_RULES):
        yield Candidate(rule_id, RULE, "runtime")


def _actions(index: PolicyIndex) -> Iterator[Candidate]:
    for action in index.actions.values():
        yield Candidate(action.name, ACTION, "action")


# ----------------------------------------------------------------------------- candidates

def _words(words: Iterable[str], kind: str, detail: str = "") -> Iterator[Candidate]:
    for word in words:
        yield Candidate(word, kind, detail)


def _fields(index: PolicyIndex) -> list[Candidate]:
    return [Candidate(name, FIELD, _type_text(decl)) for name, decl in index.fields.items()]


def _lets(index: PolicyIndex, *, sets: bool) -> Iterator[Candidate]:
    for name, let in index.lets.items():
        if isinstance(let.value, ast.SetLit) == sets:
            yield Candidate(name, LET, "set" if sets else "condition")


def _type_text(decl: ast.FieldDecl) -> str:
    return field_type(decl) + ("?" if decl.optional else "")
