"""Parse `.sentra-test` text into the suite AST, with the policy parser's diagnostics.

Conditions (`property ... where`), strings, numbers, names and comments are the policy
grammar's: `suite.lark` imports its rules and terminals, the fast path below parses a condition
with the policy grammar itself and builds its tokens from the same terminals, and both use the
policy builder. So a suite says `destination_type == "external"` exactly as a policy does, and
the grammar of a condition is written once.

Two parsers accept the same language and build the same nodes (spans included):

- a hand-written fast path (`_FastParser`: one regular expression for tokens, recursive descent,
  nodes built directly), used first. Suites can be large (`replay --to-suite` of a long log), and
  Lark's LALR parser with positions costs about 30 us a token where this costs about 5 us
  (`docs/benchmarks.md`).
- the Lark grammar `suite.lark` and `_SuiteBuilder`, the reference. The fast path gives up on
  anything it is not sure of (a syntax error, a keyword where a name could be meant, a character
  it does not know) and the whole file is then parsed by Lark, which also writes the syntax
  diagnostics. `tests/testing/test_suite_parser.py` checks that both agree, and that giving up
  always ends in a parse or a diagnostic, never an exception.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from functools import lru_cache
from importlib import resources

from lark import Lark, Token
from lark.load_grammar import FromPackageLoader

from sentra_lang import ast
from sentra_lang import parser as policy_parser
from sentra_lang.diagnostics import Diagnostic, diagnostic
from sentra_lang.parser import (
    TreeBuilder,
    bidirectional_controls,
    deepest,
    only_comments,
    parse_condition,
)
from sentra_lang.recovery import Node, Syntax, parse_recovering
from sentra_lang.source import Source, Span
from sentra_lang.testing import suite_ast as s

_TERMINAL_WORDS = {
    "NAME": "a name",
    "STRING": "a string",
    "NUMBER": "a number",
    "BOOLEAN": "`true` or `false`",
    "DECISION": "a decision (`allowed`, `blocked`, `shutdown` or `review`)",
    "VERDICT": "`approve` or `deny`",
    "NUMBER_KEY": "`risk`, `applied`, `projected`, `cumulative`, `strikes` or `decayed`",
    "DURATION": "a duration (`30m`, `1h`, `7d`)",
    "QUANTIFIER": "`never` or `always`",
    "COMPARE": "a comparison (`==`, `!=`, `<`, `<=`, `>`, `>=`)",
    "STRING_TEST": "`starts_with`, `ends_with` or `contains`",
    "CONTAINS": "`contains`",
    "SEQUENCE": "`sequence`",
    "NONE": "`none`",
    "ALL": "`all`",
    "NOT": "`not`",
    "$END": "end of file",
}
TOP_LEVEL_WORDS = frozenset({"suite", "scenario", "cases", "property"})
DEFAULT_AGENT = "agent"
MAX_LIST_NESTING = 32
"""The deepest a suite value nests lists (docs/language.md, "Limits")."""
_LISTS = frozenset({"list_value"})


@lru_cache(maxsize=1)
def _lark() -> Lark:
    grammar = resources.files("sentra_lang.testing").joinpath("suite.lark").read_text("utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False,
                import_paths=[FromPackageLoader("sentra_lang", ("",))])


def suite_syntax() -> Syntax:
    return Syntax(_lark(), _TERMINAL_WORDS, TOP_LEVEL_WORDS)


def parse_suite(text: str, path: str = "<string>") -> tuple[s.Suite | None, list[Diagnostic]]:
    """Parse suite text: the suite (None on a syntax error) and the diagnostics. Never raises."""
    source = Source(path, text)
    text = source.text
    if not text.strip() or only_comments(text):
        span = Span.of_offsets(source, 0, len(text.rstrip("\n")))
        return None, [diagnostic("SL007", "file is empty: it declares nothing", span,
                                 help='a suite starts with `suite "NAME" for "POLICY.sentra"`')]
    suite: s.Suite | None
    try:
        fast = _FastParser(source)
        suite, diagnostics = fast.suite(), fast.builder.diagnostics
    except _GiveUp:
        suite, diagnostics = _parse_with_lark(source)
    return suite, diagnostics + (bidirectional_controls(source) if suite is not None else [])


def _parse_with_lark(source: Source) -> tuple[s.Suite | None, list[Diagnostic]]:
    """The reference parser: Lark's LALR parser and the tree-to-AST builder."""
    tree, errors = parse_recovering(source, suite_syntax())
    if errors:
        return None, errors
    builder = _SuiteBuilder(source)
    too_deep = builder.too_deep(tree) or builder.lists_too_deep(tree)
    if too_deep:
        return None, too_deep
    suite = builder.suite(tree)
    return suite, builder.diagnostics


class _SuiteBuilder(TreeBuilder):
    """Builds suite nodes; conditions, strings and literals come from the policy builder."""

    def lists_too_deep(self, tree: Node) -> list[Diagnostic]:
        """SL013 for the first value nesting lists more than `MAX_LIST_NESTING` deep."""
        node = deepest(tree, _LISTS, MAX_LIST_NESTING)
        return [] if node is None else [_lists_too_deep(self.span(node))]

    def suite(self, tree: Node) -> s.Suite:
        decl = tree.children[0]
        name = self.string(decl.children[0])
        policy = self.string(decl.children[1])
        defaults: list[s.FieldValue] = []
        items: list[s.Item] = []
        for child in tree.children[1:]:
            if child.data == "defaults":
                defaults.extend(self.field_map(child.children[0]))
            else:
                items.append(getattr(self, f"item_{child.data}")(child))
        return s.Suite(name.value, policy.value, policy.span, tuple(defaults), tuple(items),
                       self.source, self.span(tree))

    # -- values
    def field_map(self, tree: Node) -> list[s.FieldValue]:
        entries = []
        for entry in tree.children:
            path = self.path(entry.children[0])
            entries.append(s.FieldValue(path.dotted, path.span, self.value(entry.children[1]),
                                        self.span(entry)))
        return entries

    def value(self, tree: Node) -> s.Value:
        span = self.span(tree)
        if tree.data == "none_value":
            return s.Value(None, span, omitted=True)
        if tree.data == "list_value":
            return s.Value([self.value(c).value for c in tree.children], span)
        return s.Value(self.literal(tree).value, span)

    def tags(self, tree: Node | None) -> tuple[str, ...]:
        return tuple(str(t) for t in tree.children) if tree is not None else ()

    def action(self, tree: Node) -> tuple[str, Span, bool]:
        token = tree.children[0]
        if isinstance(token, Token):
            return str(token), self.span(token), False
        string = self.string(token)
        return string.value, string.span, True

    def expectation(self, children: list[Node], span: Span) -> s.Expectation:
        clauses = []
        for child in children:
            if isinstance(child, Token):  # the DECISION word
                clauses.append(s.Clause("decision", str(child), self.span(child)))
                continue
            cspan = self.span(child)
            if child.data == "exp_rule":
                clauses.append(s.Clause("rule", str(child.children[0]), cspan))
            elif child.data == "exp_reason":
                kind = "reason_contains" if len(child.children) == 2 else "reason"
                clauses.append(s.Clause(kind, self.string(child.children[-1]).value, cspan))
            elif child.data == "exp_threat":
                value = child.children[0]
                threat = None if isinstance(value, Token) else self.string(value).value
                clauses.append(s.Clause("threat", threat, cspan))
            elif child.data == "exp_number":
                number = self.literal(child.children[1]).value
                clauses.append(s.Clause(str(child.children[0]), number, cspan))
            elif child.data == "exp_status":
                clauses.append(s.Clause("status", str(child.children[0]), cspan))
            elif child.data == "exp_group":
                clauses.append(s.Clause("group", self.string(child.children[0]).value, cspan))
            elif child.data == "exp_ticket":
                clauses.append(s.Clause("ticket", str(child.children[0]), cspan))
        return s.Expectation(tuple(clauses), span)

    def ticket_ref(self, tree: Node) -> s.TicketRef:
        if tree.data == "last_ticket":
            return s.TicketRef(self.string(tree.children[0]).value, None, self.span(tree))
        return s.TicketRef(None, str(tree.children[0]), self.span(tree))

    def verdict(self, tree: Node) -> s.VerdictStep:
        word, ref, operator, *rest = tree.children
        note = self.string(rest[0]).value if rest and rest[0].data == "string" else None
        expect = self.expect(rest[-1]) if rest and rest[-1].data == "expect" else None
        return s.VerdictStep(str(word) == "approve", self.ticket_ref(ref),
                             self.string(operator).value, note, expect, self.span(tree))

    def ticket_check(self, tree: Node) -> s.TicketStep:
        ref, status = tree.children
        return s.TicketStep(self.ticket_ref(ref), str(status), self.span(status),
                            self.span(tree))

    def expect(self, tree: Node) -> s.Expectation:
        return self.expectation(tree.children, self.span(tree))

    # -- items
    def item_scenario(self, tree: Node) -> s.Scenario:
        name = self.string(tree.children[0])
        tags: Node | None = None
        defaults: list[s.FieldValue] = []
        steps: list[s.Step] = []
        for child in tree.children[1:]:
            span = self.span(child)
            if child.data == "tags":
                tags = child
            elif child.data == "defaults":
                defaults.extend(self.field_map(child.children[0]))
            elif child.data == "reset":
                target = child.children[0]
                agent = None if isinstance(target, Token) else self.string(target).value
                steps.append(s.ResetStep(agent, span))
            elif child.data == "state_check":
                agent = self.string(child.children[0]).value
                steps.append(s.StateStep(agent, self.expectation(child.children[1:], span), span))
            elif child.data == "after":
                token = child.children[0]
                token = token if isinstance(token, Token) else token.children[0]
                steps.append(s.AfterStep(str(token), self.span(token), span))
            elif child.data == "assign_group":
                agent = self.string(child.children[0]).value
                target = child.children[-1]
                group = None if isinstance(target, Token) else self.string(target).value
                steps.append(s.GroupStep(agent, group, self.span(target), span))
            elif child.data == "verdict":
                steps.append(self.verdict(child))
            elif child.data == "ticket_check":
                steps.append(self.ticket_check(child))
            else:
                agent = self.string(child.children[0]).value
                action, action_span, quoted = self.action(child.children[1])
                fields = self.field_map(child.children[2]) if len(child.children) == 4 else []
                steps.append(s.ActionStep(agent, action, action_span, quoted, tuple(fields),
                                          self.expect(child.children[-1]), span))
        return s.Scenario(name.value, name.span, self.tags(tags), tuple(defaults), tuple(steps),
                          self.span(tree))

    def item_cases(self, tree: Node) -> s.Cases:
        name = self.string(tree.children[0])
        action, action_span, quoted = self.action(tree.children[1])
        tags: Node | None = None
        agent = DEFAULT_AGENT
        defaults: list[s.FieldValue] = []
        columns: list[tuple[str, Span]] = []
        rows: list[s.CaseRow] = []
        for child in tree.children[2:]:
            if child.data == "tags":
                tags = child
            elif child.data == "defaults":
                defaults.extend(self.field_map(child.children[0]))
            elif child.data == "case_agent":
                agent = self.string(child.children[0]).value
            elif child.data == "columns":
                columns.extend((p.dotted, p.span) for p in map(self.path, child.children))
            else:
                values = tuple(self.value(c) for c in child.children[:-1])
                rows.append(s.CaseRow(values, self.expect(child.children[-1]), self.span(child)))
        return s.Cases(name.value, name.span, action, action_span, quoted, self.tags(tags), agent,
                       tuple(defaults), tuple(columns), tuple(rows), self.span(tree))

    def item_property(self, tree: Node) -> s.Property:
        name = self.string(tree.children[0])
        subject = tree.children[1]
        sequence = isinstance(subject.children[0], Token)
        actions = tuple(self.action(c) for c in subject.children[1 if sequence else 0:])
        tags: Node | None = None
        examples = None
        where = None
        quantifier = "never"
        target = None
        for child in tree.children[2:]:
            if isinstance(child, Token):
                quantifier = str(child)
            elif child.data == "tags":
                tags = child
            elif child.data == "examples":
                examples = int(self.literal(child.children[0]).value)
            elif child.data == "where":
                where = self.condition(child.children[0])
            elif child.data == "target_rule":
                target = s.Clause("rule", str(child.children[0]), self.span(child))
            else:
                target = s.Clause("decision", str(child.children[0]), self.span(child))
        assert target is not None
        return s.Property(name.value, name.span, actions, sequence, examples, where, quantifier,
                          target, self.tags(tags), self.span(tree))


# ------------------------------------------------------------------------------ the fast path

class _GiveUp(Exception):
    """The fast path is not sure: parse the file with Lark instead."""


@lru_cache(maxsize=1)
def _token_pattern() -> re.Pattern[str]:
    """One match a token: white space and comments (skipped), then a string, a number (before
    the punctuation, for `-1`), a word or punctuation; built from the policy grammar's
    terminals, the ones suite.lark imports."""
    terminals = {t.name: t.pattern.to_regexp() for t in policy_parser.grammar_terminals()}
    return re.compile(
        f"(?:{terminals['WS']}|{terminals['COMMENT']})*"
        f"(?:(?P<s>{terminals['STRING']})|(?P<n>{terminals['NUMBER']})"
        f"|(?P<w>{terminals['NAME']})|(?P<p>->|==|!=|<=|>=|[{{}}\\[\\](),:.<>]))?")


def _lists_too_deep(span: Span) -> Diagnostic:
    return diagnostic("SL013", f"list nests more than {MAX_LIST_NESTING} levels deep", span,
                      help="field values are strings, numbers, booleans or flat lists")


_STRING, _NUMBER, _WORD = "s", "n", "w"

# Words some terminal of suite.lark matches. Where a name is expected right after a value or a
# string, Lark's contextual lexer (LALR lookaheads merged across contexts) may read these as
# keywords, so the fast path gives up on them there instead of guessing.
_KEYWORDS = frozenset({
    "suite", "for", "defaults", "tags", "scenario", "agent", "reset", "state", "assign", "rule",
    "reason",
    "threat", "status", "cases", "with", "property", "examples", "where", "or", "and", "not",
    "in", "exists", "allowed", "blocked", "shutdown", "risk", "applied", "projected",
    "cumulative", "strikes", "contains", "sequence", "never", "always", "none", "all",
    "starts_with", "ends_with", "true", "false", "after", "decayed", "group", "review", "as",
    "approve", "deny", "by", "note", "last", "ticket"
})
_DECISIONS = frozenset({"allowed", "blocked", "shutdown", "review"})
_NUMBER_KEYS = frozenset({"risk", "applied", "projected", "cumulative", "strikes", "decayed"})
_VALUE_START = frozenset({_STRING, _NUMBER, "["})
_DURATION_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
"""The number part of grammar.lark's DURATION."""


class _FastParser:
    """Recursive descent over a token list, building suite nodes directly.

    Node spans follow Lark's `propagate_positions` exactly: a node runs from its first token to
    its last, punctuation included; a parenthesised condition keeps its own span (inside the
    parentheses) while the node that contains it starts or ends at the parenthesis.
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        self.builder = TreeBuilder(source)  # unescape() and its SL008 diagnostics
        kinds: list[str] = []
        values: list[str] = []
        starts: list[int] = []
        text = source.text
        match = _token_pattern().match
        pos, size = 0, len(text)
        while True:
            m = match(text, pos)
            if m is None:  # never: the pattern matches the empty string
                raise _GiveUp
            kind = m.lastgroup
            if kind is None:
                if m.end() == size:
                    break
                raise _GiveUp  # a character no token starts with
            value = m.group(kind)
            kinds.append(kind if kind != "p" else value)
            values.append(value)
            pos = m.end()
            starts.append(pos - len(value))
        kinds.append("$END")
        values.append("")
        starts.append(size)
        self.kinds, self.values, self.starts = kinds, values, starts
        self.line_starts = source.line_starts
        self.i = 0

    # -- tokens
    def span(self, first: int, last: int) -> Span:
        """The span from token `first` to the end of token `last`."""
        starts, line_starts = self.starts, self.line_starts
        start = starts[first]
        end = starts[last] + len(self.values[last])
        line = bisect_right(line_starts, start)
        end_line = bisect_right(line_starts, starts[last])
        return Span(self.source, line, start - line_starts[line - 1] + 1,
                    end_line, end - line_starts[end_line - 1] + 1, start, end)

    def expect(self, kind: str) -> int:
        i = self.i
        if self.kinds[i] != kind:
            raise _GiveUp
        self.i = i + 1
        return i

    def keyword(self, word: str) -> int:
        i = self.i
        if self.kinds[i] != _WORD or self.values[i] != word:
            raise _GiveUp
        self.i = i + 1
        return i

    def at_word(self, word: str) -> bool:
        i = self.i
        return self.kinds[i] == _WORD and self.values[i] == word

    def name(self, keywords_ok: bool) -> int:
        """A NAME token; `keywords_ok` where Lark's lexer can only read a name there."""
        i = self.i
        if self.kinds[i] != _WORD or (not keywords_ok and self.values[i] in _KEYWORDS):
            raise _GiveUp
        self.i = i + 1
        return i

    def string(self) -> tuple[str, int]:
        i = self.expect(_STRING)
        quoted = self.values[i]
        if "\\" not in quoted:
            return quoted[1:-1], i
        return self.builder.unescape(quoted, self.span(i, i)), i

    def number(self) -> tuple[int | float, int]:
        i = self.expect(_NUMBER)
        return self.builder.number(self.values[i], self.span(i, i)), i

    # -- suite
    def suite(self) -> s.Suite:
        self.keyword("suite")
        name, _ = self.string()
        self.keyword("for")
        policy, policy_i = self.string()
        defaults: list[s.FieldValue] = []
        items: list[s.Item] = []
        kinds, values = self.kinds, self.values
        while kinds[self.i] != "$END":
            word = values[self.i] if kinds[self.i] == _WORD else ""
            if word == "defaults":
                self.i += 1
                defaults.extend(self.field_map())
            elif word == "scenario":
                items.append(self.scenario())
            elif word == "cases":
                items.append(self.cases())
            elif word == "property":
                items.append(self.property())
            else:
                raise _GiveUp
        return s.Suite(name, policy, self.span(policy_i, policy_i), tuple(defaults), tuple(items),
                       self.source, self.span(0, len(kinds) - 2))

    # -- values
    def path(self, keywords_ok: bool) -> tuple[str, int, int]:
        first = last = self.name(keywords_ok)
        parts = [self.values[first]]
        while self.kinds[self.i] == ".":
            self.i += 1
            last = self.name(True)
            parts.append(self.values[last])
        return ".".join(parts), first, last

    def field_map(self) -> list[s.FieldValue]:
        self.expect("{")
        entries: list[s.FieldValue] = []
        kinds = self.kinds
        after_value = False
        while kinds[self.i] != "}":
            dotted, first, last = self.path(not after_value)
            self.expect(":")
            value = self.value()
            entries.append(s.FieldValue(dotted, self.span(first, last), value,
                                        self.span(first, self.i - 1)))
            if kinds[self.i] == ",":
                self.i += 1
                after_value = False
            else:
                after_value = True
        self.i += 1
        return entries

    def value(self, depth: int = 0) -> s.Value:
        i = self.i
        kind = self.kinds[i]
        if kind == _STRING:
            text, _ = self.string()
            return s.Value(text, self.span(i, i))
        if kind == _NUMBER:
            number, _ = self.number()
            return s.Value(number, self.span(i, i))
        if kind == _WORD:
            word = self.values[i]
            self.i = i + 1
            if word == "true" or word == "false":
                return s.Value(word == "true", self.span(i, i))
            if word == "none":
                return s.Value(None, self.span(i, i), omitted=True)
            raise _GiveUp
        if kind == "[":
            if depth == MAX_LIST_NESTING:
                raise _GiveUp  # the reference reports it
            self.i += 1
            items = []
            while self.kinds[self.i] != "]":
                items.append(self.value(depth + 1).value)
                if self.kinds[self.i] != ",":
                    break
                self.i += 1
            self.expect("]")
            return s.Value(items, self.span(i, self.i - 1))
        raise _GiveUp

    def tags(self) -> tuple[str, ...]:
        if not self.at_word("tags"):
            return ()
        self.i += 1
        self.expect("[")
        tags = []
        while self.kinds[self.i] != "]":
            tags.append(self.values[self.name(True)])
            if self.kinds[self.i] != ",":
                break
            self.i += 1
        self.expect("]")
        return tuple(tags)

    def action(self) -> tuple[str, Span, bool]:
        if self.kinds[self.i] == _STRING:
            text, i = self.string()
            return text, self.span(i, i), True
        i = self.name(False)
        return self.values[i], self.span(i, i), False

    def clauses(self) -> list[s.Clause]:
        clauses = []
        kinds, values = self.kinds, self.values
        while kinds[self.i] == _WORD:
            first = self.i
            word = values[first]
            if word == "rule":
                self.i += 1
                clause = s.Clause("rule", values[self.name(True)], self.span(first, self.i - 1))
            elif word == "reason":
                self.i += 1
                kind = "reason"
                if self.at_word("contains"):
                    self.i += 1
                    kind = "reason_contains"
                text, last = self.string()
                clause = s.Clause(kind, text, self.span(first, last))
            elif word == "threat":
                self.i += 1
                if self.at_word("none"):
                    self.i += 1
                    threat = None
                else:
                    threat, _ = self.string()
                clause = s.Clause("threat", threat, self.span(first, self.i - 1))
            elif word in _NUMBER_KEYS:
                self.i += 1
                number, last = self.number()
                clause = s.Clause(word, number, self.span(first, last))
            elif word == "status":
                self.i += 1
                clause = s.Clause("status", values[self.name(True)], self.span(first, self.i - 1))
            elif word == "group":
                self.i += 1
                text, last = self.string()
                clause = s.Clause("group", text, self.span(first, last))
            elif word == "as":
                self.i += 1
                clause = s.Clause("ticket", values[self.name(True)], self.span(first, self.i - 1))
            else:
                break
            clauses.append(clause)
        return clauses

    def duration(self) -> int:
        """A duration such as `30m`: a whole or decimal number and a name written together,
        which the tokens split in two (the index of the number; the name follows it). Anything
        else after `after` (a bare number or name, an exponent) is left to Lark."""
        i = self.i
        if (self.kinds[i] != _NUMBER or self.kinds[i + 1] != _WORD
                or self.starts[i + 1] != self.starts[i] + len(self.values[i])
                or not _DURATION_NUMBER.fullmatch(self.values[i])):
            raise _GiveUp
        self.i = i + 2
        return i

    def ticket_ref(self) -> s.TicketRef:
        """`"agent" last ticket` or a ticket's NAME."""
        first = self.i
        if self.kinds[first] == _STRING:
            agent, _ = self.string()
            self.keyword("last")
            last = self.keyword("ticket")
            return s.TicketRef(agent, None, self.span(first, last))
        name = self.name(False)
        return s.TicketRef(None, self.values[name], self.span(name, name))

    def expectation(self) -> s.Expectation:
        first = self.i
        if self.kinds[first] != _WORD or self.values[first] not in _DECISIONS:
            raise _GiveUp
        self.i += 1
        clauses = [s.Clause("decision", self.values[first], self.span(first, first))]
        clauses.extend(self.clauses())
        return s.Expectation(tuple(clauses), self.span(first, self.i - 1))

    # -- items
    def scenario(self) -> s.Scenario:
        first = self.i
        self.i += 1
        name, name_i = self.string()
        tags = self.tags()
        self.expect("{")
        defaults: list[s.FieldValue] = []
        steps: list[s.Step] = []
        kinds, values = self.kinds, self.values
        while kinds[self.i] != "}":
            start = self.i
            word = values[start] if kinds[start] == _WORD else ""
            self.i += 1
            if word == "agent":
                agent, _ = self.string()
                action, action_span, quoted = self.action()
                fields = self.field_map() if kinds[self.i] == "{" else []
                self.expect("->")
                expect = self.expectation()
                steps.append(s.ActionStep(agent, action, action_span, quoted, tuple(fields), expect,
                                          self.span(start, self.i - 1)))
            elif word == "defaults":
                defaults.extend(self.field_map())
            elif word == "reset":
                if self.at_word("all"):
                    self.i += 1
                    target = None
                else:
                    target, _ = self.string()
                steps.append(s.ResetStep(target, self.span(start, self.i - 1)))
            elif word == "state":
                agent, _ = self.string()
                self.expect("->")
                clauses = self.clauses()
                if not clauses:
                    raise _GiveUp
                span = self.span(start, self.i - 1)
                steps.append(s.StateStep(agent, s.Expectation(tuple(clauses), span), span))
            elif word == "after":
                duration = self.duration()
                steps.append(s.AfterStep(self.values[duration] + self.values[duration + 1],
                                         self.span(duration, duration + 1),
                                         self.span(start, self.i - 1)))
            elif word == "assign":
                agent, _ = self.string()
                self.keyword("group")
                assigned: str | None = None
                if self.at_word("none"):
                    group_at = self.i
                    self.i += 1
                else:
                    assigned, group_at = self.string()
                steps.append(s.GroupStep(agent, assigned, self.span(group_at, group_at),
                                         self.span(start, self.i - 1)))
            elif word in ("approve", "deny"):
                ref = self.ticket_ref()
                self.keyword("by")
                operator, _ = self.string()
                note = None
                if self.at_word("note"):
                    self.i += 1
                    note, _ = self.string()
                verdict_expect = None
                if kinds[self.i] == "->":
                    self.i += 1
                    verdict_expect = self.expectation()
                steps.append(s.VerdictStep(word == "approve", ref, operator, note, verdict_expect,
                                           self.span(start, self.i - 1)))
            elif word == "ticket":
                ref = self.ticket_ref()
                self.expect("->")
                status = self.name(True)   # only a NAME can follow `ticket REF ->`
                steps.append(s.TicketStep(ref, values[status], self.span(status, status),
                                          self.span(start, self.i - 1)))
            else:
                raise _GiveUp
        self.i += 1
        return s.Scenario(name, self.span(name_i, name_i), tags, tuple(defaults), tuple(steps),
                          self.span(first, self.i - 1))

    def cases(self) -> s.Cases:
        first = self.i
        self.i += 1
        name, name_i = self.string()
        action, action_span, quoted = self.action()
        tags = self.tags()
        self.expect("{")
        agent = DEFAULT_AGENT
        defaults: list[s.FieldValue] = []
        columns: list[tuple[str, Span]] = []
        rows: list[s.CaseRow] = []
        kinds, values = self.kinds, self.values
        while kinds[self.i] != "}":
            start = self.i
            kind = kinds[start]
            word = values[start] if kind == _WORD else ""
            if kind in _VALUE_START or word in ("true", "false", "none"):
                row = [self.value()]
                while kinds[self.i] == ",":
                    self.i += 1
                    row.append(self.value())
                self.expect("->")
                expect = self.expectation()
                rows.append(s.CaseRow(tuple(row), expect, self.span(start, self.i - 1)))
                continue
            self.i += 1
            if word == "with":
                while True:
                    dotted, path_first, path_last = self.path(True)
                    columns.append((dotted, self.span(path_first, path_last)))
                    if kinds[self.i] != ",":
                        break
                    self.i += 1
            elif word == "agent":
                agent, _ = self.string()
            elif word == "defaults":
                defaults.extend(self.field_map())
            else:
                raise _GiveUp
        self.i += 1
        return s.Cases(name, self.span(name_i, name_i), action, action_span, quoted, tags, agent,
                       tuple(defaults), tuple(columns), tuple(rows), self.span(first, self.i - 1))

    def property(self) -> s.Property:
        first = self.i
        self.i += 1
        name, name_i = self.string()
        sequence = self.at_word("sequence")
        if sequence:
            self.i += 1
        actions = [self.action()]
        while self.kinds[self.i] == ",":
            self.i += 1
            actions.append(self.action())
        tags = self.tags()
        examples = None
        if self.at_word("examples"):
            self.i += 1
            examples = int(self.number()[0])
        where = None
        if self.at_word("where"):
            self.i += 1
            where = self.condition()
        self.expect("->")
        quantifier = self.values[self.i]
        if self.kinds[self.i] != _WORD or quantifier not in ("never", "always"):
            raise _GiveUp
        self.i += 1
        target_i = self.i
        if self.at_word("rule"):
            self.i += 1
            rule = self.values[self.name(True)]
            target = s.Clause("rule", rule, self.span(target_i, self.i - 1))
        elif self.kinds[target_i] == _WORD and self.values[target_i] in _DECISIONS:
            self.i += 1
            target = s.Clause("decision", self.values[target_i], self.span(target_i, target_i))
        else:
            raise _GiveUp
        return s.Property(name, self.span(name_i, name_i), tuple(actions), sequence, examples,
                          where, quantifier, target, tags, self.span(first, self.i - 1))

    # -- conditions: the policy grammar's, from the token after `where` to the `->`
    def condition(self) -> ast.Condition:
        first = self.i
        try:
            arrow = self.kinds.index("->", first)
        except ValueError:
            raise _GiveUp from None
        if arrow == first:
            raise _GiveUp
        end = self.starts[arrow - 1] + len(self.values[arrow - 1])
        parsed = parse_condition(self.source, self.starts[first], end)
        if parsed is None:
            raise _GiveUp
        condition, diagnostics = parsed
        self.builder.diagnostics.extend(diagnostics)
        self.i = arrow
        return condition
