"""Hover texts (Markdown): a field's type, presence, default and normalisation; a rule's
outcome, risk and threat; a `let`, an action, an imported file, a suite's runtime rule ids.

Declarations are shown as the formatter prints them, so a hover reads like the canonical source.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sentra_lang import ast
from sentra_lang.diagnostics import visible
from sentra_lang.files import real_path
from sentra_lang.formatter import (
    format_condition,
    format_field,
    format_literal,
    format_string,
    rule_lines,
)
from sentra_lang.lsp.symbols import ActionDef, PolicyIndex, RuleDef, field_type
from sentra_lang.source import Span

RUNTIME_RULES = {
    "RISK_THRESHOLD_EXCEEDED": "Blocked: an `allow` rule would put the agent's cumulative risk "
                               "above the threshold.",
    "INVALID_INPUT": "Blocked: the input does not fit the declared field types.",
    "UNDECLARED_FIELD": "Blocked: the input has a field the policy does not declare (the policy "
                        "refuses undeclared fields).",
    "UNKNOWN_ACTION": "Blocked: no block names the action and the policy has no `otherwise`.",
    "NO_RULE_MATCHED": "Blocked: the action's block has no matching rule and the policy has no "
                       "`otherwise`.",
    "ARITHMETIC_ERROR": "Blocked: a rule's arithmetic divided by zero or overflowed, and the rest "
                        "of its condition did not decide it.",
    "RATE_LIMIT_EXCEEDED": "Blocked: an `allow` rule's decision would go over a rate limit (the "
                           "rule's, its block's or the agent's group's); a strike.",
    "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS": "Agent Shut Down: this block brought the agent's "
                                            "blocked attempts to the policy's `strikes`.",
    "AGENT_ALREADY_SHUT_DOWN": "Agent Shut Down: the agent was already shut down; no rule ran.",
}
"""The ids the runtime decides with itself (a suite may expect them); see docs/runtime.md."""

_OUTCOME_RISK = {
    "allow": "risk {risk}, added to the agent's cumulative risk",
    "block": "risk {risk}, attempted and recorded, never applied",
    "shutdown": "risk {risk}, never applied",
    "review": "risk {risk}, applied only when an operator approves the ticket",
}


def _code(text: str) -> str:
    """A `sentra` code block that no backtick run inside `text` can close."""
    fence = "`" * max(3, _longest_backtick_run(text) + 1)
    return f"{fence}sentra\n{text}\n{fence}"


def _inline(text: str) -> str:
    """`text` of the policy (a name, a string, a path) as a Markdown code span it cannot
    leave: a backtick inside takes a longer fence, control characters and line breaks are
    escapes, so no link, heading or emphasis in a policy reaches the editor's hover."""
    shown = visible(text)
    fence = "`" * (_longest_backtick_run(shown) + 1)
    pad = " " if shown[:1] in ("`", " ") or shown[-1:] in ("`", " ") else ""
    return f"{fence}{pad}{shown}{pad}{fence}"


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)


def _where(span: Span, here: str) -> str | None:
    """"declared in FILE, line N" for a declaration in another file than `here`."""
    if span.path == here:
        return None
    return f"*declared in {_inline(os.path.basename(span.path))}, line {span.line}*"


def _join(parts: list[str | None]) -> str:
    return "\n\n".join(part for part in parts if part)


def field_hover(decl: ast.FieldDecl, here: str) -> str:
    kind = decl.type.kind
    type_name = field_type(decl)
    if decl.default is not None:
        presence = f"default {_inline(format_literal(decl.default))} when the input leaves it out"
    elif decl.optional:
        presence = "optional: may be missing (test it with `exists`)"
    else:
        presence = "required: an action without it is blocked as `INVALID_INPUT`"
    lines = [f"**field** `{decl.path.dotted}`: `{type_name}`, {presence}"]
    if kind == "enum":
        lines.append("values: " + ", ".join(_inline(format_literal(v)) for v in decl.type.values))
    if decl.normalize is not None:
        steps = ", ".join(step.value for step in decl.normalize.steps)
        lines.append(f"normalised before matching: {steps}")
    return _join([_code(format_field(decl)), "  \n".join(lines), _where(decl.path.span, here)])


def let_hover(let: ast.Let, here: str) -> str:
    value = let.value
    if isinstance(value, ast.SetLit):
        shown = format_literal(value)
        what = f"**set** `{let.name.value}` of {len(value.items)} strings (for `in`)"
    else:
        shown = format_condition(value)
        what = f"**named condition** `{let.name.value}`"
    return _join([_code(f"let {let.name.value} = {shown}"), what, _where(let.name.span, here)])


def rule_hover(rule: RuleDef, here: str) -> str:
    outcome = rule.outcome
    risk = rule_risk(outcome)
    threat = _text(outcome, "threat")
    summary = [f"**rule** `{rule.id or '(no id)'}`: **{outcome.kind}**",
               _OUTCOME_RISK[outcome.kind].format(risk=risk) if risk or outcome.kind == "allow"
               else None,
               f"threat {_inline(format_string(threat))}" if threat else None]
    scope = ("action " + ", ".join(_inline(name) for name in rule.actions) if rule.actions
             else "`otherwise`: every action type no block names")
    lines = [", ".join(part for part in summary if part), scope]
    if rule.generated and rule.id:
        lines.append(f"id generated by the checker; add `as {rule.id}` to keep it stable")
    source = "\n".join(rule_lines(ast.Rule(rule.when, outcome), "")) if rule.actions else \
        "\n".join(rule_lines(ast.Rule(None, outcome), "otherwise "))
    return _join([_code(source), "  \n".join(lines), _where(rule.span, here)])


def rule_risk(outcome: ast.Outcome) -> int | float:
    """The risk an outcome states (0 when it states none)."""
    clause = outcome.clause("risk")
    return clause.value.value if clause is not None and isinstance(clause.value, ast.Num) else 0


def _text(outcome: ast.Outcome, kind: str) -> str | None:
    clause = outcome.clause(kind)
    return clause.value.value if clause is not None and isinstance(clause.value, ast.Str) else None


def action_hover(action: ActionDef, index: PolicyIndex, here: str) -> str:
    names = ", ".join(_action_name(name.value) for name in action.block.names)
    starts = {rule.span.start for rule in action.block.rules}
    rules = [rule for rule in index.rules if rule.span.start in starts]
    lines = [f"- `{rule.id or '(no id)'}`: {rule.outcome.kind}"
             + (f", risk {rule_risk(rule.outcome)}" if rule_risk(rule.outcome) else "")
             for rule in rules]
    head = (f"**action** {_inline(action.name)}, decided by the block {_inline('action ' + names)}"
            " (first match wins)")
    return _join([head, "\n".join(lines), _where(action.span, here)])


def _action_name(name: str) -> str:
    """An action name as the source writes it: bare when it is a name, else quoted."""
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) else format_string(name)


def unknown_action_hover(name: str, index: PolicyIndex) -> str:
    fallback = next((rule for rule in index.rules if not rule.actions), None)
    if fallback is None:
        return (f"**action** {_inline(name)} is named by no block and the policy has no "
                "`otherwise`: "
                "it is blocked as `UNKNOWN_ACTION`")
    return (f"**action** {_inline(name)} is named by no block: `otherwise` decides it "
            f"(`{fallback.id}`)")


def import_hover(target: Path, index: PolicyIndex) -> str:
    if not target.is_file():
        return f"**import** {_inline(str(target))}: no such file"
    fields = [name for name, decl in index.fields.items() if _is(decl.span, target)]
    lets = [name for name, let in index.lets.items() if _is(let.span, target)]
    lines = [f"**import** {_inline(str(target))}"]
    if fields:
        lines.append("fields: " + ", ".join(f"`{name}`" for name in fields))
    if lets:
        lines.append("lets: " + ", ".join(f"`{name}`" for name in lets))
    return "  \n".join(lines)


def _is(span: Span, path: Path) -> bool:
    return real_path(span.path) == path


def runtime_rule_hover(rule_id: str) -> str:
    return f"**runtime rule** `{rule_id}`: {RUNTIME_RULES[rule_id]}"


def policy_file_hover(path: Path, index: PolicyIndex | None) -> str:
    if index is None:
        return f"**policy** {_inline(str(path))}: cannot be read or does not compile"
    return (f"**policy** {_inline(str(path))}: {len(index.rules)} rules, {len(index.actions)} action names, "
            f"{len(index.fields)} fields")
