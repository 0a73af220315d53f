"""Explanations on request: re-run the action's rows with a plain interpreter and say why.

The generated matcher only answers "which row"; this module answers "why not the others" for
the rows before it, by interpreting the same tests step by step. It runs only when someone reads
``Decision.explanation`` (or the audit log needs its summary).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sentra_runtime import arith
from sentra_runtime.codegen import (
    ARITHMETIC_ERROR,
    INVALID_INPUT,
    NO_MATCH,
    UNKNOWN_ACTION,
    Matcher,
)
from sentra_runtime.decision import (
    ALLOW,
    BLOCK,
    REVIEW,
    AgentState,
    ConditionResult,
    Decision,
    Explanation,
    RowTrace,
    RuleTrial,
    Trace,
)
from sentra_runtime.inputs import render_json
from sentra_runtime.policy import Policy, RowFailure, RowSpec, TestSpec, first_match, test_holds

__all__ = ["EvaluationContext", "arithmetic_failure", "describe_test", "explain", "jsonable", "render_json",
           "render_value", "summarize", "test_holds", "trace"]


def render_value(value: Any) -> str:
    """A field value as a reason shows it: :func:`render_json` (numbers as sent, JSON spelling,
    ``none`` when missing), but a string bare."""
    return value if isinstance(value, str) else render_json(value)


MAX_DEPTH = 64
"""How deep :func:`jsonable` follows nested input; deeper (or self-referencing) parts are
recorded as a marker."""


def jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-safe snapshot of raw caller input (for the audit log of rejected input)."""
    if isinstance(value, (Mapping, list, tuple, set, frozenset)) and depth >= MAX_DEPTH:
        return f"<nested deeper than {MAX_DEPTH} levels>"
    if isinstance(value, Mapping):
        return {str(key): jsonable(item, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [jsonable(item, depth + 1) for item in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    return repr(value)


def describe_test(test: TestSpec) -> str:
    """A test in the policy's own notation, e.g. ``amount > context.max_approval_amount``."""
    if test.left is not None and test.right is not None:
        text = (f"{arith.expression_text(test.left)} {test.op} "
                f"{arith.expression_text(test.right)}")
    elif test.op == "exists":
        text = f"exists {test.field}"
    elif test.other is not None:
        text = f"{test.field} {test.op} {test.other}"
    elif test.op == "in":
        text = f"{test.field} in {{{', '.join(render_json(item) for item in test.value)}}}"
    else:
        text = f"{test.field} {test.op} {render_json(test.value)}"
    return f"not ({text})" if test.negate else text


def failing_row(rows: tuple[RowSpec, ...], values: Mapping[str, Any]) -> tuple[int, RowFailure] | None:
    """The row whose computation failed and left its rule undetermined
    (:func:`policy.first_match`); ``None`` when the block is decided without one."""
    try:
        first_match(rows, values)
    except RowFailure as failure:
        return next(i for i, row in enumerate(rows)
                    if any(test is failure.test for test in row.tests)), failure
    return None


def arithmetic_failure(context: EvaluationContext, action: str, payload: tuple[Any, ...]) -> str:
    """The reason of an ``ARITHMETIC_ERROR`` decision: which rule's arithmetic failed, how."""
    block = context.matcher.block_of.get(action)
    found = None if block is None else failing_row(
        context.policy.actions[block].rows, context.values_by_name(payload))
    if block is None or found is None:
        return "An arithmetic test could not be computed."
    index, failure = found
    return f"Rule `{context.policy.actions[block].rows[index].rule}`: {failure}."


class EvaluationContext:
    """What the engine keeps per policy so a decision can explain itself later."""

    def __init__(self, policy: Policy, matcher: Matcher) -> None:
        self.policy = policy
        self.matcher = matcher

    def values_by_name(self, payload: tuple[Any, ...]) -> dict[str, Any]:
        return {spec.name: value for spec, value in zip(self.matcher.fields, payload)}

    def audit_input(self, fields: Any, code: int, payload: Any, state: Any) -> dict[str, Any]:
        if code in (INVALID_INPUT, UNKNOWN_ACTION):
            return dict(fields or {})
        return {spec.name: sorted(value) if value.__class__ is frozenset else value
                for spec, value in zip(self.matcher.schema.specs, payload) if value is not None}

    def explain(self, decision: Decision, fields: Any, code: int, payload: Any,
                state: tuple[int, int, bool]) -> Explanation:
        return explain(self, decision, fields, code, payload, state)

    def summarize(self, decision: Decision, fields: Any, code: int, payload: Any,
                  state: tuple[int, int, bool]) -> str:
        return summarize(self, decision, fields, code, payload, state)

    def trace(self, decision: Decision, fields: Any, code: int, payload: Any,
              state: tuple[int, int, bool]) -> Trace:
        return trace(self, decision.action, code, payload, state)

    def matched_rule(self, action: str, code: int, state: tuple[int, int, bool]) -> str | None:
        """The explanation's ``matched_rule`` without building the explanation: the rule whose
        row of the action's block matched, or the ``otherwise`` rule when no block names the
        action; ``None`` when the agent was already shut down, the input was rejected, or no
        row of the action's block matched (whether or not ``otherwise`` then applied)."""
        if state[2] or code < 0:
            return None
        row = self.matcher.rows[code]
        block = self.matcher.block_of.get(action)
        if block is not None and row.block != block:
            return None
        return row.rule


def explain(context: EvaluationContext, decision: Decision, fields: Any, code: int,
            payload: Any, state: tuple[int, int, bool]) -> Explanation:
    """Build the explanation of ``decision`` from the evaluation the engine recorded."""
    cumulative, blocked, down = state
    policy = context.policy
    action = decision.action
    settings = policy.settings_of(decision.agent_id, decision.group)
    group = ""
    if policy.groups:
        group = f" (group `{settings.group}`)" if settings.group else " (no group)"
    steps = [f"agent `{decision.agent_id}`{group}: action `{action}`, state: cumulative risk "
             f"{cumulative}/{settings.risk_threshold}, blocked attempts {blocked}/"
             f"{settings.strikes}{', shut down' if down else ''}"]
    if decision.decayed:
        steps.append(f"risk decay ({settings.risk_decay}): {decision.decayed} taken off since the "
                     f"last decision, from {cumulative + decision.decayed} to {cumulative}")
    if down:
        steps.append("the agent is already shut down: no rule is evaluated")
        steps.append(f"=> {decision.label}: {decision.reason}")
        return Explanation(action, None, (), None, "no risk attempted", tuple(steps))
    block_index = context.matcher.block_of.get(action)
    block = policy.actions[block_index].names if block_index is not None else None
    trials: tuple[RuleTrial, ...] = ()
    matched: str | None = None
    if code == INVALID_INPUT:
        steps.append(f"input rejected before any rule: {payload.reason}")
    elif code == ARITHMETIC_ERROR and block_index is not None:
        steps.append(f"action block {', '.join(block or ())}: rows tried in order")
        trials = _trials(context, block_index, payload, code)
        steps += [f"  {trial.describe()}" for trial in trials]
        steps.append("the arithmetic of a row that no test ruled out could not be computed: "
                     "the decision fails closed")
    elif code == UNKNOWN_ACTION:
        steps.append(f"no action block names `{action}` and the policy has no `otherwise` rule")
    else:
        if block_index is None:
            steps.append(f"no action block names `{action}`: the `otherwise` rule applies")
        else:
            steps.append(f"action block {', '.join(block or ())}: rows tried in order")
            trials = _trials(context, block_index, payload, code)
            steps += [f"  {trial.describe()}" for trial in trials]
        if code == NO_MATCH:
            steps.append("no row matched and the policy has no `otherwise` rule")
        elif block_index is not None and not any(trial.matched for trial in trials):
            steps.append("no row matched: the `otherwise` rule applies")
        else:
            matched = context.matcher.rows[code].rule
            steps.append(f"rule {matched} decides: {policy.rule(matched).outcome}")
            limit = decision.__dict__.get("limit")
            if limit is not None:
                steps.append(f"rate limit {limit['limit']} for {limit['for']}: {limit['count']} "
                             "allowed decisions already in the window, so it is reached before "
                             "the risk threshold")
    risk = _arithmetic(decision, policy, code, cumulative, blocked, matched)
    steps.append(f"risk: {risk}")
    steps.append(f"=> {decision.label} ({decision.rule_id}): {decision.reason}")
    return Explanation(action, block, trials, matched, risk, tuple(steps))


def summarize(context: EvaluationContext, decision: Decision, fields: Any, code: int,
              payload: Any, state: tuple[int, int, bool]) -> str:
    """The audit log's one-line explanation: which rule and row decided, and the arithmetic.

    Cheap on purpose (it is written for every decision); the full explanation can always be
    rebuilt from the recorded input and policy with ``sentra-lang explain``.
    """
    if decision.decayed:
        return (f"risk decay took off {decision.decayed} ({state[0] + decision.decayed} to "
                f"{state[0]}); " + _summary(context, decision, code, state))
    return _summary(context, decision, code, state)


def _summary(context: EvaluationContext, decision: Decision, code: int,
             state: tuple[int, int, bool]) -> str:
    """:func:`summarize` without risk decay."""
    cumulative, blocked, down = state
    if down:
        return "agent already shut down; no rule evaluated"
    if code == INVALID_INPUT:
        return "input rejected before any rule; " + _arithmetic(
            decision, context.policy, code, cumulative, blocked, None)
    if code == ARITHMETIC_ERROR:
        return "arithmetic failed before a rule matched; " + _arithmetic(
            decision, context.policy, code, cumulative, blocked, None)
    if code in (UNKNOWN_ACTION, NO_MATCH):
        return "no rule matched; " + _arithmetic(
            decision, context.policy, code, cumulative, blocked, None)
    row = context.matcher.rows[code]
    where = "otherwise" if row.block is None else f"row {row.index}"
    return f"matched {row.rule} ({where}); " + _arithmetic(
        decision, context.policy, code, cumulative, blocked, row.rule)


def trace(context: EvaluationContext, action: str, code: int, payload: Any,
          state: tuple[int, int, bool]) -> Trace:
    """The decision's trace (see :class:`Trace`) from the evaluation the engine recorded."""
    block = context.matcher.block_of.get(action)
    evaluated = not state[2] and code not in (INVALID_INPUT, UNKNOWN_ACTION)
    if not evaluated:
        return Trace(action, AgentState.from_raw(state), False, {}, block, None, None)
    values = context.values_by_name(payload)
    matched = context.matcher.rows[code] if code >= 0 else None
    matched_row = matched.index if matched is not None and matched.block is not None else None
    rows = () if block is None else _row_traces(context, block, values, matched_row)
    return Trace(action, AgentState.from_raw(state), True, values, block,
                 None if matched is None else matched.rule, matched_row, rows)


def _row_traces(context: EvaluationContext, block: int, values: Mapping[str, Any],
                matched_row: int | None) -> tuple[RowTrace, ...]:
    rows = []
    for index, row in enumerate(context.policy.actions[block].rows):
        results = [_result(test, values) for test in row.tests]
        conditions = tuple(ConditionResult(describe_test(test),
                                           result if isinstance(result, bool) else None)
                           for test, result in zip(row.tests, results))
        rows.append(RowTrace(row.rule, index, index == matched_row, conditions))
        failed = False not in results and any(r is not True for r in results)
        if index == matched_row or (failed and matched_row is None):
            break
    return tuple(rows)


def _result(test: TestSpec, values: Mapping[str, Any]) -> bool | arith.ArithmeticFailure:
    """A test's result, or the failure of its arithmetic."""
    try:
        return test_holds(test, values)
    except arith.ArithmeticFailure as failure:
        return failure


def _trials(context: EvaluationContext, block_index: int, payload: tuple[Any, ...],
            code: int) -> tuple[RuleTrial, ...]:
    values = context.values_by_name(payload)
    matched = context.matcher.rows[code] if code >= 0 else None
    matched_row = matched.index if matched is not None and matched.block == block_index else -1
    trials = []
    for index, row in enumerate(context.policy.actions[block_index].rows):
        if index == matched_row:
            trials.append(RuleTrial(row.rule, index, True))
            break
        results = [_result(test, values) for test in row.tests]
        if False in results:
            failed = row.tests[results.index(False)]
            trials.append(RuleTrial(row.rule, index, False, describe_test(failed),
                                    _actual(failed, values)))
            continue
        error = next((r for r in results if isinstance(r, arith.ArithmeticFailure)), None)
        if error is None:  # every test holds: the matched row (as a trial, never reached)
            trials.append(RuleTrial(row.rule, index, True))
            break
        test = row.tests[results.index(error)]
        trials.append(RuleTrial(row.rule, index, False, describe_test(test),
                                _actual(test, values), str(error)))
        if matched_row < 0:
            break
    return tuple(trials)


def _actual(test: TestSpec, values: Mapping[str, Any]) -> str:
    """What a test read: its field's value, or every field an arithmetic test computes with."""
    if test.left is None or test.right is None:
        return render_json(values.get(test.field))
    names = dict.fromkeys([*arith.fields(test.left), *arith.fields(test.right)])
    return ", ".join(f"{name} = {render_json(values.get(name))}" for name in names)


def _arithmetic(decision: Decision, policy: Policy, code: int, cumulative: int, blocked: int,
                matched: str | None) -> str:
    settings = policy.settings_of(decision.agent_id, decision.group)
    threshold, strikes = settings.risk_threshold, settings.strikes
    risk = decision.attempted_risk
    projected = cumulative + risk
    if matched is None:
        text = f"no risk attempted; cumulative risk stays {cumulative}/{threshold}"
    elif "limit" in decision.__dict__:
        text = (f"over a rate limit: attempted risk {risk} not applied, cumulative risk stays "
                f"{cumulative}")
    elif policy.rule(matched).outcome == ALLOW and decision.allowed:
        text = f"{cumulative} + {risk} = {projected} <= {threshold}: applied"
    elif policy.rule(matched).outcome == ALLOW:
        text = f"{cumulative} + {risk} = {projected} > {threshold}: not applied"
    elif policy.rule(matched).outcome == BLOCK:
        text = f"rule blocks: attempted risk {risk} not applied, cumulative risk stays {cumulative}"
    elif decision.outcome == REVIEW:
        return (f"held for review (ticket {decision.ticket}): risk {risk} is applied only if "
                f"an operator approves; cumulative risk stays {cumulative}/{threshold}, no "
                "strike")
    else:
        text = f"rule shuts the agent down: attempted risk {risk} not applied"
    if not decision.allowed:
        text += (f"; blocked attempts {blocked} + 1 = {decision.blocked_attempts}"
                 f"{' >= ' if decision.blocked_attempts >= strikes else ' < '}"
                 f"{strikes} strikes")
    return text
