"""The result of one evaluation: ``Decision``, its on-demand ``Explanation`` and ``Trace``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import FrozenInstanceError, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

if TYPE_CHECKING:
    from sentra_runtime.explain import EvaluationContext

ALLOW = "allow"
BLOCK = "block"
SHUTDOWN = "shutdown"
REVIEW = "review"
LABELS = {ALLOW: "Allowed", BLOCK: "Blocked", SHUTDOWN: "Agent Shut Down",
          REVIEW: "Review Required"}
ACTIVE = "active"
SHUT_DOWN = "shut_down"


class AgentState(NamedTuple):
    cumulative_risk: int
    blocked_attempts: int
    status: str

    @classmethod
    def from_raw(cls, raw: tuple[int, int, bool]) -> AgentState:
        return cls(raw[0], raw[1], SHUT_DOWN if raw[2] else ACTIVE)


@dataclass(frozen=True)
class RuleTrial:
    """One row tried for the action, in order: whether it matched, and if not, why."""

    rule_id: str
    row: int
    matched: bool
    failed_test: str | None = None
    actual: str | None = None
    """The failed test's field value, rendered as JSON (``none`` when missing); for an
    arithmetic test, each field it reads (``a = 1, b = 0``)."""
    error: str | None = None
    """Why the row's arithmetic could not be computed (``ARITHMETIC_ERROR``), else ``None``."""

    def describe(self) -> str:
        if self.matched:
            return f"{self.rule_id} (row {self.row}): matched"
        if self.error is not None:
            return (f"{self.rule_id} (row {self.row}): `{self.failed_test}` cannot be computed, "
                    f"got {self.actual}: {self.error}")
        return f"{self.rule_id} (row {self.row}): `{self.failed_test}` is false, got {self.actual}"


@dataclass(frozen=True)
class Explanation:
    """Why a decision came out as it did: rules tried, the match, and the risk arithmetic."""

    action: str
    block: tuple[str, ...] | None
    """The names of the action block that was tried; ``None`` when no block names the action."""
    trials: tuple[RuleTrial, ...]
    matched_rule: str | None
    """The rule whose row matched (the decision's ``rule_id`` may differ, e.g. at the threshold)."""
    risk: str
    """The risk arithmetic, e.g. ``40 + 80 = 120 > 100``."""
    steps: tuple[str, ...]
    """The whole explanation, one line per step."""

    def __str__(self) -> str:
        return "\n".join(self.steps)

    def summary(self) -> str:
        """One line: the rules tried, the match and the arithmetic (the audit log keeps this)."""
        tried = "; ".join(trial.describe() for trial in self.trials if not trial.matched)
        parts = [f"tried {tried}"] if tried else []
        if self.matched_rule is not None:
            parts.append(f"matched {self.matched_rule}")
        parts.append(self.risk)
        return " | ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "block": list(self.block) if self.block is not None else None,
            "trials": [
                {"rule_id": t.rule_id, "row": t.row, "matched": t.matched,
                 "failed_test": t.failed_test, "actual": t.actual,
                 **({"error": t.error} if t.error is not None else {})}
                for t in self.trials
            ],
            "matched_rule": self.matched_rule,
            "risk": self.risk,
            "steps": list(self.steps),
        }


@dataclass(frozen=True)
class ConditionResult:
    """One test of a row, in the policy's notation, and whether it held for the input (`None`
    when its computation failed: the test was neither true nor false)."""

    test: str
    holds: bool | None


@dataclass(frozen=True)
class RowTrace:
    """One row of the action's block as the evaluation tried it: every test's outcome."""

    rule_id: str
    row: int
    """The row's index in its block (``policy.actions[block].rows``)."""
    matched: bool
    conditions: tuple[ConditionResult, ...]


@dataclass(frozen=True, eq=False)
class Trace:
    """What the engine saw for one decision: the state before it, the input as the policy read
    it, and which row matched. For tools that look at many decisions (coverage, replays)."""

    action: str
    """The action type after normalisation."""
    state_before: AgentState
    evaluated: bool
    """Whether the rules were evaluated: false when the agent was already shut down, the input
    was rejected, or no block names the action and there is no ``otherwise``."""
    values: Mapping[str, Any]
    """The declared fields after defaults and normalisation (``None`` when absent), in declared
    order; empty when the rules were not evaluated."""
    block: int | None
    """Index into ``policy.actions`` of the block that names the action; ``None`` when none."""
    matched_rule: str | None
    """The rule whose row matched (``otherwise`` included); ``None`` when no rule matched."""
    matched_row: int | None
    """The matched row's index in ``block``; ``None`` when the ``otherwise`` rule (or none)
    matched."""
    rows: tuple[RowTrace, ...] = field(default=(), repr=False)
    """The block's rows tried in order, up to the matched one, with every test's outcome."""


@dataclass(frozen=True, eq=False)
class Decision:
    """One decision of the gate. ``allowed`` is the only field a caller must check.

    The explanation and the trace are built on first access, from what the engine kept of the
    evaluation, so they cost nothing on the hot path. Two decisions are equal when all their
    fields are.
    """

    agent_id: str
    action: str
    outcome: str
    """``allow``, ``block``, ``shutdown`` or ``review`` (held for an operator)."""
    label: str
    """The wire label: ``Allowed``, ``Blocked``, ``Agent Shut Down`` or ``Review Required``."""
    allowed: bool
    reason: str
    rule_id: str
    threat: str | None
    description: str | None
    attempted_risk: int
    applied_risk: int
    projected_risk: int
    cumulative_risk: int
    """The agent's cumulative risk after this decision."""
    blocked_attempts: int
    """The agent's blocked attempts after this decision."""
    status: str
    """The agent's status after this decision: ``active`` or ``shut_down``."""
    policy_hash: str

    _context: ClassVar[EvaluationContext | None] = None
    """Set on the engine's outcome classes (:func:`outcome_class`): how to explain."""
    decayed: ClassVar[int] = 0
    """How much the policy's ``risk_decay`` took off the agent's cumulative risk before this
    decision (always 0 for a policy without decay; a decision of one with decay carries its
    own, and :meth:`to_dict` and the audit record include it)."""
    group: ClassVar[str | None] = None
    """The agent's group under a policy with groups (``""``: none of them holds the agent);
    ``None`` for a policy without groups, whose decisions carry none (:meth:`to_dict` and the
    audit record include it when there is one)."""
    ticket: ClassVar[str | None] = None
    """The review ticket: for a ``review`` decision, the id an operator approves or denies it
    by (``rv_`` and 22 random URL-safe characters); for the decision an operator's verdict
    made, the ticket it settled; ``None`` otherwise (:meth:`to_dict` and the audit record
    include it when there is one)."""
    expires_at: ClassVar[float | None] = None
    """When a ``review`` decision's ticket expires (seconds since the epoch, UTC); ``None`` for
    every other decision."""
    decay_anchor: ClassVar[int | None] = None
    """The agent's decay anchor after this decision, in whole microseconds since the epoch
    (``None`` while its risk is 0, and for a policy without decay); its audit record keeps it
    as a time."""

    @property
    def seq(self) -> int | None:
        """The seq of this decision's audit record; ``None`` when the store keeps no log."""
        seq: int | None = self.__dict__.get("_seq")
        return seq

    def _evaluation(self) -> tuple[Any, int, Any, tuple[int, int, bool]] | None:
        """``(fields, code, payload, state before)`` as the engine kept them, if it did."""
        return None

    @property
    def explanation(self) -> Explanation:
        cached: Explanation | None = self.__dict__.get("_explanation")
        if cached is None:
            why = self._evaluation()
            cached = (self._context.explain(self, *why)
                      if why is not None and self._context is not None
                      else _plain_explanation(self))
            self.__dict__["_explanation"] = cached
        return cached

    @property
    def matched_rule(self) -> str | None:
        """``explanation.matched_rule`` (the rule whose row matched; the decision's ``rule_id``
        may differ, e.g. at the threshold), without building the explanation."""
        cached: Explanation | None = self.__dict__.get("_explanation")
        why = self._evaluation() if cached is None else None
        if why is None or self._context is None:
            return self.explanation.matched_rule
        return self._context.matched_rule(self.action, why[1], why[3])

    @property
    def trace(self) -> Trace | None:
        """Which row matched, the normalised input and the state before the decision; ``None``
        for a decision that was not made by an engine in this process (e.g. unpickled)."""
        cached: Trace | None = self.__dict__.get("_trace")
        if cached is None:
            why = self._evaluation()
            if why is None or self._context is None:
                return None
            cached = self._context.trace(self, *why)
            self.__dict__["_trace"] = cached
        return cached

    @property
    def explanation_summary(self) -> str:
        """One line for the audit log: the deciding rule and row, and the risk arithmetic."""
        why = self._evaluation()
        if why is None or self._context is None:
            return f"{self.rule_id}: {self.reason}"
        return self._context.summarize(self, *why)

    @property
    def audit_input(self) -> dict[str, Any]:
        """The input as the policy saw it (declared fields after defaults and normalisation),
        or the raw fields when they were rejected before that."""
        why = self._evaluation()
        if why is None or self._context is None:
            return {}
        return self._context.audit_input(*why)

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _FIELD_NAMES)

    def to_dict(self, *, explanation: bool = False) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in _FIELD_NAMES}
        if "decayed" in self.__dict__:
            data["decayed"] = self.__dict__["decayed"]
        if self.group is not None:
            data["group"] = self.group
        if "limit" in self.__dict__:
            data["limit"] = self.__dict__["limit"]
        for name in _REVIEW_NAMES:
            if name in self.__dict__:
                data[name] = self.__dict__[name]
        if explanation:
            data["explanation"] = self.explanation.to_dict()
        return data

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Decision):
            return NotImplemented
        return self.values() == other.values()

    def __hash__(self) -> int:
        return hash(self.values())

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (self.to_dict(), self.explanation, self.seq)


_FIELD_NAMES = tuple(item.name for item in fields(Decision))
_REVIEW_NAMES = ("ticket", "expires_at")
"""The review keys a decision carries when it has them (``ticket``, and ``expires_at`` for a
``review`` decision)."""


def _varying(index: int) -> Any:
    """The property reading ``_v[index]`` (an :class:`EvaluatedDecision`'s varying fields)."""
    return property(lambda self: self._v[index])


def _rebuild(values: dict[str, Any], explanation: Explanation,
             seq: int | None = None) -> Decision:
    decayed = values.pop("decayed", None)
    group = values.pop("group", None)
    limit = values.pop("limit", None)
    review = {name: values.pop(name) for name in _REVIEW_NAMES if name in values}
    decision = Decision(**values)
    decision.__dict__.update(review)
    if limit is not None:
        decision.__dict__["limit"] = limit
    if decayed is not None:
        decision.__dict__["decayed"] = decayed
    if group is not None:
        decision.__dict__["group"] = group
    decision.__dict__["_explanation"] = explanation
    decision.__dict__["_seq"] = seq
    return decision


class EvaluatedDecision(Decision):
    """A decision made by an engine: what varies per decision is one tuple, ``_v``.

    ``_v`` is ``(agent_id, action, projected_risk, cumulative_risk, blocked_attempts, reason,
    seq, fields, code, payload, state)``; the fields that are the same for every decision of
    one outcome of one rule are class attributes of a subclass (:func:`outcome_class`), so
    making a decision is one tuple and one object: ``new_decision(cls)``, then
    ``set_varying(decision, varying)``, two calls into C and no Python frame (it has no
    ``__init__`` of its own: only the decider makes them). Like every Decision it is frozen.
    """

    __slots__ = ("_v",)
    _v: tuple[Any, ...]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("decisions are made by a Decider (sentra_runtime.decider)")

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    agent_id = _varying(0)
    action = _varying(1)
    projected_risk = _varying(2)
    cumulative_risk = _varying(3)
    blocked_attempts = _varying(4)
    reason = _varying(5)
    seq = _varying(6)

    def _evaluation(self) -> tuple[Any, int, Any, tuple[int, int, bool]]:
        return self._v[7:]


new_decision = object.__new__
"""``new_decision(cls)``: an :class:`EvaluatedDecision` of outcome class ``cls``, its ``_v``
not yet set."""
set_varying: Callable[[EvaluatedDecision, tuple[Any, ...]], None] = \
    EvaluatedDecision.__dict__["_v"].__set__
"""``set_varying(decision, varying)``: sets ``_v`` once, past the frozen ``__setattr__``."""


def outcome_class(constants: dict[str, Any],
                  context: EvaluationContext) -> type[EvaluatedDecision]:
    """A subclass of Decision holding the fields that are the same for every decision of one
    outcome of one rule, so the hot path passes only what varies (see
    :class:`EvaluatedDecision`). To users its instances are plain Decisions.
    """
    namespace = {**constants, "__qualname__": "Decision", "__module__": __name__,
                 "__slots__": (), "_context": context}
    return type("Decision", (EvaluatedDecision,), namespace)


def _plain_explanation(decision: Decision) -> Explanation:
    step = f"{decision.label}: {decision.rule_id}: {decision.reason}"
    return Explanation(action=decision.action, block=None, trials=(), matched_rule=None,
                       risk="", steps=(step,))
