"""The result of one evaluation: ``Decision``, and its on-demand ``Explanation``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import FrozenInstanceError, dataclass, fields
from typing import Any

ALLOW = "allow"
BLOCK = "block"
SHUTDOWN = "shutdown"
LABELS = {ALLOW: "Allowed", BLOCK: "Blocked", SHUTDOWN: "Agent Shut Down"}
ACTIVE = "active"
SHUT_DOWN = "shut_down"


@dataclass(frozen=True)
class RuleTrial:
    """One row tried for the action, in order: whether it matched, and if not, why."""

    rule_id: str
    row: int
    matched: bool
    failed_test: str | None = None
    actual: str | None = None
    """The failed test's field value, rendered as JSON (``none`` when missing)."""

    def describe(self) -> str:
        if self.matched:
            return f"{self.rule_id} (row {self.row}): matched"
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
                 "failed_test": t.failed_test, "actual": t.actual}
                for t in self.trials
            ],
            "matched_rule": self.matched_rule,
            "risk": self.risk,
            "steps": list(self.steps),
        }


@dataclass(frozen=True, eq=False)
class Decision:
    """One decision of the gate. ``allowed`` is the only field a caller must check.

    The explanation is built on first access, from what the engine kept of the evaluation, so
    it costs nothing on the hot path. Two decisions are equal when all their fields are.
    """

    agent_id: str
    action: str
    outcome: str
    """``allow``, ``block`` or ``shutdown``."""
    label: str
    """The wire label: ``Allowed``, ``Blocked`` or ``Agent Shut Down``."""
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

    @property
    def explanation(self) -> Explanation:
        cached: Explanation | None = self.__dict__.get("_explanation")
        if cached is None:
            why = self.__dict__.get("_why")
            cached = (self._explain(self, *why)  # type: ignore[attr-defined]
                      if why is not None else _plain_explanation(self))
            self.__dict__["_explanation"] = cached
        return cached

    @property
    def explanation_summary(self) -> str:
        """One line for the audit log: the deciding rule and row, and the risk arithmetic."""
        why = self.__dict__.get("_why")
        if why is None:
            return f"{self.rule_id}: {self.reason}"
        summary: str = self._summarize(self, *why)  # type: ignore[attr-defined]
        return summary

    @property
    def audit_input(self) -> dict[str, Any]:
        """The input as the policy saw it (declared fields after defaults and normalisation),
        or the raw fields when they were rejected before that."""
        why = self.__dict__.get("_why")
        if why is None:
            return {}
        data: dict[str, Any] = self._audit_input(*why)  # type: ignore[attr-defined]
        return data

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, field.name) for field in fields(Decision))

    def to_dict(self, *, explanation: bool = False) -> dict[str, Any]:
        data = {field.name: getattr(self, field.name) for field in fields(Decision)}
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
        return _rebuild, (self.to_dict(), self.explanation)


def _rebuild(values: dict[str, Any], explanation: Explanation) -> Decision:
    decision = Decision(**values)
    decision.__dict__["_explanation"] = explanation
    return decision


def _frozen(self: Any, name: str, value: Any = None) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def outcome_class(constants: dict[str, Any], explain: ExplainFunction,
                  summarize: Callable[..., str],
                  audit_input: Callable[..., dict[str, Any]]) -> type[Decision]:
    """A subclass of Decision holding the fields that are the same for every decision of one
    outcome of one rule, so the hot path fills in only what varies (agent, risk numbers).

    Instances are created with :func:`new_decision`; to users they are plain Decisions.
    """
    namespace = {
        **constants, "__qualname__": "Decision", "__module__": __name__,
        "__setattr__": _frozen, "__delattr__": _frozen,
        "_explain": staticmethod(explain), "_summarize": staticmethod(summarize),
        "_audit_input": staticmethod(audit_input),
    }
    return type("Decision", (Decision,), namespace)


new_decision = object.__new__
"""``new_decision(cls)`` then ``set_fields(decision, "__dict__", varying)``: the hot path."""
set_fields = object.__setattr__


def _plain_explanation(decision: Decision) -> Explanation:
    step = f"{decision.label}: {decision.rule_id}: {decision.reason}"
    return Explanation(action=decision.action, block=None, trials=(), matched_rule=None,
                       risk="", steps=(step,))


ExplainFunction = Callable[..., Explanation]
