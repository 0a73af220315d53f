"""The canonical layout of `.sentra` source: `sentra-lang fmt`.

The layout is a function of the AST: one setting, field or rule per line, clauses in a fixed
order, minimal parentheses, lines broken only past `MAX_WIDTH`. Comments are trivia the AST
keeps aside (`Module.comments`); they are put back by source offset: a comment on its own line
goes before the construct that follows it, a comment after code stays trailing on that
construct's last line, and a comment inside a construct (say, a multi-line condition) moves
before it. Blank lines between members are kept (at most one); top-level items of different
kinds are always one blank line apart.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sentra_runtime.arith import expression_text, number_text

from sentra_lang import ast
from sentra_lang.arithmetic import from_ast
from sentra_lang.diagnostics import INVISIBLE_CHARACTERS, Diagnostic, has_errors, json_escape
from sentra_lang.parser import parse

MAX_WIDTH = 100
INDENT = "  "
CLAUSE_ORDER = ("risk", "id", "limit", "threat", "reason", "description", "expires")
_TAIL_CLAUSES = ("reason", "description", "expires")
_SHORT_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_TO_ESCAPE = re.compile(f'[\\\\"\t{INVISIBLE_CHARACTERS}]')
"""What a string is written with an escape for: the quote and the backslash, and every character
a terminal or an editor would act on or hide (`INVISIBLE_CHARACTERS`: control characters,
line separators, bidirectional controls (Trojan Source) and the characters drawn as nothing),
so that the formatted text shows what it holds."""

# Binding strength, loosest first: or < and < not < atom.
_PRECEDENCE_OR, _PRECEDENCE_AND, _PRECEDENCE_NOT, _PRECEDENCE_ATOM = 1, 2, 3, 4


def format_source(text: str, path: str = "<string>") -> tuple[str | None, list[Diagnostic]]:
    """Format source text. Returns None for the text when it does not parse cleanly."""
    module, diagnostics = parse(text, path)
    if module is None or has_errors(diagnostics):
        return None, diagnostics
    return format_module(module), diagnostics


def format_module(module: ast.Module) -> str:
    """The canonical text of a module, its comments kept (a module built by hand has none)."""
    printer = _Printer(module)
    printer.module(module.items)
    return printer.text()


# -------------------------------------------------------------------------------- leaves

def format_string(value: str) -> str:
    """``value`` as a string literal, read back as ``value`` (docs/language.md, "Strings")."""
    return '"' + _TO_ESCAPE.sub(_escaped, value) + '"'


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    return _SHORT_ESCAPES.get(char) or json_escape(char)


def format_number(value: int | float) -> str:
    return number_text(value)


def format_literal(literal: ast.Str | ast.Num | ast.Bool | ast.SetLit) -> str:
    if isinstance(literal, ast.Str):
        return format_string(literal.value)
    if isinstance(literal, ast.Bool):
        return "true" if literal.value else "false"
    if isinstance(literal, ast.SetLit):
        return "{" + ", ".join(format_string(item.value) for item in literal.items) + "}"
    return format_number(literal.value)


def _normalize(normalize: ast.Normalize) -> str:
    return "normalize " + ", ".join(step.value for step in normalize.steps)


def _type(type_ref: ast.TypeRef) -> str:
    if type_ref.kind == "enum":
        return "enum {" + ", ".join(format_string(value.value) for value in type_ref.values) + "}"
    if type_ref.kind == "set":
        return f"set<{type_ref.name.value}>"
    return type_ref.name.value


def format_field(field: ast.FieldDecl) -> str:
    text = f"{field.path.dotted}: {_type(field.type)}" + ("?" if field.optional else "")
    if field.normalize is not None:
        text += " " + _normalize(field.normalize)
    if field.default is not None:
        text += " = " + format_literal(field.default)
    return text


def _group_line(line: ast.GroupAgents | ast.Setting | ast.Limit) -> str:
    if isinstance(line, ast.Setting):
        return _setting(line)
    if isinstance(line, ast.Limit):
        return format_limit(line)
    return "agents " + ", ".join(format_string(p.value) for p in line.patterns)


def _rate(rate: ast.Rate) -> str:
    return f"{format_literal(rate.amount)} per {rate.period.text}"


def format_limit(limit: ast.Limit) -> str:
    """`limit N per D`, or in a group `limit ACTION N per D`."""
    action = "" if limit.action is None else format_action_name(limit.action) + " "
    return f"limit {action}{_rate(limit.rate)}"


def _setting(setting: ast.Setting) -> str:
    value = setting.value
    if isinstance(value, ast.Normalize):
        shown = _normalize(value)
    elif isinstance(value, ast.Name):
        shown = value.value
    elif isinstance(value, ast.Rate):
        shown = _rate(value)
    elif isinstance(value, ast.Duration):
        shown = value.text
    else:
        shown = format_literal(value)
    return f"{setting.name.value} {shown}"


def format_action_name(name: ast.ActionName) -> str:
    """An action name as the source writes it: quoted when it was quoted."""
    return format_string(name.value) if name.quoted else name.value


# ---------------------------------------------------------------------------- conditions

def _precedence(cond: ast.Condition) -> int:
    if isinstance(cond, ast.Or):
        return _PRECEDENCE_OR
    if isinstance(cond, ast.And):
        return _PRECEDENCE_AND
    if isinstance(cond, ast.Not):
        return _PRECEDENCE_NOT
    return _PRECEDENCE_ATOM


def _operand(cond: ast.Condition, tighter_than: int) -> str:
    """`cond` as an operand of an operator of precedence `tighter_than`, parenthesised if needed."""
    text = format_condition(cond)
    return f"({text})" if _precedence(cond) <= tighter_than else text


def format_condition(cond: ast.Condition) -> str:
    """A condition on one line, with the fewest parentheses that keep its tree."""
    if isinstance(cond, (ast.And, ast.Or)):
        word, precedence = _junction(cond)
        return f" {word} ".join(_operand(operand, precedence) for operand in cond.operands)
    if isinstance(cond, ast.Not):
        operand = cond.operand
        text = format_condition(operand)
        return f"not ({text})" if _precedence(operand) < _PRECEDENCE_NOT else f"not {text}"
    return _atom(cond)


def _junction(cond: ast.And | ast.Or) -> tuple[str, int]:
    return ("and", _PRECEDENCE_AND) if isinstance(cond, ast.And) else ("or", _PRECEDENCE_OR)


def _atom(cond: ast.Condition) -> str:
    if isinstance(cond, ast.Compare):
        right = cond.right.dotted if isinstance(cond.right, ast.Path) else format_literal(cond.right)
        return f"{cond.left.dotted} {cond.op} {right}"
    if isinstance(cond, ast.ArithCompare):
        right = (format_literal(cond.right) if isinstance(cond.right, (ast.Str, ast.Bool))
                 else format_expression(cond.right))
        return f"{format_expression(cond.left)} {cond.op} {right}"
    if isinstance(cond, ast.Membership):
        target = cond.set.value if isinstance(cond.set, ast.Name) else format_literal(cond.set)
        return f"{cond.path.dotted} {'not in' if cond.negated else 'in'} {target}"
    if isinstance(cond, ast.StringTest):
        return f"{cond.path.dotted} {cond.op} {format_string(cond.value.value)}"
    if isinstance(cond, ast.Exists):
        return f"exists {cond.path.dotted}"
    if isinstance(cond, ast.Ref):
        return cond.path.dotted
    raise TypeError(f"not a condition: {cond!r}")


def format_expression(expr: ast.Expr) -> str:
    """A number expression with the fewest parentheses that keep its tree (`a - (b - c)` keeps
    them: number arithmetic is not associative)."""
    return expression_text(from_ast(expr))


def _condition_lines(prefix: str, cond: ast.Condition, continuation: str) -> list[str]:
    """`prefix + cond`, broken before each top-level `and`/`or` when it is too wide."""
    line = prefix + format_condition(cond)
    if len(line) <= MAX_WIDTH or not isinstance(cond, (ast.And, ast.Or)):
        return [line]
    word, precedence = _junction(cond)
    first, *rest = (_operand(operand, precedence) for operand in cond.operands)
    return [prefix + first] + [f"{continuation}{word} {operand}" for operand in rest]


# ------------------------------------------------------------------------------ outcomes

def _ordered_clauses(outcome: ast.Outcome) -> list[ast.Clause]:
    return sorted(outcome.clauses, key=lambda clause: CLAUSE_ORDER.index(clause.kind))


def _clause(clause: ast.Clause) -> str:
    value = clause.value
    if clause.kind == "risk":
        assert isinstance(value, ast.Num)
        return "risk " + format_number(value.value)
    if clause.kind == "id":
        assert isinstance(value, ast.Name)
        return "as " + value.value
    if clause.kind == "limit":
        assert isinstance(value, ast.Rate)
        return "limit " + _rate(value)
    if clause.kind == "expires":
        assert isinstance(value, ast.Duration)
        return "expires " + value.text
    assert isinstance(value, ast.Str)
    text = format_string(value.value)
    return text if clause.kind == "reason" else f"{clause.kind} {text}"


def _outcome_lines(prefix: str, outcome: ast.Outcome, tail_indent: str) -> list[str]:
    """The outcome on one line if it fits, else its head, then reason and description below."""
    clauses = _ordered_clauses(outcome)
    head = " ".join([outcome.kind] + [_clause(c) for c in clauses if c.kind not in _TAIL_CLAUSES])
    tail = [_clause(c) for c in clauses if c.kind in _TAIL_CLAUSES]
    line = " ".join([prefix + head] + tail)
    if len(line) <= MAX_WIDTH:
        return [line]
    return [prefix + head] + [tail_indent + text for text in tail]


def rule_lines(rule: ast.Rule, indent: str) -> list[str]:
    """A rule at `indent`: one line, else `when` then the outcome, else the outcome broken too."""
    if rule.when is None:
        return _outcome_lines(indent, rule.outcome, indent + INDENT)
    inner = indent + INDENT
    single = _outcome_lines("", rule.outcome, "")
    if len(single) == 1:
        line = f"{indent}when {format_condition(rule.when)} {single[0]}"
        if len(line) <= MAX_WIDTH:
            return [line]
    when = _condition_lines(indent + "when ", rule.when, inner + INDENT)
    return when + _outcome_lines(inner, rule.outcome, inner + INDENT)


# ------------------------------------------------------------------------------ printing

@dataclass(frozen=True)
class _Unit:
    """Output lines standing for the source range [start, end)."""

    start: int
    end: int
    lines: Sequence[str]


class _Printer:
    """Emits units in order, putting each comment back next to the unit it belongs to."""

    def __init__(self, module: ast.Module) -> None:
        self.source = module.span.source.text
        self.comments = sorted(module.comments, key=lambda comment: comment.span.start)
        self.next_comment = 0
        self.lines: list[str] = []
        self.last_end = 0

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    # -- items
    def module(self, items: Sequence[ast.Item]) -> None:
        previous: ast.Item | None = None
        for item in items:
            if previous is None:
                separation = "none"
            elif type(item) is type(previous) and isinstance(item, (ast.Let, ast.Import)):
                separation = "keep"
            else:
                separation = "force"
            self.item(item, separation)
            previous = item
        self.comments_before(len(self.source) + 1, "", drop_first_blank=not self.lines)

    def item(self, item: ast.Item, separation: str) -> None:
        if isinstance(item, ast.PolicyDecl):
            version = f" version {format_string(item.version.value)}" if item.version else ""
            after = item.version.span.end if item.version else item.name.span.end
            members = [_Unit(s.span.start, s.span.end, [INDENT + _setting(s)]) for s in item.settings]
            self.block(item, f"policy {item.name.value}{version}", after, members, separation)
        elif isinstance(item, ast.GroupDecl):
            members = [_Unit(line.span.start, line.span.end, [INDENT + _group_line(line)])
                       for line in item.lines]
            self.block(item, f"group {item.name.value}", item.name.span.end, members, separation)
        elif isinstance(item, ast.InputBlock):
            members = [_Unit(f.span.start, f.span.end, [INDENT + format_field(f)]) for f in item.fields]
            self.block(item, "input", item.span.start + len("input"), members, separation)
        elif isinstance(item, ast.ActionBlock):
            names = ", ".join(format_action_name(name) for name in item.names)
            members = [_Unit(limit.span.start, limit.span.end, [INDENT + format_limit(limit)])
                       for limit in item.limits]
            members += [_Unit(r.span.start, r.span.end, rule_lines(r, INDENT)) for r in item.rules]
            self.block(item, f"action {names}", item.names[-1].span.end, members, separation)
        else:
            self.emit(_Unit(item.span.start, item.span.end, _simple_item_lines(item)), "",
                      separation=separation)

    def block(self, item: ast.Item, head: str, head_end: int, members: list[_Unit],
              separation: str) -> None:
        """`head {`, the members indented, `}`; `head {}` when there is nothing inside."""
        open_end = self.brace_after(head_end)
        close_start = max(item.span.end - 1, open_end)
        if not members and not self.has_comment(open_end, close_start):
            self.emit(_Unit(item.span.start, item.span.end, [head + " {}"]), "", separation=separation)
            return
        self.emit(_Unit(item.span.start, open_end, [head + " {"]), "", separation=separation)
        for index, member in enumerate(members):
            self.emit(member, INDENT, separation="none" if index == 0 else "keep")
        self.emit(_Unit(close_start, item.span.end, ["}"]), INDENT,
                  separation="none" if not members else "keep", drop_last_blank=True)

    def brace_after(self, offset: int) -> int:
        """The offset just past the `{` that follows `offset`, skipping blanks and comments."""
        text = self.source
        while offset < len(text):
            char = text[offset]
            if char == "{":
                return offset + 1
            if char == "#":
                newline = text.find("\n", offset)
                offset = len(text) if newline < 0 else newline
            else:
                offset += 1
        return offset

    def has_comment(self, start: int, end: int) -> bool:
        return any(start <= comment.span.start < end for comment in self.comments)

    # -- units and comments
    def emit(self, unit: _Unit, comment_indent: str, *, separation: str,
             drop_last_blank: bool = False) -> None:
        """Emit the comments before (and inside) `unit`, then the unit's lines."""
        blank = self.comments_before(unit.start, comment_indent, unit_end=unit.end,
                                     drop_first_blank=separation == "none",
                                     force_blank=separation == "force")
        if blank and not drop_last_blank:
            self.blank()
        self.lines.extend(unit.lines)
        self.last_end = max(unit.end, self.last_end)

    def comments_before(self, start: int, indent: str, *, unit_end: int | None = None,
                        drop_first_blank: bool = False, force_blank: bool = False) -> bool:
        """Emit the comments before offset `start` (and inside the unit up to `unit_end`).

        Returns whether a blank line separates the last of them from the unit, so the caller
        can drop it before a closing brace.
        """
        end = start if unit_end is None else unit_end
        position = self.last_end
        first = True
        while self.next_comment < len(self.comments):
            comment = self.comments[self.next_comment]
            if comment.span.start >= end:
                break
            self.next_comment += 1
            text = comment.text.rstrip()
            if comment.span.start < start and self.lines and self.same_line(self.last_end, comment.span.start):
                self.lines[-1] += "  " + text
                position = comment.span.end
                continue
            inside = comment.span.start >= start
            blank = not inside and self.blank_between(position, comment.span.start)
            if first:
                blank = (blank or force_blank) and not drop_first_blank
                force_blank = False
            if blank:
                self.blank()
            self.lines.append(indent + text)
            first = False
            if not inside:
                position = comment.span.end
        if first:
            return (force_blank or self.blank_between(position, start)) and not drop_first_blank
        return self.blank_between(position, start)

    def same_line(self, start: int, end: int) -> bool:
        return start <= end and "\n" not in self.source[start:end]

    def blank_between(self, start: int, end: int) -> bool:
        return start <= end and self.source.count("\n", start, end) >= 2

    def blank(self) -> None:
        if self.lines and self.lines[-1] != "":
            self.lines.append("")


def _simple_item_lines(item: ast.Item) -> list[str]:
    if isinstance(item, ast.Import):
        return [f"import {format_string(item.path.value)}"]
    if isinstance(item, ast.Otherwise):
        return _outcome_lines("otherwise ", item.outcome, INDENT)
    assert isinstance(item, ast.Let)
    prefix = f"let {item.name.value} = "
    if isinstance(item.value, ast.SetLit):
        return [prefix + format_literal(item.value)]
    return _condition_lines(prefix, item.value, INDENT)
