"""The engine: evaluate actions against a compiled policy with per-agent risk and strikes.

The decision semantics are docs/runtime.md's, exactly. Evaluation has two halves: the
generated matcher (pure; which rule matches this action and input) runs outside any lock, and
:meth:`Engine._decide` (the state transition) runs inside the store's per-decision step.
"""

from __future__ import annotations

import os
import re
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

from sentra_runtime.audit import Annotations, VerifyResult
from sentra_runtime.codegen import INVALID_INPUT, NO_MATCH, UNKNOWN_ACTION, compile_matcher
from sentra_runtime.decision import (
    ACTIVE,
    ALLOW,
    BLOCK,
    LABELS,
    SHUT_DOWN,
    SHUTDOWN,
    Decision,
    EvaluatedDecision,
    outcome_class,
)
from sentra_runtime.explain import (
    EvaluationContext,
    invalid_input_reason,
    jsonable,
    render_value,
)
from sentra_runtime.fastpath import AllowRow, inline_evaluate
from sentra_runtime.guard import ActionDenied as ActionDenied
from sentra_runtime.guard import F, guard
from sentra_runtime.policy import Policy, RuleSpec, load_policy
from sentra_runtime.stores import AgentState, MemoryStore, RawState, Reset, Store

ALREADY_SHUT_DOWN = "AGENT_ALREADY_SHUT_DOWN"
SHUTDOWN_AFTER_BLOCKS = "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS"
THRESHOLD_EXCEEDED = "RISK_THRESHOLD_EXCEEDED"
INVALID_INPUT_ID = "INVALID_INPUT"
UNKNOWN_ACTION_ID = "UNKNOWN_ACTION"
NO_RULE_MATCHED_ID = "NO_RULE_MATCHED"

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_.]*)\}")


def _constants(outcome: str, rule_id: str, threat: str | None, description: str | None,
               attempted: int, applied: int, status: str, **more: Any) -> dict[str, Any]:
    return {"outcome": outcome, "label": LABELS[outcome], "allowed": outcome == ALLOW,
            "rule_id": rule_id, "threat": threat, "description": description,
            "attempted_risk": attempted, "applied_risk": applied, "status": status, **more}


@dataclass(frozen=True, slots=True)
class _RowOutcome:
    """What a matched row leads to, precomputed per row so the hot path only fills in numbers.

    Each ``*_class`` is a Decision subclass carrying that outcome's constant fields.
    """

    outcome: str
    allows: bool
    """The rule's outcome is ``allow`` (so only the threshold can block)."""
    risk: int
    render: Callable[[tuple[Any, ...]], str] | None
    """Renders an interpolated reason; ``None`` when the reason is constant (a class field)."""
    allowed_class: type[EvaluatedDecision]
    threshold_class: type[EvaluatedDecision]
    ruled_class: type[EvaluatedDecision]
    """The rule's own block or shutdown decision."""
    strike_out_class: type[EvaluatedDecision]
    """The shutdown after repeated blocks, when this row's block is the last strike."""


_NO_FIELDS: dict[str, Any] = {}
"""Shared empty input; the matcher only reads it."""


def _as_fields(fields: Any) -> dict[str, Any]:
    if not isinstance(fields, Mapping):
        raise TypeError(f"fields must be a mapping, not {type(fields).__name__}")
    return dict(fields)


def _check_ids(agent_id: Any, action: Any) -> None:
    if not isinstance(agent_id, str):
        raise TypeError(f"agent_id must be a string, not {type(agent_id).__name__}")
    if not isinstance(action, str):
        raise TypeError(f"action must be a string, not {type(action).__name__}")


class Engine:
    """Evaluate actions of agents against one policy, keeping state in a store.

    ``policy`` is a loaded :class:`Policy`, a table dict, JSON text, or a path to a table file;
    ``store`` defaults to a fresh :class:`MemoryStore`.
    """

    def __init__(self, policy: Policy | Mapping[str, Any] | str | os.PathLike[str],
                 store: Store | None = None) -> None:
        self.policy = load_policy(policy)
        self.store: Store = store if store is not None else MemoryStore()
        self.matcher = compile_matcher(self.policy)
        self._context = EvaluationContext(self.policy, self.matcher)
        self._match = self.matcher.match
        self._apply = self.store.apply
        self._threshold = self.policy.risk_threshold
        self._strikes = self.policy.strikes
        self._rows = tuple(self._row_outcome(self.policy.rule(row.rule))
                           for row in self.matcher.rows)
        self._specials = self._special_classes()
        self._already_class = self._specials[ALREADY_SHUT_DOWN][0]
        self._decide_step = self._decide
        if type(self.store) is MemoryStore and self._ordinary_evaluation():
            # the default store's step is cheap enough that the layers around it dominate: do
            # it inline (see sentra_runtime.fastpath); subclasses keep the ordinary path
            self.evaluate = inline_evaluate(  # type: ignore[method-assign]
                self._match, [self._allow_row(row) for row in self._rows], self._threshold,
                self._decide, self.store.inline_step(), types.MethodType(_EVALUATE, self))
        self.policy_load_seq: int | None = self.store.record_policy_load(self.policy)
        """The seq of the audit record of this engine's policy load (``None`` without a log)."""

    @property
    def policy_hash(self) -> str:
        return self.policy.hash

    def _class(self, outcome: str, rule_id: str, threat: str | None, description: str | None,
               attempted: int, applied: int, status: str, **more: Any) -> type[EvaluatedDecision]:
        constants = _constants(outcome, rule_id, threat, description, attempted, applied, status,
                               policy_hash=self.policy.hash, **more)
        return outcome_class(constants, self._context)

    def _row_outcome(self, rule: RuleSpec) -> _RowOutcome:
        render = self._reason_renderer(rule.reason)
        reason = {} if render is not None else {"reason": rule.reason}
        threat, description, risk = rule.threat, rule.description, rule.risk
        outcome = {ALLOW: ALLOW, BLOCK: BLOCK, SHUTDOWN: SHUTDOWN}[rule.outcome]
        return _RowOutcome(
            outcome=outcome,
            allows=outcome == ALLOW,
            risk=risk,
            render=render,
            allowed_class=self._class(ALLOW, rule.id, threat, description, risk, risk, ACTIVE,
                                      **reason),
            threshold_class=self._class(BLOCK, THRESHOLD_EXCEEDED,
                                        threat or "Risk Threshold Exceeded", description, risk, 0,
                                        ACTIVE),
            ruled_class=self._class(outcome, rule.id, threat, description, risk, 0,
                                    SHUT_DOWN if outcome == SHUTDOWN else ACTIVE, **reason),
            strike_out_class=self._strike_out_class(risk),
        )

    def _ordinary_evaluation(self) -> bool:
        """Whether this engine evaluates as :class:`Engine` defines it (a subclass may override
        ``evaluate`` or ``_decide``; then the fast path, which bypasses both, is not used)."""
        cls = type(self)
        return cls.evaluate is _EVALUATE and cls._decide is _DECIDE

    @staticmethod
    def _allow_row(row: _RowOutcome) -> AllowRow:
        return (row.allowed_class, row.risk, row.render) if row.allows else None

    def _strike_out_class(self, attempted: int) -> type[EvaluatedDecision]:
        return self._class(SHUTDOWN, SHUTDOWN_AFTER_BLOCKS, "Agent Shutdown", None, attempted, 0,
                           SHUT_DOWN)

    def _special_classes(self) -> dict[str, tuple[type[EvaluatedDecision], type[EvaluatedDecision]]]:
        """Per special outcome: its class, and its class when it is the last strike."""
        strike_out = self._strike_out_class(0)
        already = self._class(SHUTDOWN, ALREADY_SHUT_DOWN, "Agent Shutdown", None, 0, 0,
                              SHUT_DOWN, reason="Agent is already shut down.")
        return {
            ALREADY_SHUT_DOWN: (already, already),
            INVALID_INPUT_ID: (self._class(BLOCK, INVALID_INPUT_ID, "Invalid Input", None, 0, 0,
                                           ACTIVE), strike_out),
            UNKNOWN_ACTION_ID: (self._class(BLOCK, UNKNOWN_ACTION_ID, "Unknown Behavior", None,
                                            0, 0, ACTIVE), strike_out),
            NO_RULE_MATCHED_ID: (self._class(BLOCK, NO_RULE_MATCHED_ID, "Unknown Behavior", None,
                                             0, 0, ACTIVE), strike_out),
        }

    def _reason_renderer(self, template: str) -> Callable[[tuple[Any, ...]], str] | None:
        """Compile ``{field}`` interpolation; ``{{``/``}}`` are braces; unknown names stay as is."""
        if "{" not in template and "}" not in template:
            return None
        positions = {spec.name: index for index, spec in enumerate(self.matcher.fields)}

        def render(values: tuple[Any, ...]) -> str:
            def substitute(match: re.Match[str]) -> str:
                text = match.group(0)
                if text in ("{{", "}}"):
                    return text[0]
                name = match.group(1)
                if name not in positions:
                    return text
                return render_value(values[positions[name]])

            return _PLACEHOLDER.sub(substitute, template)

        return render

    # -- evaluation ------------------------------------------------------------------------------

    def evaluate(self, agent_id: str, action: str, fields: Mapping[str, Any] | None = None,
                 *, annotations: Annotations | None = None) -> Decision:
        """Decide one proposed action of one agent, update its state, and audit the decision.

        ``annotations`` adds keys to the decision's audit record (inside its hash chain): a
        mapping of JSON values, or a function of the decision that returns one (it runs in the
        decision's transaction). They may not replace the record's own keys. The record's seq
        is ``decision.seq``.
        """
        if fields is None:
            fields = _NO_FIELDS
        elif fields.__class__ is not dict:
            fields = _as_fields(fields)
        if agent_id.__class__ is not str or action.__class__ is not str:
            _check_ids(agent_id, action)
        code, payload, action = self._match(action, fields)
        raw = None if code >= NO_MATCH else jsonable(fields)
        if annotations is None:
            return self._apply(self._decide_step, agent_id, action, raw, code, payload)
        return self._apply(self._decide_step, agent_id, action, raw, code, payload,
                           annotations=annotations)

    def _decide(self, state: RawState, agent_id: str, action: str, fields: Any, code: int,
                payload: Any, seq: int | None = None) -> tuple[Decision, RawState]:
        """The state transition of docs/runtime.md (pure; runs inside the store's step).

        ``seq`` is the seq the store gives the decision's audit record, if it keeps one.
        """
        cumulative, blocked, down = state
        if down:
            return self._already_class((agent_id, action, cumulative, cumulative, blocked, None,
                                        seq, fields, code, payload, state)), state
        if code >= 0:
            row = self._rows[code]
            projected = cumulative + row.risk
            if row.allows and projected <= self._threshold:
                return row.allowed_class((
                    agent_id, action, projected, projected, blocked,
                    None if row.render is None else row.render(payload),
                    seq, fields, code, payload, state)), (
                        state if projected == cumulative else (projected, blocked, False))
            if row.allows:
                cls = row.threshold_class
                reason: str | None = (f"Projected risk would reach {projected}/{self._threshold}. "
                                      "Action blocked before execution.")
            else:
                cls = row.ruled_class
                reason = None if row.render is None else row.render(payload)
            strike_out = row.strike_out_class
        else:
            projected = cumulative
            cls, strike_out, reason = self._special(code, action, payload)
        blocked += 1
        ruled_shutdown = cls.__dict__["outcome"] == SHUTDOWN
        down = ruled_shutdown or blocked >= self._strikes
        if down and not ruled_shutdown:
            cls = strike_out
            reason = (f"Agent shut down after {blocked} blocked attempts. Cumulative risk "
                      f"remains {cumulative}/{self._threshold}.")
        decision = cls((agent_id, action, projected, cumulative, blocked, reason, seq, fields,
                        code, payload, state))
        return decision, (cumulative, blocked, down)

    def _special(self, code: int, action: str,
                 payload: Any) -> tuple[type[EvaluatedDecision], type[EvaluatedDecision], str]:
        if code == INVALID_INPUT:
            index, value = payload
            cls, strike_out = self._specials[INVALID_INPUT_ID]
            return cls, strike_out, invalid_input_reason(self.matcher.fields[index], value)
        if code == UNKNOWN_ACTION:
            cls, strike_out = self._specials[UNKNOWN_ACTION_ID]
            return cls, strike_out, (f"Action type `{action}` is not covered by the policy and "
                                     "it has no `otherwise` rule.")
        cls, strike_out = self._specials[NO_RULE_MATCHED_ID]
        return cls, strike_out, (f"No rule for action type `{action}` matched and the policy "
                                 "has no `otherwise` rule.")

    # -- operators and introspection -------------------------------------------------------------

    def reset(self, agent_id: str | None = None, *, operator: str) -> Reset:
        """Return one agent (or every agent, for ``None``) to ``(0, 0, active)``; audited.

        Returns the ids of the agents reset (a list) carrying the reset record's ``seq``.
        """
        if agent_id is not None and not isinstance(agent_id, str):
            raise TypeError(f"agent_id must be a string or None, not {type(agent_id).__name__}")
        if not isinstance(operator, str) or not operator:
            raise ValueError("reset needs the operator's name (operator=...)")
        agents = self.store.reset(agent_id, operator, self.policy.hash)
        return agents if isinstance(agents, Reset) else Reset(agents, None)

    def state(self, agent_id: str) -> AgentState:
        """The agent's ``(cumulative_risk, blocked_attempts, status)``; fresh for unknown ids."""
        return self.store.state(agent_id)

    def agents(self) -> list[str]:
        """Ids of the agents the store has seen, sorted."""
        return self.store.agents()

    def guard(self, agent_id: str, action: str, fields: Mapping[str, Any] | None = None, *,
              from_arguments: bool = True) -> Callable[[F], F]:
        """Decorate a tool function so each call is evaluated first.

        The call proceeds only when the decision is allowed; otherwise :class:`ActionDenied` (a
        ``PermissionError``) is raised before the body runs. The fields are ``fields`` plus,
        with ``from_arguments``, the call's arguments whose names the policy declares, by
        parameter name (positional ones too, defaults for those left out); the policy sees what
        the body gets (rules in :mod:`sentra_runtime.guard`). The decision of the last call is
        in ``wrapper.last_decision``.
        """
        return guard(self, agent_id, action, fields, from_arguments)

    def audit_records(self) -> Iterator[dict[str, Any]]:
        """The store's audit log: hash-chained records in seq order."""
        return self.store.audit_records()

    def verify_audit(self, *, expected_head: str | None = None) -> VerifyResult:
        return self.store.verify_audit(expected_head=expected_head)

    def export_audit(self, out: IO[str]) -> int:
        """Write the audit log as JSON Lines; return the number of records."""
        return self.store.export_audit(out)

    def close(self) -> None:
        self.store.close()


_EVALUATE = Engine.evaluate
_DECIDE = Engine._decide
"""The methods as defined here, to tell when a subclass (or a patch) has replaced them."""
