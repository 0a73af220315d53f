"""Check a suite against its policy: names, types and expectations that can never hold.

Every problem is reported at once, each with its span in the suite file.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sentra_runtime.decider import INVALID_INPUT_ID, UNDECLARED_FIELD_ID
from sentra_runtime.inputs import Problem

from sentra_lang import ast
from sentra_lang.checker import duration_problem, expression_paths
from sentra_lang.diagnostics import Diagnostic, diagnostic, did_you_mean
from sentra_lang.testing import suite_ast as s
from sentra_lang.testing.policies import SPECIAL_BLOCKS, SPECIAL_IDS, PolicyUnderTest

STATUSES = ("active", "shut_down")
MAX_EXAMPLES = 10_000
_RULE_DECISION = {"allow": "allowed", "block": "blocked", "shutdown": "shutdown",
                  "review": "review"}
TICKET_STATUSES = ("pending", "approved", "blocked", "denied", "expired", "cancelled")
"""What `ticket REF -> STATUS` may expect (sentra_runtime.review.STATUSES)."""


def check_suite(suite: s.Suite, put: PolicyUnderTest) -> list[Diagnostic]:
    return _Checker(suite, put).run()


def item_names(item: s.Item) -> list[tuple[str, Any]]:
    """The test names an item yields, with the span of each: cases rows are `name[1]`, ..."""
    if isinstance(item, s.Cases):
        return [(f"{item.name}[{index}]", row.span) for index, row in enumerate(item.rows, 1)]
    return [(item.name, item.name_span)]


class _Checker:
    def __init__(self, suite: s.Suite, put: PolicyUnderTest) -> None:
        self.suite = suite
        self.put = put
        self.diagnostics: list[Diagnostic] = []
        assert put.policy is not None
        self.threshold = max([put.policy.risk_threshold,
                              *(g.risk_threshold or 0 for g in put.policy.groups)])
        """The highest threshold any agent has (a group's may be above the header's)."""
        self.strikes = max([put.policy.strikes, *(g.strikes or 0 for g in put.policy.groups)])
        """The most strikes any agent has before its shutdown (a group's may be above the
        header's)."""
        self.groups = [group.name for group in put.policy.groups]

    def report(self, code: str, message: str, span: Any, **kwargs: Any) -> None:
        self.diagnostics.append(diagnostic(code, message, span, **kwargs))

    def run(self) -> list[Diagnostic]:
        seen: dict[str, Any] = {}
        self.fields(self.suite.defaults)
        for item in self.suite.items:
            for name, span in item_names(item):
                if name in seen:
                    self.report("SL507", f"a test named {name!r} is already defined", span,
                                help=f"first defined at {seen[name]}")
                else:
                    seen[name] = span
            getattr(self, f"item_{type(item).__name__.lower()}")(item)
        return self.diagnostics

    # -- fields and values
    def fields(self, values: Iterable[s.FieldValue], expect: s.Expectation | None = None) -> None:
        given: set[str] = set()
        for fv in values:
            if fv.path in given:
                self.report("SL510", f"field `{fv.path}` is set twice", fv.path_span)
            given.add(fv.path)
            self.value(fv.path, fv.path_span, fv.value, expect)

    def field_known(self, path: str, span: Any) -> bool:
        if path in self.put.fields:
            return True
        self.report("SL502", f"field `{path}` is not declared by policy "
                    f"`{self.put.table['policy']['name']}`", span,
                    help=did_you_mean(path, self.put.fields)
                    or "a step that means to send it expects `rule UNDECLARED_FIELD`")
        return False

    def value(self, path: str, path_span: Any, value: s.Value,
              expect: s.Expectation | None) -> None:
        rule = expect.get("rule") if expect is not None else None
        expected = rule.value if rule is not None else None
        if path not in self.put.fields and expected == UNDECLARED_FIELD_ID:
            return  # the step tests the refusal of an undeclared field
        if not self.field_known(path, path_span) or value.omitted:
            return
        spec = self.put.fields[path]
        assert self.put.policy is not None
        checked = self.put.policy.input_schema.check_field(path, value.value)
        if checked.__class__ is not Problem:  # the value fits, as the runtime reads it
            return
        if expected == INVALID_INPUT_ID:
            return
        wanted = f"one of {', '.join(spec.values or [])}" if spec.type == "enum" else spec.type
        self.report("SL506", f"`{path}` is declared `{spec.type}`; this value is not {wanted}",
                    value.span, help="the runtime blocks it as INVALID_INPUT; expect "
                    "`rule INVALID_INPUT` if that is the point")

    # -- actions and expectations
    def action(self, action: str, span: Any, quoted: bool) -> None:
        if quoted or self.put.normalize_action(action) in self.put.blocks:
            return
        hint = did_you_mean(self.put.normalize_action(action), self.put.blocks)
        if hint is not None:
            self.report("SL505", f"no action block names `{action}`: the `otherwise` rule "
                        "decides it", span, help=hint + " (quote the name if this is intended)")

    def expectation(self, expect: s.Expectation, action: str | None, *,
                    verdict: bool = False) -> None:
        """Check an expectation; ``verdict``: of an operator's verdict (whose decision names
        the review rule, but is never `review`)."""
        decision = expect.decision
        capture = expect.get("ticket")
        if capture is not None and (decision != "review" or verdict):
            self.report("SL509", "`as NAME` names a review ticket: only a `review` decision "
                        "makes one", capture.span,
                        help="expect `-> review ... as NAME`, or remove the `as` clause")
        if verdict and decision == "review":
            self.report("SL504", "an operator's verdict is never `review`", expect.span,
                        help="an approval is `allowed` (or `blocked` / `shutdown` when the "
                             "agent cannot take it now); a denial is `blocked` or `shutdown`")
            return
        rule_clause = expect.get("rule")
        rule = None
        if rule_clause is not None:
            rule = rule_clause.value
            if rule not in self.put.rules and rule not in SPECIAL_IDS:
                self.report("SL503", f"no rule `{rule}` in policy "
                            f"`{self.put.table['policy']['name']}`", rule_clause.span,
                            help=did_you_mean(rule, [*self.put.rules, *SPECIAL_IDS]))
                rule = None
        if (verdict and rule in self.put.rules
                and self.put.rules[rule].outcome == "review"):
            rule = None   # a verdict's decision carries the review rule's id, as any decision
        if rule is not None and rule_clause is not None and decision is not None:
            self.rule_fits(decision, rule, rule_clause, action)
        for clause in expect.clauses:
            self.clause(clause, decision, rule)

    def rule_fits(self, decision: str, rule: str, clause: s.Clause, action: str | None) -> None:
        if rule in self.put.rules:
            outcome = self.put.rules[rule].outcome
            if _RULE_DECISION[outcome] != decision:
                becomes = {"allow": "it allows, or blocks as RISK_THRESHOLD_EXCEEDED",
                           "block": "it blocks, or shuts down as "
                                    "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS",
                           "shutdown": "it shuts the agent down",
                           "review": "it holds the action for review: `review`; an "
                                     "operator's verdict on it is `allowed` or `blocked`"}[outcome]
                self.report("SL504", f"`{rule}` is {'an' if outcome == 'allow' else 'a'} "
                            f"{outcome} rule: a decision by it is never `{decision}`",
                            clause.span, help=becomes)
            if action is not None:
                possible = self.put.rules_for(action)
                if rule not in possible:
                    self.report("SL504", f"`{rule}` never decides `{action}`", clause.span,
                                help=f"`{action}` is decided by "
                                     f"{', '.join(possible) or 'no rule'}")
            return
        wanted = "blocked" if rule in SPECIAL_BLOCKS else "shutdown"
        if decision != wanted:
            self.report("SL504", f"`{rule}` comes with a `{wanted}` decision, never "
                        f"`{decision}`", clause.span)

    def clause(self, clause: s.Clause, decision: str | None, rule: str | None) -> None:
        kind, value = clause.kind, clause.value
        if kind in ("risk", "applied", "projected", "cumulative", "strikes", "decayed") and (
                not isinstance(value, int) or value < 0):
            self.report("SL509", f"`{kind}` is a whole number, not negative", clause.span)
            return
        if kind == "reason_contains" and value == "":
            self.report("SL509", "`reason contains \"\"` holds for every reason: it checks "
                        "nothing", clause.span, help="give the text the reason must contain")
            return
        if kind == "group":
            groups = self.groups
            if value not in groups and value != "":
                self.report("SL509", f"the policy has no group `{value}`", clause.span,
                            help=did_you_mean(value, groups) or (
                                "groups: " + ", ".join(groups) + "; `\"\"` is no group"
                                if groups else "the policy declares no group"))
            return
        if kind == "status":
            if value not in STATUSES:
                self.report("SL509", f"status is `active` or `shut_down`, not `{value}`",
                            clause.span)
            elif decision is not None and (value == "shut_down") != (decision == "shutdown"):
                self.report("SL504", f"after a `{decision}` decision the status is "
                            f"{'shut_down' if decision == 'shutdown' else 'active'}",
                            clause.span)
        elif kind == "risk" and rule in self.put.rules and self.put.rules[rule].risk != value:
            self.report("SL504", f"`{rule}` attempts risk {self.put.rules[rule].risk}, "
                        f"never {value}", clause.span)
        elif kind == "applied" and decision not in (None, "allowed") and value != 0:
            self.report("SL504", f"a `{decision}` decision applies no risk", clause.span)
        elif kind in ("risk", "applied") and value > self.threshold:
            self.report("SL504", f"{'attempted' if kind == 'risk' else 'applied'} risk never "
                        f"exceeds the threshold {self.threshold}", clause.span,
                        help="no rule's risk is above `risk_threshold`")
        elif kind == "projected" and value > 2 * self.threshold:
            self.report("SL504", f"projected risk never exceeds {2 * self.threshold}, twice the "
                        f"threshold {self.threshold}", clause.span,
                        help="projected = cumulative (at most the threshold) + the rule's risk "
                             "(at most the threshold)")
        elif kind == "cumulative" and value > self.threshold:
            self.report("SL504", f"cumulative risk never exceeds the threshold "
                        f"{self.threshold}", clause.span)
        elif kind == "strikes" and (
                value > self.strikes or (decision == "blocked" and not 1 <= value < self.strikes)):
            self.report("SL504", f"with `strikes {self.strikes}` a `{decision or 'state'}` "
                        f"cannot have {value} blocked attempts", clause.span)

    # -- items
    def item_scenario(self, item: s.Scenario) -> None:
        self.fields(item.defaults)
        if not any(_checks(step) for step in item.steps):
            self.report("SL511", f"scenario `{item.name}` checks nothing: no step has an "
                        "expectation", item.name_span,
                        help="a step `agent \"ID\" ACTION -> ...`, `state \"ID\" -> ...` or "
                             "`ticket ... -> STATUS` says what the policy must decide")
        named: dict[str, Any] = {}
        """The tickets named (`as NAME`) by the steps so far, with where."""
        for step in item.steps:
            if isinstance(step, s.ActionStep):
                self.action(step.action, step.action_span, step.action_quoted)
                self.fields(step.fields, step.expect)
                self.expectation(step.expect, step.action)
                capture = step.expect.get("ticket")
                if capture is not None and capture.value in named:
                    self.report("SL509", f"ticket name `{capture.value}` is already given",
                                capture.span, help=f"first given at {named[capture.value]}; "
                                "give each ticket a name of its own")
                elif capture is not None:
                    named[capture.value] = capture.span
            elif isinstance(step, (s.VerdictStep, s.TicketStep)):
                self.ticket_step(step, named)
            elif isinstance(step, s.StateStep):
                for clause in step.expect.clauses:
                    self.clause(clause, None, None)
            elif isinstance(step, s.GroupStep):
                if step.group is not None and step.group not in self.groups:
                    self.report("SL509", f"the policy has no group `{step.group}`",
                                step.group_span,
                                help=did_you_mean(step.group, self.groups) or (
                                    "groups: " + ", ".join(self.groups) if self.groups
                                    else "the policy declares no group"))
            elif isinstance(step, s.AfterStep):
                problem, hint = duration_problem(step.duration)
                if problem is not None:
                    self.report("SL224", problem, step.duration_span,
                                help=hint or "a duration is a whole number and a unit: `s`, "
                                             "`m`, `h` or `d` (`30m`, `1h`, `7d`)")

    def ticket_step(self, step: s.VerdictStep | s.TicketStep, named: dict[str, Any]) -> None:
        """A verdict or a ticket check: its ticket was named earlier, its expectation fits."""
        ref = step.ticket
        if ref.name is not None and ref.name not in named:
            self.report("SL509", f"no ticket named `{ref.name}` before this step", ref.span,
                        help=did_you_mean(ref.name, named) or
                        "name a review decision's ticket with `-> review ... as NAME`, or say "
                        '`"AGENT" last ticket`')
        if isinstance(step, s.TicketStep):
            if step.status not in TICKET_STATUSES:
                self.report("SL509", f"`{step.status}` is no ticket status", step.status_span,
                            help=did_you_mean(step.status, TICKET_STATUSES)
                            or "statuses: " + ", ".join(TICKET_STATUSES))
        else:
            if not step.operator.strip():
                self.report("SL509", "a verdict needs the operator's name", step.span,
                            help='say who judges, e.g. `approve t by "alice"`: the name is '
                                 "recorded in the audit log")
            if step.expect is not None:
                self.expectation(step.expect, None, verdict=True)

    def item_cases(self, item: s.Cases) -> None:
        self.action(item.action, item.action_span, item.action_quoted)
        if not item.rows:
            self.report("SL511", f"cases `{item.name}` checks nothing: it has no rows",
                        item.name_span, help="each row is one test: its values, `->` and "
                                             "what the policy must decide")
        self.fields(item.defaults)
        for column, span in item.columns:
            self.field_known(column, span)
        if not item.columns and item.rows:
            self.report("SL508", "a `cases` table needs a `with` line naming its columns",
                        item.name_span, help="e.g. `with destination_type, data_classification`")
        for row in item.rows:
            if item.columns and len(row.values) != len(item.columns):
                self.report("SL508", f"row has {len(row.values)} values for "
                            f"{len(item.columns)} columns", row.span)
            for (column, span), value in zip(item.columns, row.values):
                if column in self.put.fields:
                    self.value(column, span, value, row.expect)
            self.expectation(row.expect, item.action)

    def item_property(self, item: s.Property) -> None:
        for action, span, quoted in item.actions:
            self.action(action, span, quoted)
        if item.examples is not None and not 1 <= item.examples <= MAX_EXAMPLES:
            self.report("SL509", f"`examples` is between 1 and {MAX_EXAMPLES}", item.span)
        if item.where is not None:
            self.condition(item.where)
        if item.target.kind == "rule":
            rule = item.target.value
            if rule not in self.put.rules and rule not in SPECIAL_IDS:
                self.report("SL503", f"no rule `{rule}` in policy "
                            f"`{self.put.table['policy']['name']}`", item.target.span,
                            help=did_you_mean(rule, [*self.put.rules, *SPECIAL_IDS]))
            elif rule in self.put.rules:
                self.rule_reaches(rule, item)

    def rule_reaches(self, rule: str, item: s.Property) -> None:
        """SL504 when no action of the property can be decided by `rule`: the property would
        hold (`never`) or fail (`always`) whatever the policy does."""
        possible = [r for action, _, _ in item.actions for r in self.put.rules_for(action)]
        if rule not in possible:
            actions = ", ".join(f"`{action}`" for action, _, _ in item.actions)
            self.report("SL504", f"`{rule}` never decides {actions}", item.target.span,
                        help=f"{actions} {'is' if len(item.actions) == 1 else 'are'} decided "
                             f"by {', '.join(dict.fromkeys(possible)) or 'no rule'}")

    def condition(self, cond: ast.Condition) -> None:
        lets = self.put.compilation.model.lets if self.put.compilation.model else {}
        if isinstance(cond, (ast.And, ast.Or)):
            for operand in cond.operands:
                self.condition(operand)
        elif isinstance(cond, ast.Not):
            self.condition(cond.operand)
        elif isinstance(cond, ast.Ref):
            let = lets.get(cond.path.dotted)
            if let is None or let.is_set:
                self.field_known(cond.path.dotted, cond.path.span)
        elif isinstance(cond, ast.Compare):
            self.field_known(cond.left.dotted, cond.left.span)
            if isinstance(cond.right, ast.Path):
                self.field_known(cond.right.dotted, cond.right.span)
        elif isinstance(cond, ast.ArithCompare):
            for side in (cond.left, cond.right):
                if not isinstance(side, (ast.Str, ast.Bool)):
                    for path in expression_paths(side):
                        self.field_known(path.dotted, path.span)
        elif isinstance(cond, ast.Membership):
            self.field_known(cond.path.dotted, cond.path.span)
            if isinstance(cond.set, ast.Name):
                let = lets.get(cond.set.value)
                if let is None or not let.is_set:
                    self.report("SL502", f"`{cond.set.value}` is not a named set of the policy",
                                cond.set.span,
                                help=did_you_mean(cond.set.value,
                                                  [n for n, v in lets.items() if v.is_set]))
        elif isinstance(cond, (ast.StringTest, ast.Exists)):
            self.field_known(cond.path.dotted, cond.path.span)


def _checks(step: s.Step) -> bool:
    """Whether a scenario step checks something (a verdict, even without `->`, fails on a
    ticket that is not pending; a reset, `after` or `assign` only acts)."""
    return isinstance(step, (s.ActionStep, s.StateStep, s.TicketStep, s.VerdictStep))
