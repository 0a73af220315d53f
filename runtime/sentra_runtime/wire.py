"""Decisions as the decision server sends them, read back into :class:`Decision` objects.

The server answers ``POST /v1/decide`` with ``{"seq": N, "decision": {...}}``, the decision being
``Decision.to_dict(explanation=True)``. Every value is checked against the type the
:class:`Decision` field declares, so an answer of the wrong shape is refused (``ValueError``
naming the key) instead of half read. :func:`make_decision` is the one place that builds a
Decision outside an engine: a decision read from the server, and the SDK's fail-closed one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeGuard

from sentra_runtime.decision import ALLOW, LABELS, AgentState, Decision, Explanation, RuleTrial

FAIL_CLOSED = "FAIL_CLOSED"
"""The rule id of a decision the SDK made itself because it could not get one."""
UNKNOWN_STATUS = "unknown"
"""The status of a fail-closed decision: the agent's state was not read."""


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,), "str | None": (str, type(None)), "int": (int,),
    "int | None": (int, type(None)), "bool": (bool,),
}
"""The JSON value types (exactly: ``True`` is no ``int``) of the annotations Decision's fields
use; a field of another type is taken as sent."""
_FIELDS = tuple((field.name, _TYPES.get(str(field.type)), field.type,
                 field.default is dataclasses.MISSING
                 and field.default_factory is dataclasses.MISSING)
                for field in dataclasses.fields(Decision))
"""Per field of Decision: its name, its check, its type (for messages), whether it is required."""


def make_decision(values: Mapping[str, Any], explanation: Explanation | None,
                  seq: int | None) -> Decision:
    """A Decision of ``values`` (its fields by name) carrying ``explanation`` (``None``: the
    plain one-line explanation) and the seq of its audit record."""
    decision = Decision(**values)
    if explanation is not None:
        decision.__dict__["_explanation"] = explanation
    decision.__dict__["_seq"] = seq
    return decision


def fail_closed(agent_id: str, action: str, reason: str) -> Decision:
    """The decision the SDK gives when it could not get one: blocked, with ``reason``; no state
    was read or changed, so the risks and counts are 0 and the status is ``unknown``."""
    values = {"agent_id": agent_id, "action": action, "outcome": "block",
              "label": LABELS["block"], "allowed": False, "reason": reason,
              "rule_id": FAIL_CLOSED, "threat": "Decision Unavailable", "description": None,
              "attempted_risk": 0, "applied_risk": 0, "projected_risk": 0, "cumulative_risk": 0,
              "blocked_attempts": 0, "status": UNKNOWN_STATUS, "policy_hash": ""}
    return make_decision({field.name: values.get(field.name, field.default)
                          for field in dataclasses.fields(Decision)}, None, None)


def decision_from_wire(answer: Any, *, explained: bool = True) -> Decision:
    """The decision of a ``/v1/decide`` answer; ``ValueError`` naming what does not fit.
    ``explained=False`` reads a decision that comes without its explanation (a review
    ticket's verdict): it gets the plain one-line explanation.

    An answer that says ``allowed`` must say so consistently (outcome ``allow``, label
    ``Allowed``): any other outcome, a fourth one included, is not allowed.
    """
    body = _object(answer, "the answer")
    seq = body.get("seq")
    if seq is not None and not _is_int(seq):
        raise ValueError("`seq` is not an integer")
    data = _object(body.get("decision"), "`decision`")
    values: dict[str, Any] = {}
    for name, check, annotation, required in _FIELDS:
        if name not in data:
            if required:
                raise ValueError(f"`decision.{name}` is missing")
            continue
        value = data[name]
        if check is not None and type(value) not in check:
            raise ValueError(f"`decision.{name}` is not of type {annotation}")
        values[name] = value
    if values["allowed"] and (values["outcome"] != ALLOW or values["label"] != LABELS[ALLOW]):
        raise ValueError(f"the decision says allowed but its outcome is "
                         f"`{values['outcome']}` ({values['label']})")
    decayed = data.get("decayed")
    if decayed is not None and not _is_int(decayed):
        raise ValueError("`decision.decayed` is not an integer")
    group = data.get("group")
    if group is not None and not isinstance(group, str):
        raise ValueError("`decision.group` is not a string")
    limit = data.get("limit")
    if limit is not None and not (isinstance(limit, dict) and isinstance(limit.get("limit"), str)
                                  and isinstance(limit.get("for"), str)
                                  and _is_int(limit.get("count"))):
        raise ValueError("`decision.limit` is not a rate limit (`limit`, `for`, `count`)")
    ticket, expires = data.get("ticket"), data.get("expires_at")
    if ticket is not None and not isinstance(ticket, str):
        raise ValueError("`decision.ticket` is not a string")
    if expires is not None and (isinstance(expires, bool)
                                or not isinstance(expires, (int, float))):
        raise ValueError("`decision.expires_at` is not a number")
    decision = make_decision(values, _explanation(data.get("explanation")) if explained
                             else None, seq)
    if limit is not None:   # a decision over a rate limit
        decision.__dict__["limit"] = {"limit": limit["limit"], "for": limit["for"],
                                      "count": limit["count"]}
    if decayed is not None:   # a policy with risk decay
        decision.__dict__["decayed"] = decayed
    if group is not None:   # a policy with groups
        decision.__dict__["group"] = group
    if ticket is not None:   # a review decision, or an operator's verdict
        decision.__dict__["ticket"] = ticket
    if expires is not None:
        decision.__dict__["expires_at"] = expires
    return decision


def _explanation(data: Any) -> Explanation:
    item = _object(data, "`decision.explanation`")
    block = item.get("block")
    trials = item.get("trials")
    steps = item.get("steps")
    if block is not None and not _strings(block):
        raise ValueError("`decision.explanation.block` is not a list of strings")
    if not isinstance(trials, list) or not _strings(steps):
        raise ValueError("`decision.explanation` needs `trials` and `steps` lists")
    matched, risk = item.get("matched_rule"), item.get("risk")
    if not (matched is None or isinstance(matched, str)) or not isinstance(risk, str) \
            or not isinstance(item.get("action"), str):
        raise ValueError("`decision.explanation` has a wrong `action`, `matched_rule` or `risk`")
    return Explanation(action=item["action"], block=None if block is None else tuple(block),
                       trials=tuple(_trial(trial) for trial in trials), matched_rule=matched,
                       risk=risk, steps=tuple(steps))


def _trial(data: Any) -> RuleTrial:
    item = _object(data, "a trial of `decision.explanation`")
    rule_id, row, matched = item.get("rule_id"), item.get("row"), item.get("matched")
    failed, actual, error = item.get("failed_test"), item.get("actual"), item.get("error")
    if not isinstance(rule_id, str) or not _is_int(row) or not isinstance(matched, bool) \
            or not all(value is None or isinstance(value, str)
                       for value in (failed, actual, error)):
        raise ValueError("a trial of `decision.explanation` has the wrong shape")
    return RuleTrial(rule_id=rule_id, row=row, matched=matched, failed_test=failed,
                     actual=actual, error=error)


def state_from_wire(answer: Any) -> AgentState:
    """The state of a ``GET /v1/agents/{id}`` answer; ``ValueError`` when it does not fit."""
    body = _object(answer, "the answer")
    risk, blocked, status = (body.get("cumulative_risk"), body.get("blocked_attempts"),
                             body.get("status"))
    if not _is_int(risk) or not _is_int(blocked) or not isinstance(status, str):
        raise ValueError("the agent's `cumulative_risk`, `blocked_attempts` or `status` has the "
                         "wrong type")
    return AgentState(risk, blocked, status)


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not a JSON object")
    return value


def _strings(value: Any) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)
