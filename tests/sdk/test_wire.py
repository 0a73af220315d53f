"""Reading decisions back from the wire: a round trip of real decisions, every refusal of a
wrong shape, the fail-closed decision, and the JSON depth bound (a law)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sentra_runtime import Engine
from sentra_runtime.transport import check_depth, printable, read_json
from sentra_runtime.wire import FAIL_CLOSED, decision_from_wire, fail_closed

STEPS = [("EXPORT_DATA", {"destination_type": "external", "data_classification": "sensitive"}),
         ("EXPORT_DATA", {"destination_type": "external", "data_classification": "sensitive"}),
         ("CHANGE_PERMISSION", {}), ("APPROVE_TRANSACTION", {"amount": "x"}),
         ("SEND_NOTIFICATION", {"notification_type": "approval"}), ("FILE_READ", {})]


def wire(decision: Any, seq: int | None = 1) -> Any:
    return json.loads(json.dumps({"seq": seq, "decision": decision.to_dict(explanation=True)}))


def test_real_decisions_round_trip(sentra_table: dict[str, Any]) -> None:
    engine = Engine(sentra_table)
    for number, (action, fields) in enumerate(STEPS, 1):
        made = engine.evaluate("a", action, fields)
        read = decision_from_wire(wire(made, number))
        assert read == made and read.seq == number
        assert read.explanation == made.explanation
        assert str(read.explanation) == str(made.explanation)
    assert [decision_from_wire(wire(engine.evaluate("a", "FILE_READ"))).label] == [
        "Agent Shut Down"]


@pytest.mark.parametrize(("spoil", "message"), [
    (lambda d: d.pop("rule_id"), "`decision.rule_id` is missing"),
    (lambda d: d.update(allowed="yes"), "`decision.allowed` is not of type bool"),
    (lambda d: d.update(attempted_risk=True), "`decision.attempted_risk` is not of type int"),
    (lambda d: d.update(attempted_risk=1.0), "`decision.attempted_risk` is not of type int"),
    (lambda d: d.update(threat=5), "`decision.threat` is not of type str | None"),
    (lambda d: d.update(allowed=True), "says allowed but its outcome is `block`"),
    (lambda d: d.update(allowed=True, outcome="allow"), "says allowed but its outcome is `allow` "
                                                        "(Blocked)"),
    (lambda d: d.pop("explanation"), "`decision.explanation` is not a JSON object"),
    (lambda d: d["explanation"].update(steps="x"), "needs `trials` and `steps` lists"),
    (lambda d: d["explanation"]["trials"].append({"rule_id": 1}), "a trial of"),
    (lambda d: d["explanation"].update(risk=None), "wrong `action`, `matched_rule` or `risk`"),
])
def test_a_wrong_shape_is_refused_naming_it(sentra_table: dict[str, Any], spoil: Any,
                                            message: str) -> None:
    answer = wire(Engine(sentra_table).evaluate("a", "CHANGE_PERMISSION"))
    spoil(answer["decision"])
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("|", r"\|")):
        decision_from_wire(answer)


@pytest.mark.parametrize("answer", [[], None, "x", {"decision": []}, {"seq": "1", "decision": {}}])
def test_an_answer_that_is_no_decision_is_refused(answer: Any) -> None:
    with pytest.raises(ValueError):
        decision_from_wire(answer)


def test_another_outcome_is_read_and_not_allowed(sentra_table: dict[str, Any]) -> None:
    """A fourth outcome (a review, say) passes through as not allowed, whatever its label."""
    answer = wire(Engine(sentra_table).evaluate("a", "CHANGE_PERMISSION"))
    answer["decision"].update(outcome="review", label="Review Required")
    decision = decision_from_wire(answer)
    assert (decision.outcome, decision.label, decision.allowed) == (
        "review", "Review Required", False)


def test_the_fail_closed_decision() -> None:
    decision = fail_closed("a", "X", "Fail closed: no server")
    assert (decision.allowed, decision.label, decision.outcome, decision.rule_id) == (
        False, "Blocked", "block", FAIL_CLOSED)
    assert (decision.status, decision.seq, decision.cumulative_risk) == ("unknown", None, 0)
    assert str(decision.explanation) == "Blocked: FAIL_CLOSED: Fail closed: no server"


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab'),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(alphabet='[]{}"\\ab', max_size=3), inner,
                                      max_size=3), max_leaves=30)


def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


@given(JSON, st.integers(min_value=0, max_value=6))
def test_the_depth_bound_is_exact(value: Any, limit: int) -> None:
    """Brackets inside strings (escaped quotes too) do not count; nesting does, exactly."""
    body = json.dumps(value).encode()
    if depth(value) > limit:
        with pytest.raises(ValueError, match="nested deeper"):
            check_depth(body, limit)
    else:
        check_depth(body, limit)
        assert read_json(body, limit) == value


def test_server_text_is_escaped_and_cut() -> None:
    assert printable("a\nb\x1b[31m\x00") == "a\\nb\\x1b[31m\\x00"
    assert printable("x" * 400) == "x" * 300 + "..."
