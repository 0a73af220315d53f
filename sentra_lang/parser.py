"""Parse `.sentra` text into the AST; turn Lark's exceptions into friendly diagnostics.

Nothing from Lark leaves this module: callers get a `Module` and a list of diagnostics.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from typing import Any

import lark
from lark import Lark, Token, Tree

from sentra_lang import ast
from sentra_lang.diagnostics import Diagnostic, diagnostic
from sentra_lang.source import Source, Span

MAX_SOURCE_BYTES = 8 * 1024 * 1024
MAX_SYNTAX_ERRORS = 20
# A node of Lark's concrete syntax tree (a Tree or a Token); its shape is the grammar's.
Node = Any
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t"}
_COMMENT_OR_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*')

_TERMINAL_WORDS = {
    "NAME": "a name",
    "STRING": "a string",
    "NUMBER": "a number",
    "BOOLEAN": "`true` or `false`",
    "OUTCOME": "an outcome (`allow`, `block` or `shutdown`)",
    "COMPARE": "a comparison (`==`, `!=`, `<`, `<=`, `>`, `>=`)",
    "STRING_TEST": "`starts_with`, `ends_with` or `contains`",
    "NOT": "`not`",
    "OPTIONAL": "`?`",
    "$END": "end of file",
}


@lru_cache(maxsize=1)
def _lark() -> Lark:
    grammar = resources.files("sentra_lang").joinpath("grammar.lark").read_text("utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def grammar_keywords() -> set[str]:
    """Every keyword the grammar reserves, read from the compiled grammar's terminals."""
    words: set[str] = set()
    for terminal in _lark().terminals:
        pattern = terminal.pattern
        if pattern.type == "str" and re.fullmatch(r"[a-z_]+", pattern.value):
            words.add(pattern.value)
        elif terminal.name in {"OUTCOME", "BOOLEAN", "STRING_TEST", "NOT"}:
            words.update(re.findall(r"[a-z_]+", pattern.value.split("(?!")[0]))
    return words


def parse(text: str, path: str = "<string>") -> tuple[ast.Module | None, list[Diagnostic]]:
    """Parse source text. Returns the module (None on a syntax error) and the diagnostics."""
    source = Source(path, text)
    if not text.strip() or _only_comments(text):
        span = Span.of_offsets(source, 0, len(text.rstrip("\n")))
        return None, [diagnostic("SL007", "file is empty: it declares nothing", span,
                                 help="a policy starts with `policy NAME version \"1\" { }`")]
    tree, syntax_errors = _parse_recovering(source)
    if syntax_errors:
        return None, syntax_errors
    builder = TreeBuilder(source)
    module = builder.module(tree)
    return module, builder.diagnostics


def _parse_recovering(source: Source) -> tuple[Node | None, list[Diagnostic]]:
    """Parse; on a syntax error, blank the offending line and parse again to find the next.

    Blanking keeps every offset in place, so each error points into the original text, and a
    line-oriented language rarely needs more than the bad line removed to go on.
    """
    text = source.text
    errors: list[Diagnostic] = []
    while len(errors) < MAX_SYNTAX_ERRORS:
        try:
            tree = _lark().parse(text)
            return (None if errors else tree), errors
        except lark.exceptions.UnexpectedInput as error:
            errors.append(syntax_diagnostic(source, error))
            if errors[-1].code == "SL004":
                break
            start = text.rfind("\n", 0, error.pos_in_stream) + 1
            end = text.find("\n", error.pos_in_stream)
            end = len(text) if end < 0 else end
            if not text[start:end].strip():
                break
            text = text[:start] + " " * (end - start) + text[end:]
    return None, errors


def parse_bytes(data: bytes, path: str) -> tuple[ast.Module | None, list[Diagnostic], Source]:
    """Decode and parse a file's bytes; binary or oversized input is a diagnostic, not a crash."""
    if len(data) > MAX_SOURCE_BYTES:
        source = Source(path, "")
        size = f"{len(data) / 1024 / 1024:.1f} MiB"
        return None, [diagnostic("SL006", f"file is {size}, over the 8 MiB limit",
                                 Span.of_offsets(source, 0, 0))], source
    try:
        text = data.decode("utf-8")
        if "\x00" in text:
            raise UnicodeDecodeError("utf-8", data, text.index("\x00"), text.index("\x00") + 1,
                                     "NUL byte")
    except UnicodeDecodeError as error:
        prefix = data[: error.start].decode("utf-8", errors="replace")
        source = Source(path, prefix + "\ufffd")
        span = Span.of_offsets(source, len(prefix), len(prefix) + 1)
        return None, [diagnostic("SL005", f"file is not UTF-8 text (byte {error.start})", span,
                                 help="policy files are UTF-8 text")], source
    module, diagnostics = parse(text, path)
    return module, diagnostics, Source(path, text)


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines())


def describe_expected(expected: set[str], grammar: Lark, words: dict[str, str]) -> str:
    """What the parser expected, in words: `words` names the grammar's pattern terminals."""
    terminals = {t.name: t for t in grammar.terminals}
    described = set()
    for name in expected:
        if name in words:
            described.add(words[name])
        elif name in terminals and terminals[name].pattern.type == "str":
            described.add(f"`{terminals[name].pattern.value}`")
        else:
            described.add(name.lower())
    ordered = sorted(described)
    if len(ordered) == 1:
        return ordered[0]
    return ", ".join(ordered[:-1]) + " or " + ordered[-1]


def syntax_diagnostic(source: Source, error: lark.exceptions.UnexpectedInput,
                      grammar: Lark | None = None, words: dict[str, str] | None = None,
                      ) -> Diagnostic:
    """A Lark error as a diagnostic (SL001-SL004); the suite grammar reuses it with its words."""
    grammar = grammar or _lark()
    words = _TERMINAL_WORDS if words is None else words

    def expected_text(names: set[str]) -> str:
        return f"expected {describe_expected(names, grammar, words)}"

    if isinstance(error, lark.exceptions.UnexpectedCharacters):
        offset = error.pos_in_stream or 0
        char = source.text[offset]
        span = Span.of_offsets(source, offset, offset + 1)
        if char == '"':
            return diagnostic("SL003", "unterminated string", span,
                              help="close the string with `\"` on the same line")
        allowed = set(error.allowed or ())
        return diagnostic("SL002", f"unexpected character `{char}`", span,
                          help=expected_text(allowed) if allowed else None)
    token = getattr(error, "token", None)
    expected = set(getattr(error, "expected", ()) or ())
    interactive = getattr(error, "interactive_parser", None)
    if interactive is not None:
        expected = set(interactive.accepts()) or expected
    if token is None or token.type == "$END":
        stripped = source.text.rstrip()
        line_start = stripped.rfind("\n") + 1
        indent = len(stripped[line_start:]) - len(stripped[line_start:].lstrip())
        span = Span.of_offsets(source, line_start + indent, len(stripped))
        return diagnostic("SL004", "unexpected end of file", span, help=expected_text(expected))
    start = token.start_pos or 0
    span = Span.of_offsets(source, start, start + len(token.value))
    return diagnostic("SL001", f"unexpected `{token.value}`", span, help=expected_text(expected))


class TreeBuilder:
    """Turns the Lark tree into AST nodes, collecting diagnostics for bad literals.

    Public so that other grammars sharing the policy grammar's rules can reuse it: the scenario
    suite parser (`sentra_lang.testing.suite_parser`) subclasses it for conditions, strings and
    literals. Its methods take trees of `grammar.lark`'s rules.
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        self.diagnostics: list[Diagnostic] = []

    # -- spans
    def span(self, node: Node) -> Span:
        if isinstance(node, Token):
            start, end = node.start_pos or 0, node.end_pos or 0
        else:
            start, end = node.meta.start_pos, node.meta.end_pos
        return Span.of_offsets(self.source, start, end)

    # -- top level
    def module(self, tree: Node) -> ast.Module:
        items = tuple(self.item(child) for child in tree.children)
        comments = tuple(
            ast.Comment(m.group(0), span=Span.of_offsets(self.source, m.start(), m.end()))
            for m in _COMMENT_OR_STRING.finditer(self.source.text)
            if m.group(0).startswith("#")
        )
        span = Span.of_offsets(self.source, 0, len(self.source.text))
        return ast.Module(items, comments, span=span)

    def item(self, tree: Node) -> ast.Item:
        handler = getattr(self, f"item_{tree.data}")
        return handler(tree)  # type: ignore[no-any-return]

    def item_import_stmt(self, tree: Node) -> ast.Import:
        return ast.Import(self.string(tree.children[0]), span=self.span(tree))

    def item_policy_decl(self, tree: Node) -> ast.PolicyDecl:
        name = self.name(tree.children[0])
        version = None
        settings = []
        for child in tree.children[1:]:
            if child.data == "version":
                version = self.string(child.children[0])
            else:
                settings.append(self.setting(child))
        return ast.PolicyDecl(name, version, tuple(settings), span=self.span(tree))

    def setting(self, tree: Node) -> ast.Setting:
        name = self.name(tree.children[0].children[0])
        value_tree = tree.children[1]
        value: ast.SettingValue
        if isinstance(value_tree, Token):
            value = self.name(value_tree)
        elif value_tree.data == "normalize":
            value = self.normalize(value_tree)
        else:
            value = self.literal(value_tree)
        return ast.Setting(name, value, span=self.span(tree))

    def item_input_block(self, tree: Node) -> ast.InputBlock:
        return ast.InputBlock(tuple(self.field_decl(c) for c in tree.children), span=self.span(tree))

    def field_decl(self, tree: Node) -> ast.FieldDecl:
        path = self.path(tree.children[0])
        type_ref = self.type_ref(tree.children[1])
        optional, normalize, default = False, None, None
        for child in tree.children[2:]:
            if isinstance(child, Token):
                optional = True
            elif child.data == "normalize":
                normalize = self.normalize(child)
            else:
                value = child.children[0]
                default = self.set_literal(value) if value.data == "set_literal" else self.literal(value)
        return ast.FieldDecl(path, type_ref, optional, normalize, default, span=self.span(tree))

    def type_ref(self, tree: Node) -> ast.TypeRef:
        span = self.span(tree)
        if tree.data == "simple_type":
            return ast.TypeRef("simple", self.name(tree.children[0]), span=span)
        if tree.data == "enum_type":
            values = tuple(self.string(c) for c in tree.children)
            return ast.TypeRef("enum", ast.Name("enum", span=span), values, span=span)
        return ast.TypeRef("set", self.name(tree.children[0]), span=span)

    def normalize(self, tree: Node) -> ast.Normalize:
        return ast.Normalize(tuple(self.name(c) for c in tree.children), span=self.span(tree))

    def item_let_decl(self, tree: Node) -> ast.Let:
        name = self.name(tree.children[0])
        value_tree = tree.children[1]
        if isinstance(value_tree, Tree) and value_tree.data == "set_literal":
            value: ast.SetLit | ast.Condition = self.set_literal(value_tree)
        else:
            value = self.condition(value_tree)
        return ast.Let(name, value, span=self.span(tree))

    def item_action_block(self, tree: Node) -> ast.ActionBlock:
        names = []
        rules = []
        for child in tree.children:
            if child.data == "action_name":
                token = child.children[0]
                if isinstance(token, Token):
                    names.append(ast.ActionName(str(token), False, span=self.span(token)))
                else:
                    string = self.string(token)
                    names.append(ast.ActionName(string.value, True, span=string.span))
            else:
                rules.append(self.rule(child))
        return ast.ActionBlock(tuple(names), tuple(rules), span=self.span(tree))

    def rule(self, tree: Node) -> ast.Rule:
        when = None
        outcome_tree = tree.children[-1]
        if len(tree.children) == 2:
            when = self.condition(tree.children[0].children[0])
        return ast.Rule(when, self.outcome(outcome_tree), span=self.span(tree))

    def item_otherwise_decl(self, tree: Node) -> ast.Otherwise:
        return ast.Otherwise(self.outcome(tree.children[0]), span=self.span(tree))

    def outcome(self, tree: Node) -> ast.Outcome:
        kind = str(tree.children[0])
        clauses = []
        for child in tree.children[1:]:
            value_node = child.children[0]
            if child.data == "risk":
                value: ast.Num | ast.Name | ast.Str = self.literal(value_node)  # type: ignore[assignment]
                kind_name = "risk"
            elif child.data == "rule_id":
                value, kind_name = self.name(value_node), "id"
            else:
                value, kind_name = self.string(value_node), str(child.data)
            clauses.append(ast.Clause(kind_name, value, span=self.span(child)))
        return ast.Outcome(kind, tuple(clauses), span=self.span(tree))

    # -- conditions
    def condition(self, tree: Node) -> ast.Condition:
        span = self.span(tree)
        kind = tree.data
        if kind == "or_cond":
            return ast.Or(tuple(self.condition(c) for c in tree.children), span=span)
        if kind == "and_cond":
            return ast.And(tuple(self.condition(c) for c in tree.children), span=span)
        if kind == "not_cond":
            return ast.Not(self.condition(tree.children[0]), span=span)
        if kind == "comparison":
            left, op, right = tree.children
            right_node = self.path(right) if right.data == "path" else self.literal(right)
            return ast.Compare(self.path(left), str(op), right_node, span=span)
        if kind == "membership":
            path = self.path(tree.children[0])
            negated = len(tree.children) == 3
            target = tree.children[-1]
            set_ref = self.name(target) if isinstance(target, Token) else self.set_literal(target)
            return ast.Membership(path, set_ref, negated, span=span)
        if kind == "string_test":
            path, op, value = tree.children
            return ast.StringTest(self.path(path), str(op), self.string(value), span=span)
        if kind == "exists":
            return ast.Exists(self.path(tree.children[0]), span=span)
        if kind == "ref":
            return ast.Ref(self.path(tree.children[0]), span=span)
        raise AssertionError(f"unexpected condition node {kind}")

    # -- leaves
    def name(self, token: Token) -> ast.Name:
        return ast.Name(str(token), span=self.span(token))

    def path(self, tree: Node) -> ast.Path:
        return ast.Path(tuple(str(t) for t in tree.children), span=self.span(tree))

    def set_literal(self, tree: Node) -> ast.SetLit:
        return ast.SetLit(tuple(self.string(c) for c in tree.children), span=self.span(tree))

    def literal(self, tree: Node) -> ast.Str | ast.Num | ast.Bool:
        if tree.data == "string":
            return self.string(tree)
        token = tree.children[0]
        span = self.span(token)
        if tree.data == "boolean":
            return ast.Bool(str(token) == "true", span=span)
        text = str(token)
        value: int | float = float(text) if "." in text else int(text)
        return ast.Num(value, span=span)

    def string(self, tree: Node) -> ast.Str:
        token = tree.children[0] if isinstance(tree, Tree) else tree
        span = self.span(token)
        return ast.Str(self.unescape(str(token), span), span=span)

    def unescape(self, quoted: str, span: Span) -> str:
        body = quoted[1:-1]
        if "\\" not in body:
            return body
        out = []
        index = 0
        while index < len(body):
            char = body[index]
            if char == "\\":
                escaped = body[index + 1]
                if escaped not in _ESCAPES:
                    self.diagnostics.append(diagnostic(
                        "SL008", f"invalid escape `\\{escaped}` in string", span,
                        help="strings accept `\\\\`, `\\\"`, `\\n` and `\\t`"))
                out.append(_ESCAPES.get(escaped, escaped))
                index += 2
            else:
                out.append(char)
                index += 1
        return "".join(out)
