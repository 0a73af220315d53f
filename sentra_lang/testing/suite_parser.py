"""Parse `.sentra-test` text into the suite AST, with the policy parser's diagnostics.

Conditions (`property ... where`) use the policy grammar's rules and builder, so a suite says
`destination_type == "external"` exactly as a policy does.
"""

from __future__ import annotations

from bisect import bisect_right
from functools import lru_cache
from importlib import resources
from pathlib import Path

import lark
from lark import Lark, Token, Tree

from sentra_lang.diagnostics import Diagnostic, diagnostic
from sentra_lang.parser import MAX_SOURCE_BYTES, _Builder
from sentra_lang.source import Source, Span
from sentra_lang.testing import suite_ast as s

_TERMINAL_WORDS = {
    "NAME": "a name",
    "STRING": "a string",
    "NUMBER": "a number",
    "BOOLEAN": "`true` or `false`",
    "DECISION": "a decision (`allowed`, `blocked` or `shutdown`)",
    "NUMBER_KEY": "`risk`, `applied`, `projected`, `cumulative` or `strikes`",
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
DEFAULT_AGENT = "agent"


@lru_cache(maxsize=1)
def _lark() -> Lark:
    grammar = resources.files("sentra_lang.testing").joinpath("suite.lark").read_text("utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def parse_suite(text: str, path: str = "<string>") -> tuple[s.Suite | None, list[Diagnostic]]:
    source = Source(path, text)
    if not text.strip() or all(not line.strip() or line.lstrip().startswith("#")
                               for line in text.splitlines()):
        span = Span.of_offsets(source, 0, len(text.rstrip("\n")))
        return None, [diagnostic("SL007", "file is empty: it declares nothing", span,
                                 help='a suite starts with `suite "NAME" for "POLICY.sentra"`')]
    try:
        tree = _lark().parse(text)
    except lark.exceptions.UnexpectedInput as error:
        return None, [_syntax_diagnostic(source, error)]
    builder = _SuiteBuilder(source)
    suite = builder.suite(tree)
    return suite, builder.diagnostics


def read_suite(path: str | Path) -> tuple[s.Suite | None, list[Diagnostic], Source]:
    """Read and parse a suite file; raises OSError when it cannot be read."""
    data = Path(path).read_bytes()
    display = str(path)
    if len(data) > MAX_SOURCE_BYTES:
        source = Source(display, "")
        return None, [diagnostic("SL006", "file is over the 8 MiB limit",
                                 Span.of_offsets(source, 0, 0))], source
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        source = Source(display, "")
        return None, [diagnostic("SL005", f"file is not UTF-8 text (byte {error.start})",
                                 Span.of_offsets(source, 0, 0))], source
    suite, diagnostics = parse_suite(text, display)
    return suite, diagnostics, Source(display, text)


def _describe_expected(expected: set[str]) -> str:
    terminals = {t.name: t for t in _lark().terminals}
    words = set()
    for name in expected:
        if name in _TERMINAL_WORDS:
            words.add(_TERMINAL_WORDS[name])
        elif name in terminals and terminals[name].pattern.type == "str":
            words.add(f"`{terminals[name].pattern.value}`")
        else:
            words.add(name.lower())
    ordered = sorted(words)
    if len(ordered) == 1:
        return ordered[0]
    return ", ".join(ordered[:-1]) + " or " + ordered[-1]


def _syntax_diagnostic(source: Source, error: lark.exceptions.UnexpectedInput) -> Diagnostic:
    if isinstance(error, lark.exceptions.UnexpectedCharacters):
        offset = error.pos_in_stream
        char = source.text[offset]
        span = Span.of_offsets(source, offset, offset + 1)
        if char == '"':
            return diagnostic("SL003", "unterminated string", span,
                              help="close the string with `\"` on the same line")
        allowed = set(error.allowed or ())
        return diagnostic("SL002", f"unexpected character `{char}`", span,
                          help=f"expected {_describe_expected(allowed)}" if allowed else None)
    token = getattr(error, "token", None)
    expected = set(getattr(error, "expected", ()) or ())
    if token is None or token.type == "$END":
        stripped = source.text.rstrip()
        start = stripped.rfind("\n") + 1
        indent = len(stripped[start:]) - len(stripped[start:].lstrip())
        return diagnostic("SL004", "unexpected end of file",
                          Span.of_offsets(source, start + indent, len(stripped)),
                          help=f"expected {_describe_expected(expected)}")
    start = token.start_pos or 0
    word = "end of file" if token.type == "$END" else f"`{token.value}`"
    return diagnostic("SL001", f"unexpected {word}",
                      Span.of_offsets(source, start, start + len(token.value)),
                      help=f"expected {_describe_expected(expected)}")


class _SuiteBuilder(_Builder):
    """Builds suite nodes; conditions, strings and literals come from the policy builder."""

    def __init__(self, source: Source) -> None:
        super().__init__(source)
        # line starts, for O(log n) positions: suites can be large (recorded traffic)
        self._starts = [0] + [i + 1 for i, c in enumerate(source.text) if c == "\n"]

    def _position(self, offset: int) -> tuple[int, int]:
        index = bisect_right(self._starts, offset) - 1
        return index + 1, offset - self._starts[index] + 1

    def span(self, node: Tree | Token) -> Span:
        if isinstance(node, Token):
            start, end = node.start_pos or 0, node.end_pos or 0
        else:
            start, end = node.meta.start_pos, node.meta.end_pos
        line, column = self._position(start)
        end_line, end_column = self._position(end)
        return Span(self.source, line, column, end_line, end_column, start, end)

    def suite(self, tree: Tree) -> s.Suite:
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
    def field_map(self, tree: Tree) -> list[s.FieldValue]:
        entries = []
        for entry in tree.children:
            path = self.path(entry.children[0])
            entries.append(s.FieldValue(path.dotted, path.span, self.value(entry.children[1]),
                                        self.span(entry)))
        return entries

    def value(self, tree: Tree) -> s.Value:
        span = self.span(tree)
        if tree.data == "none_value":
            return s.Value(None, span, omitted=True)
        if tree.data == "list_value":
            return s.Value([self.value(c).value for c in tree.children], span)
        return s.Value(self.literal(tree).value, span)

    def tags(self, tree: Tree | None) -> tuple[str, ...]:
        return tuple(str(t) for t in tree.children) if tree is not None else ()

    def action(self, tree: Tree) -> tuple[str, Span, bool]:
        token = tree.children[0]
        if isinstance(token, Token):
            return str(token), self.span(token), False
        string = self.string(token)
        return string.value, string.span, True

    def expectation(self, children: list[Tree | Token], span: Span) -> s.Expectation:
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
        return s.Expectation(tuple(clauses), span)

    def expect(self, tree: Tree) -> s.Expectation:
        return self.expectation(tree.children, self.span(tree))

    # -- items
    def item_scenario(self, tree: Tree) -> s.Scenario:
        name = self.string(tree.children[0])
        tags: Tree | None = None
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
            else:
                agent = self.string(child.children[0]).value
                action, action_span, quoted = self.action(child.children[1])
                fields = self.field_map(child.children[2]) if len(child.children) == 4 else []
                steps.append(s.ActionStep(agent, action, action_span, quoted, tuple(fields),
                                          self.expect(child.children[-1]), span))
        return s.Scenario(name.value, name.span, self.tags(tags), tuple(defaults), tuple(steps),
                          self.span(tree))

    def item_cases(self, tree: Tree) -> s.Cases:
        name = self.string(tree.children[0])
        action, action_span, quoted = self.action(tree.children[1])
        tags: Tree | None = None
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

    def item_property(self, tree: Tree) -> s.Property:
        name = self.string(tree.children[0])
        subject = tree.children[1]
        sequence = isinstance(subject.children[0], Token)
        actions = tuple(self.action(c) for c in subject.children[1 if sequence else 0:])
        tags: Tree | None = None
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
