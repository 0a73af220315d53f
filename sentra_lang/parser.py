"""Parse `.sentra` text into the AST; turn Lark's exceptions into friendly diagnostics.

Nothing from Lark leaves this module: callers get a `Module` and a list of diagnostics.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from importlib import resources

import lark
from lark import Lark, Token, Tree

from sentra_lang import ast
from sentra_lang.diagnostics import Diagnostic, diagnostic
from sentra_lang.files import MAX_SOURCE_BYTES, read_bounded
from sentra_lang.keywords import MAX_NUMBER_DIGITS
from sentra_lang.recovery import Node, Syntax, parse_recovering
from sentra_lang.source import Source, Span

MAX_NESTING = 100
"""The deepest a condition nests (`not`, `and`, `or`, arithmetic; docs/language.md, "Limits")."""
_ESCAPES = {"\\": "\\", '"': '"', "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
            "t": "\t"}
"""A string's escapes: JSON's (with ``\\uXXXX``, :meth:`TreeBuilder.unescape`), so that any
JSON string is a string of the language (``replay --to-suite`` writes values that way)."""
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_HEX_RUN = re.compile(r"[0-9A-Fa-f]*")
ESCAPES_HELP = ("strings take JSON's escapes: `\\\\`, `\\\"`, `\\/`, `\\b`, `\\f`, `\\n`, "
                "`\\r`, `\\t` and `\\uXXXX` (four hex digits; a pair for a character above "
                "U+FFFF)")
_COMMENT_OR_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*')
_CONDITION_NESTING = frozenset({"or_cond", "and_cond", "not_cond", "sum", "product", "neg"})
_EXPRESSIONS = frozenset({"sum", "product", "neg", "number", "path"})

_TERMINAL_WORDS = {
    "NAME": "a name",
    "STRING": "a string",
    "NUMBER": "a number",
    "DURATION": "a duration (`30m`, `1h`, `7d`)",
    "BOOLEAN": "`true` or `false`",
    "OUTCOME": "an outcome (`allow`, `block`, `shutdown` or `review`)",
    "COMPARE": "a comparison (`==`, `!=`, `<`, `<=`, `>`, `>=`)",
    "STRING_TEST": "`starts_with`, `ends_with` or `contains`",
    "NOT": "`not`",
    "OPTIONAL": "`?`",
    "PLUS": "`+`",
    "MINUS": "`-`",
    "TIMES": "`*`",
    "DIVIDE": "`/`",
    "$END": "end of file",
}
TOP_LEVEL_WORDS = frozenset({"policy", "input", "let", "action", "otherwise", "import"})


@lru_cache(maxsize=1)
def _lark() -> Lark:
    grammar = resources.files("sentra_lang").joinpath("grammar.lark").read_text("utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False,
                start=["start", "condition"])


def policy_syntax() -> Syntax:
    """The policy grammar, for error reporting (the suite grammar extends it)."""
    return Syntax(_lark(), _TERMINAL_WORDS, TOP_LEVEL_WORDS)


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
    text = source.text
    if not text.strip() or only_comments(text):
        span = Span.of_offsets(source, 0, len(text.rstrip("\n")))
        return None, [diagnostic("SL007", "file is empty: it declares nothing", span,
                                 help="a policy starts with `policy NAME version \"1\" { }`")]
    tree, syntax_errors = parse_recovering(source, policy_syntax())
    if syntax_errors:
        return None, syntax_errors
    builder = TreeBuilder(source)
    too_deep = builder.too_deep(tree)
    if too_deep:
        return None, too_deep
    module = builder.module(tree)
    return module, builder.diagnostics + bidirectional_controls(source)


def parse_condition(source: Source, start: int,
                    end: int) -> tuple[ast.Condition, list[Diagnostic]] | None:
    """The condition `source.text[start:end]` (spans in `source`) and its diagnostics.

    None when the text is not one condition within the limits; the caller then parses the
    whole file with its own grammar, which reports the error in context.
    """
    try:
        tree = _lark().parse(source.text[start:end], start="condition")
    except lark.exceptions.LarkError:
        return None
    builder = TreeBuilder(source, offset=start)
    if builder.too_deep(tree):
        return None
    return builder.condition(tree), builder.diagnostics


def grammar_terminals() -> list[lark.lexer.TerminalDef]:
    """The policy grammar's terminals (the suite parser builds its tokens from them)."""
    return list(_lark().terminals)


_BIDI_CONTROL = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
MAX_BIDI_WARNINGS = 20


def bidirectional_controls(source: Source) -> list[Diagnostic]:
    """SL016 for each bidirectional control written as it is in the source (at most
    `MAX_BIDI_WARNINGS`): it makes editors show the rest of its line reordered (Trojan Source)."""
    found: list[Diagnostic] = []
    for match in _BIDI_CONTROL.finditer(source.text):
        if len(found) == MAX_BIDI_WARNINGS:
            break
        code = f"\\u{ord(match.group()):04x}"
        found.append(diagnostic(
            "SL016", f"bidirectional control character `{code}` written as it is",
            Span.of_offsets(source, match.start(), match.end()),
            help=f"editors show the rest of the line reordered; in a string write `{code}`, "
                 "and remove it from a comment"))
    return found


def decode_source(data: bytes, path: str, size: int | None = None) -> tuple[Source, list[Diagnostic]]:
    """A file's bytes as source text, or why they are none: what a policy or suite file may hold.

    Over 8 MiB is SL006, anything but UTF-8 text (a NUL byte included) SL005; then the source is
    empty, so no diagnostic ever shows the bytes of a file that is not text (SL005's span still
    has the bad byte's line, column and character offset, so an editor places it). A leading UTF-8 byte
    order mark is dropped (editors write one and hide it). `size` is the file's full size when
    `data` is only its first bytes.
    """
    if len(data) > MAX_SOURCE_BYTES:
        source = Source(path, "")
        message = (f"file is {size / 1024 / 1024:.1f} MiB, over the 8 MiB limit" if size
                   else "file is over the 8 MiB limit")
        return source, [diagnostic("SL006", message, Span.of_offsets(source, 0, 0),
                                   help="split the policy into libraries joined with `import`")]
    bad = _first_bad_byte(data)
    if bad is not None:
        prefix = Source(path, data[:bad].decode("utf-8").removeprefix("\ufeff"))
        line, column = prefix.position(len(prefix.text))
        offset = len(prefix.text)
        span = Span(Source(path, ""), line, column, line, column + 1, offset, offset + 1)
        return span.source, [diagnostic("SL005", f"file is not UTF-8 text (byte {bad})", span,
                                        help="policy and suite files are UTF-8 text")]
    return Source(path, data.decode("utf-8").removeprefix("\ufeff")), []


def _first_bad_byte(data: bytes) -> int | None:
    """The offset of the first byte that is not UTF-8 text (a NUL counts), or None."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        nul = data.find(b"\x00", 0, error.start)
        return nul if nul >= 0 else error.start
    nul = data.find(b"\x00")
    return nul if nul >= 0 else None


def read_source(path: str | os.PathLike[str], display: str | None = None, *,
                regular_only: bool = False) -> tuple[Source, list[Diagnostic]]:
    """Read a policy or suite file within the size limit (`files.read_bounded`) and decode it.

    Raises OSError when the file cannot be read (with `regular_only`, NotARegularFile for a
    device, FIFO or socket).
    """
    data, size = read_bounded(path, MAX_SOURCE_BYTES, regular_only=regular_only)
    return decode_source(data, os.fspath(path) if display is None else display, size)


def only_comments(text: str) -> bool:
    """Whether the text (of a `Source`: its lines end at `\\n`) holds nothing but comments and
    white space."""
    return all(not line.strip() or line.lstrip().startswith("#") for line in text.split("\n"))


class TreeBuilder:
    """Turns the Lark tree into AST nodes, collecting diagnostics for bad literals.

    Public so that other grammars sharing the policy grammar's rules can reuse it: the scenario
    suite parser (`sentra_lang.testing.suite_parser`) subclasses it for conditions, strings and
    literals. Its methods take trees of `grammar.lark`'s rules.
    """

    def __init__(self, source: Source, offset: int = 0) -> None:
        self.source = source
        self.offset = offset
        """Where the parsed text starts in the source (a condition inside a suite)."""
        self.diagnostics: list[Diagnostic] = []

    # -- spans
    def span(self, node: Node) -> Span:
        if isinstance(node, Token):
            start, end = node.start_pos or 0, node.end_pos or 0
        else:
            start, end = node.meta.start_pos, node.meta.end_pos
        return Span.of_offsets(self.source, start + self.offset, end + self.offset)

    # -- limits, checked on the concrete tree before the (recursive) building
    def too_deep(self, tree: Node) -> list[Diagnostic]:
        """SL013 for the first condition nested more than `MAX_NESTING` levels deep."""
        node = deepest(tree, _CONDITION_NESTING, MAX_NESTING)
        if node is None:
            return []
        return [diagnostic("SL013", f"condition nests more than {MAX_NESTING} levels deep",
                           self.span(node),
                           help="name parts of the condition with `let`, or flatten it "
                                "(`not not x` is `x`)")]

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

    def item_group_decl(self, tree: Node) -> ast.GroupDecl:
        lines: list[ast.GroupAgents | ast.Setting | ast.Limit] = []
        for child in tree.children[1:]:
            if child.data == "group_agents":
                lines.append(ast.GroupAgents(tuple(self.string(c) for c in child.children),
                                             span=self.span(child)))
            elif child.data == "group_limit":
                lines.append(self.limit(child))
            else:
                lines.append(self.setting(child))
        return ast.GroupDecl(self.name(tree.children[0]), tuple(lines), span=self.span(tree))

    def setting(self, tree: Node) -> ast.Setting:
        name = self.name(tree.children[0].children[0])
        value_tree = tree.children[1]
        value: ast.SettingValue
        if isinstance(value_tree, Token) and value_tree.type == "DURATION":
            value = ast.Duration(str(value_tree), span=self.span(value_tree))
        elif isinstance(value_tree, Token):
            value = self.name(value_tree)
        elif value_tree.data == "normalize":
            value = self.normalize(value_tree)
        elif value_tree.data == "rate":
            value = self.rate(value_tree)
        else:
            value = self.literal(value_tree)
        return ast.Setting(name, value, span=self.span(tree))

    def rate(self, tree: Node) -> ast.Rate:
        """`AMOUNT per DURATION`; a period written as a name or a bare number is kept as
        written, for the checker to say what a duration is."""
        number, period = tree.children[0].children[0], tree.children[1]
        amount = ast.Num(self.number(str(number), self.span(number)), span=self.span(number))
        token = period if isinstance(period, Token) else period.children[0]
        return ast.Rate(amount, ast.Duration(str(token), span=self.span(token)),
                        span=self.span(tree))

    def limit(self, tree: Node) -> ast.Limit:
        """`limit [ACTION] N per DURATION` (the action only in a group)."""
        action = None
        if tree.children[0].data == "action_name":
            action = self.action_name(tree.children[0])
        return ast.Limit(self.rate(tree.children[-1]), action, span=self.span(tree))

    def action_name(self, tree: Node) -> ast.ActionName:
        token = tree.children[0]
        if isinstance(token, Token):
            return ast.ActionName(str(token), False, span=self.span(token))
        string = self.string(token)
        return ast.ActionName(string.value, True, span=string.span)

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
        limits = []
        for child in tree.children:
            if child.data == "action_name":
                names.append(self.action_name(child))
            elif child.data == "block_limit":
                limits.append(self.limit(child))
            else:
                rules.append(self.rule(child))
        return ast.ActionBlock(tuple(names), tuple(rules), tuple(limits), span=self.span(tree))

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
                value: ast.Num | ast.Name | ast.Str | ast.Rate | ast.Duration = self.literal(value_node)  # type: ignore[assignment]
                kind_name = "risk"
            elif child.data == "rule_id":
                value, kind_name = self.name(value_node), "id"
            elif child.data == "limit":
                value, kind_name = self.rate(value_node), "limit"
            elif child.data == "expires":   # a duration as written; the checker reads it
                token = value_node if isinstance(value_node, Token) else value_node.children[0]
                value, kind_name = ast.Duration(str(token), span=self.span(token)), "expires"
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
            return self.comparison(tree, span)
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
        if kind == "path":
            return ast.Ref(self.path(tree), span=span)
        if kind in _EXPRESSIONS:
            self.diagnostics.append(diagnostic(
                "SL204", f"`{' '.join(span.text.split())}` is a number, not a condition", span,
                help="compare it, for example `... > 0`"))
            return ast.Ref(ast.Path(("?",), span=span), span=span)
        raise AssertionError(f"unexpected condition node {kind}")

    def comparison(self, tree: Node, span: Span) -> ast.Compare | ast.ArithCompare:
        """`left op right`: a `Compare` of a field with a field or a literal, else an
        `ArithCompare` (arithmetic on a side, or a number on the left)."""
        left_tree, op, right_tree = tree.children
        left = self.expression(left_tree)
        right: ast.Expr | ast.Str | ast.Bool
        if right_tree.data in ("string", "boolean"):
            right = self.literal(right_tree)
        else:
            right = self.expression(right_tree)
        if isinstance(left, ast.Path) and isinstance(right, (ast.Path, ast.Num, ast.Str, ast.Bool)):
            return ast.Compare(left, str(op), right, span=span)
        return ast.ArithCompare(left, str(op), right, span=span)

    def expression(self, tree: Node) -> ast.Expr:
        """A number expression; a condition where a number belongs is SL220 (and `0`), and an
        expression whose operations nest more than `MAX_NESTING` deep is SL013 (and `0`):
        `a + b + c` is `(a + b) + c`, so a long chain nests as deep as it is long."""
        return self._expression(tree)[0]

    def _expression(self, tree: Node) -> tuple[ast.Expr, int]:
        """The expression and how deep its operations nest."""
        span = self.span(tree)
        kind = tree.data
        if kind == "path":
            return self.path(tree), 0
        if kind == "number":
            return self.literal(tree), 0  # type: ignore[return-value]
        if kind == "neg":
            operand, depth = self._expression(tree.children[1])
            if isinstance(operand, ast.Num):  # `- 5` is the number -5, as `-5` is
                return ast.Num(-operand.value, span=span), depth
            return self._deep_enough(ast.Neg(operand, span=span), depth + 1, span)
        if kind in ("sum", "product"):
            children = tree.children
            result, depth = self._expression(children[0])
            for index in range(1, len(children), 2):
                right, right_depth = self._expression(children[index + 1])
                last = index + 2 == len(children)
                whole = span if last else Span.of_offsets(self.source, result.span.start,
                                                          right.span.end)
                result, depth = self._deep_enough(
                    ast.BinOp(str(children[index]), result, right, span=whole),
                    max(depth, right_depth) + 1, span)
                if depth == 0:
                    return result, 0
            return result, depth
        self.diagnostics.append(diagnostic(
            "SL220", f"`{' '.join(span.text.split())}` is a condition, not a number", span,
            help="arithmetic (`+ - * /`) and comparisons take numbers: fields of type `int` or "
                 "`number`, and number literals"))
        return ast.Num(0, span=span), 0

    def _deep_enough(self, expr: ast.Expr, depth: int, span: Span) -> tuple[ast.Expr, int]:
        """`expr` when it nests at most `MAX_NESTING` deep; else SL013 (once) and `0`."""
        if depth <= MAX_NESTING:
            return expr, depth
        if not any(d.code == "SL013" for d in self.diagnostics):
            self.diagnostics.append(diagnostic(
                "SL013", f"arithmetic nests more than {MAX_NESTING} operations deep", span,
                help="`a + b + c` is `(a + b) + c`: split the computation, or compare fewer "
                     "terms"))
        return ast.Num(0, span=span), 0

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
        return ast.Num(self.number(str(token), span), span=span)

    def number(self, text: str, span: Span) -> int | float:
        """A number literal's value; over `MAX_NUMBER_DIGITS` digits is SL012 (and 0)."""
        digits = len(text) - text.count("-") - text.count(".")
        if digits > MAX_NUMBER_DIGITS:
            self.diagnostics.append(diagnostic(
                "SL012", f"number has {digits} digits, over the limit of {MAX_NUMBER_DIGITS}",
                span, help="policies compare with numbers of at most 100 digits"))
            return 0
        return float(text) if "." in text else int(text)

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
            if char != "\\":
                out.append(char)
                index += 1
                continue
            escaped = body[index + 1]
            if escaped == "u":
                code, index = self._code_point(body, index, span)
                out.append(code)
                continue
            if escaped not in _ESCAPES:
                self.diagnostics.append(diagnostic(
                    "SL008", f"invalid escape `\\{escaped}` in string", span,
                    help=ESCAPES_HELP))
            out.append(_ESCAPES.get(escaped, escaped))
            index += 2
        return "".join(out)

    def _code_point(self, body: str, index: int, span: Span) -> tuple[str, int]:
        """The character of the ``\\uXXXX`` escape at ``index`` (two of them for a character
        above U+FFFF, as JSON writes it), and the index after it; SL008 for fewer than four
        hex digits or half a pair."""
        digits = body[index + 2:index + 6]
        if not _HEX4.fullmatch(digits):
            given = _HEX_RUN.match(digits)
            self.diagnostics.append(diagnostic(
                "SL008", f"invalid escape `\\u{given.group() if given else ''}` in string", span,
                help=ESCAPES_HELP))
            return "", index + 2
        code = int(digits, 16)
        if 0xD800 <= code < 0xDC00 and body[index + 6:index + 8] == "\\u" \
                and _HEX4.fullmatch(low := body[index + 8:index + 12]) \
                and 0xDC00 <= int(low, 16) < 0xE000:
            return chr(0x10000 + ((code - 0xD800) << 10) + int(low, 16) - 0xDC00), index + 12
        if 0xD800 <= code < 0xE000:
            self.diagnostics.append(diagnostic(
                "SL008", f"invalid escape `\\u{digits}` in string: half of a surrogate pair",
                span, help=ESCAPES_HELP))
            return "", index + 6
        return chr(code), index + 6


def deepest(tree: Node, kinds: frozenset[str], limit: int) -> Node | None:
    """The first node of `kinds` nested more than `limit` deep in others of `kinds`, or None.

    Iterative, so a tree of any depth is measured without recursion.
    """
    stack: list[tuple[Node, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, Tree):
            continue
        if node.data in kinds:
            depth += 1
            if depth > limit:
                return node
        stack.extend((child, depth) for child in reversed(node.children))
    return None
