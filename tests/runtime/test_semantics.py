"""The decision semantics of docs/runtime.md, step by step, on the Sentra reference table."""

from __future__ import annotations

from typing import Any

import pytest
from sentra_runtime import ActionDenied, AgentState, Engine
from sentra_runtime.policy import content_hash

from tests.runtime.helpers import FIXTURES, assert_decision, sentra_table

POLICIES = FIXTURES.parents[2] / "policies"

SENSITIVE_EXPORT = {"destination_type": "external", "data_classification": "sensitive"}
UNVERIFIED = {"context": {"approval_requires_verified_eligibility": True}}


def test_exactly_the_threshold_is_allowed(engine: Engine) -> None:
    assert_decision(engine.evaluate("a", "EXPORT_DATA", SENSITIVE_EXPORT), "Allowed",
                    "RISKY_SENSITIVE_EXTERNAL_EXPORT", cumulative=80)
    assert_decision(engine.evaluate("a", "new_thing"), "Allowed", "RISKY_UNKNOWN_ACTION",
                    cumulative=100)


def test_zero_risk_actions_pass_at_the_threshold(engine: Engine) -> None:
    for _ in range(5):
        engine.evaluate("a", "DELETE_RECORD")  # 30 each: 30, 60, 90, then blocks
    engine.reset("a", operator="ops")
    engine.evaluate("a", "EXPORT_DATA", SENSITIVE_EXPORT)
    engine.evaluate("a", "UNKNOWN")
    assert engine.state("a") == AgentState(100, 0, "active")
    for action in ("FILE_READ", "READ_RECORD", "SEND_NOTIFICATION", "APPROVE_TRANSACTION"):
        assert_decision(engine.evaluate("a", action), "Allowed", engine.evaluate(
            "b", action).rule_id, cumulative=100, blocked=0)


def test_block_after_a_risky_allow(engine: Engine) -> None:
    engine.evaluate("a", "EXPORT_DATA", SENSITIVE_EXPORT)
    decision = engine.evaluate("a", "ACCESS_EXTERNAL_SERVICE", {"data_classification": "secret"})
    assert_decision(decision, "Allowed", "ALLOW_EXTERNAL_SERVICE_ACCESS", cumulative=80)
    decision = engine.evaluate("a", "DELETE_RECORD")
    assert_decision(decision, "Blocked", "RISK_THRESHOLD_EXCEEDED", cumulative=80, blocked=1)
    assert decision.reason == "Projected risk would reach 110/100. Action blocked before execution."
    assert (decision.threat, decision.attempted_risk, decision.applied_risk,
            decision.projected_risk) == ("Destructive Action", 30, 0, 110)
    assert decision.explanation.risk.startswith("80 + 30 = 110 > 100")


def test_three_threshold_blocks_shut_the_agent_down(engine: Engine) -> None:
    engine.evaluate("a", "EXPORT_DATA", SENSITIVE_EXPORT)
    assert_decision(engine.evaluate("a", "EXPORT_DATA", SENSITIVE_EXPORT), "Blocked",
                    "RISK_THRESHOLD_EXCEEDED", blocked=1)
    assert_decision(engine.evaluate("a", "DELETE_RECORD"), "Blocked", "RISK_THRESHOLD_EXCEEDED",
                    blocked=2)
    third = engine.evaluate("a", "ACCESS_EXTERNAL_SERVICE", {"data_classification": "restricted"})
    assert_decision(third, "Agent Shut Down", "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS", blocked=3,
                    cumulative=80)
    assert third.reason == "Agent shut down after 3 blocked attempts. Cumulative risk remains 80/100."
    assert (third.threat, third.status, third.outcome) == ("Agent Shutdown", "shut_down", "shutdown")


def test_rule_block_beats_the_threshold_and_counts_a_strike(engine: Engine) -> None:
    decision = engine.evaluate("a", "change_permission")
    assert_decision(decision, "Blocked", "BLOCK_PERMISSION_CHANGE", cumulative=0, blocked=1)
    assert (decision.threat, decision.attempted_risk, decision.applied_risk) == (
        "Privilege Escalation", 60, 0)


def test_allowed_actions_between_strikes_do_not_reset_them(engine: Engine) -> None:
    engine.evaluate("a", "CHANGE_PERMISSION")
    engine.evaluate("a", "FILE_READ")
    engine.evaluate("a", "CHANGE_PERMISSION")
    engine.evaluate("a", "READ_RECORD")
    assert engine.state("a") == AgentState(0, 2, "active")
    assert_decision(engine.evaluate("a", "CHANGE_PERMISSION"), "Agent Shut Down",
                    "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS", blocked=3)


def test_after_shutdown_everything_is_denied_and_state_is_unchanged(engine: Engine) -> None:
    for _ in range(3):
        engine.evaluate("a", "CHANGE_PERMISSION")
    before = engine.state("a")
    for action in ("FILE_READ", "EXPORT_DATA", "", "CHANGE_PERMISSION"):
        decision = engine.evaluate("a", action, {"amount": "not a number"})
        assert_decision(decision, "Agent Shut Down", "AGENT_ALREADY_SHUT_DOWN")
        assert (decision.reason, decision.attempted_risk, decision.applied_risk) == (
            "Agent is already shut down.", 0, 0)
    assert engine.state("a") == before == AgentState(0, 3, "shut_down")


def test_reset_revives_one_agent_or_all(engine: Engine) -> None:
    for agent in ("a", "b"):
        for _ in range(3):
            engine.evaluate(agent, "CHANGE_PERMISSION")
    assert engine.reset("a", operator="alice") == ["a"]
    assert engine.state("a") == AgentState(0, 0, "active")
    assert engine.state("b").status == "shut_down"
    assert_decision(engine.evaluate("a", "FILE_READ"), "Allowed", "ALLOW_INTERNAL_WORKFLOW")
    engine.reset(operator="bob")
    assert engine.state("b") == AgentState(0, 0, "active")
    resets = [r for r in engine.store.audit_records() if r["kind"] == "reset"]
    assert [(r["agent"], r["operator"]) for r in resets] == [("a", "alice"), (None, "bob")]


def test_reset_needs_an_operator(engine: Engine) -> None:
    with pytest.raises(ValueError, match="operator"):
        engine.reset("a", operator="")


def test_agents_are_isolated_case_sensitive_and_the_empty_id_is_valid(engine: Engine) -> None:
    for _ in range(3):
        engine.evaluate("Agent", "CHANGE_PERMISSION")
    engine.evaluate("", "EXPORT_DATA", SENSITIVE_EXPORT)
    assert engine.state("Agent").status == "shut_down"
    assert engine.state("agent") == AgentState(0, 0, "active")
    assert engine.state("") == AgentState(80, 0, "active")
    assert engine.agents() == ["", "Agent"]


def test_input_is_normalised_before_matching(engine: Engine) -> None:
    decision = engine.evaluate("a", "  export_data ", {"destination_type": " External",
                                                      "data_classification": "CONFIDENTIAL "})
    assert_decision(decision, "Allowed", "RISKY_SENSITIVE_EXTERNAL_EXPORT")
    assert decision.action == "EXPORT_DATA"
    assert decision.reason == "Export of confidential data to an external destination."


@pytest.mark.parametrize(("fields", "reason"), [
    ({"amount": "12"}, "Field `amount` must be a number, got string."),
    ({"amount": True}, "Field `amount` must be a number, got boolean."),
    ({"amount": float("nan")}, "Field `amount` must be a number, got nan."),
    ({"context": {"eligibility_verified": "yes"}},
     "Field `context.eligibility_verified` must be a boolean, got string."),
    ({"notification_type": ["approval"]}, "Field `notification_type` must be a string, got array."),
])
def test_invalid_input_is_blocked_naming_the_field(engine: Engine, fields: dict[str, object],
                                                   reason: str) -> None:
    decision = engine.evaluate("a", "APPROVE_TRANSACTION", fields)
    assert_decision(decision, "Blocked", "INVALID_INPUT", blocked=1, cumulative=0)
    assert (decision.reason, decision.threat) == (reason, "Invalid Input")
    assert "input rejected before any rule" in str(decision.explanation)


@pytest.mark.parametrize(("context", "got"), [
    ('{"approval_requires_verified_eligibility": true}', "string"), (5, "integer"),
    (True, "boolean"), ([{"approval_requires_verified_eligibility": True}], "array"),
    (0, "integer"), ("", "string"),
])
def test_a_parent_that_is_not_an_object_is_invalid_not_empty(engine: Engine, context: object,
                                                             got: str) -> None:
    """Fail closed: a present parent of a dotted field is never read as `{}`."""
    for action in ("APPROVE_TRANSACTION", "FILE_READ", "NOT_IN_THE_POLICY"):
        decision = engine.evaluate(action, action, {"context": context})
        assert_decision(decision, "Blocked", "INVALID_INPUT", blocked=1, cumulative=0)
        assert decision.reason == f"Field `context` must be an object, got {got}."
        assert "input rejected before any rule" in str(decision.explanation)
    # a flat dotted key does not rescue it either
    flat = engine.evaluate("f", "APPROVE_TRANSACTION", {
        "context": context, "context.approval_requires_verified_eligibility": True})
    assert flat.rule_id == "INVALID_INPUT"


def test_a_null_parent_is_missing(engine: Engine) -> None:
    assert_decision(engine.evaluate("a", "APPROVE_TRANSACTION", {"context": None}), "Allowed",
                    "ALLOW_TRANSACTION")
    flat = engine.evaluate("b", "APPROVE_TRANSACTION", {
        "context": None, "context.approval_requires_verified_eligibility": True})
    assert_decision(flat, "Allowed", "RISKY_UNAUTHORIZED_TRANSACTION")


def test_a_nested_parent_that_is_not_an_object_names_its_path() -> None:
    table = {**sentra_table()}
    table["input"] = [*table["input"], {**next(
        spec for spec in table["input"] if spec["name"] == "context.eligibility_verified"),
        "name": "context.limits.strict"}]
    table["hash"] = content_hash(table)
    engine = Engine(table)
    decision = engine.evaluate("a", "FILE_READ", {"context": {"limits": "high"}})
    assert decision.rule_id == "INVALID_INPUT"
    assert decision.reason == "Field `context.limits` must be an object, got string."
    assert engine.evaluate("b", "FILE_READ", {"context": {"limits": None}}).allowed


def test_the_reference_interpreter_agrees_on_non_object_parents() -> None:
    from sentra_lang.compiler import compile_source
    from sentra_lang.interpreter import Interpreter, InvalidInput

    source = POLICIES / "sentra.sentra"
    result = compile_source(source.read_text(encoding="utf-8"), str(source))
    assert result.table is not None and result.model is not None
    interpreter = Interpreter(result.model)
    engine = Engine(result.table.model_dump(mode="json"))
    context: object
    for context in ('{"approval_requires_verified_eligibility": true}', 5, [], False):
        with pytest.raises(InvalidInput) as raised:
            interpreter.values({"context": context})
        assert raised.value.field == "context"
        decision = engine.evaluate(repr(context), "APPROVE_TRANSACTION", {"context": context})
        assert decision.rule_id == "INVALID_INPUT"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"context": None}, "ALLOW_TRANSACTION"),
        ({"context": {"approval_requires_verified_eligibility": True}},
         "RISKY_UNAUTHORIZED_TRANSACTION")]
    for fields, rule in cases:
        matched = interpreter.match("APPROVE_TRANSACTION", fields)
        assert matched is not None and matched.id == rule
        engine.reset(operator="test")
        assert engine.evaluate("a", "APPROVE_TRANSACTION", fields).rule_id == rule


def test_dotted_fields_read_nested_then_flat(engine: Engine) -> None:
    nested = engine.evaluate("a", "APPROVE_TRANSACTION", {"amount": 10, "context": {
        "max_approval_amount": 5}})
    flat = engine.evaluate("b", "APPROVE_TRANSACTION", {"amount": 10,
                                                        "context.max_approval_amount": 5})
    assert nested.rule_id == flat.rule_id == "RISKY_OVER_LIMIT_TRANSACTION"
    assert nested.reason == "Transaction amount 10 exceeds the approval limit 5."


def test_a_missing_comparison_field_is_false(engine: Engine) -> None:
    assert_decision(engine.evaluate("a", "APPROVE_TRANSACTION", {"amount": 10}), "Allowed",
                    "ALLOW_TRANSACTION")


def test_sentra_notification_rows(engine: Engine) -> None:
    verified = {"approval_requires_verified_eligibility": True, "eligibility_verified": True,
                "required_documents_present": True}
    cases = [
        ({"notification_type": "Rejection"}, "ALLOW_REJECTION_NOTIFICATION"),
        ({"notification_type": "approval", **UNVERIFIED}, "BLOCK_UNSAFE_APPROVAL_NOTIFICATION"),
        ({"notification_type": "approval", "context": verified}, "ALLOW_APPROVAL_NOTIFICATION"),
        ({"notification_type": "approval"}, "ALLOW_APPROVAL_NOTIFICATION"),
        ({}, "ALLOW_GENERAL_NOTIFICATION"),
    ]
    for index, (fields, rule_id) in enumerate(cases):
        assert engine.evaluate(f"n{index}", "SEND_NOTIFICATION", fields).rule_id == rule_id


def test_explanation_names_the_failed_test_and_the_actual_value(engine: Engine) -> None:
    decision = engine.evaluate("a", "SEND_NOTIFICATION", {"notification_type": "approval"})
    trials = decision.explanation.trials
    assert [t.rule_id for t in trials] == [
        "ALLOW_REJECTION_NOTIFICATION", "BLOCK_UNSAFE_APPROVAL_NOTIFICATION",
        "BLOCK_UNSAFE_APPROVAL_NOTIFICATION", "ALLOW_APPROVAL_NOTIFICATION"]
    assert (trials[0].failed_test, trials[0].actual) == ('notification_type == "rejection"',
                                                         '"approval"')
    assert trials[-1].matched and decision.explanation.matched_rule == trials[-1].rule_id


def test_decision_is_frozen_and_equal_by_value(engine: Engine) -> None:
    first = engine.evaluate("a", "FILE_READ")
    second = Engine(engine.policy).evaluate("a", "FILE_READ")
    assert first == second and hash(first) == hash(second)
    with pytest.raises(AttributeError):
        first.reason = "changed"  # type: ignore[misc]


def test_self_referencing_rejected_input_is_recorded_not_recursed(engine: Engine) -> None:
    looped: dict[str, Any] = {"amount": "not a number"}
    looped["again"] = looped
    decision = engine.evaluate("a", "APPROVE_TRANSACTION", looped)
    assert decision.rule_id == "INVALID_INPUT"
    record = list(engine.audit_records())[-1]
    depth = 0
    node = record["input"]
    while isinstance(node, dict):
        node, depth = node["again"], depth + 1
    assert (depth, node) == (64, "<nested deeper than 64 levels>")


def test_guard_raises_before_the_body_runs(engine: Engine) -> None:
    calls: list[str] = []

    @engine.guard("a", "CHANGE_PERMISSION")
    def grant(user: str) -> str:
        """Grant a permission."""
        calls.append(user)
        return user

    with pytest.raises(PermissionError) as raised:
        grant("eve")
    assert calls == [] and grant.__doc__ == "Grant a permission."
    assert isinstance(raised.value, ActionDenied)
    assert raised.value.decision.rule_id == "BLOCK_PERMISSION_CHANGE"


def test_guard_takes_fields_from_keyword_arguments(engine: Engine) -> None:
    @engine.guard("a", "EXPORT_DATA", {"destination_type": "external"})
    def export(*, data_classification: str) -> str:
        return data_classification

    assert export(data_classification="internal") == "internal"
    export(data_classification="sensitive")
    assert engine.state("a").cumulative_risk == 80
    with pytest.raises(PermissionError):
        export(data_classification="sensitive")


def test_guard_takes_fields_from_positional_arguments_and_defaults(engine: Engine) -> None:
    @engine.guard("a", "EXPORT_DATA")
    def export(destination_type: str, data_classification: str = "sensitive",
               **options: Any) -> str:
        return destination_type

    assert export("internal") == "internal"               # the default is read too
    assert export.last_decision.rule_id == "ALLOW_INTERNAL_EXPORT"
    export("external")                                    # external + default "sensitive"
    assert export.last_decision.rule_id == "RISKY_SENSITIVE_EXTERNAL_EXPORT"
    assert export.last_decision.cumulative_risk == 80
    with pytest.raises(PermissionError):
        export("external", data_classification="restricted")

    @engine.guard("b", "SEND_NOTIFICATION")
    def notify(*recipients: str, **fields: Any) -> int:
        return len(recipients)

    assert notify(notification_type="rejection") == 0
    assert notify.last_decision.rule_id == "ALLOW_REJECTION_NOTIFICATION"
    with pytest.raises(TypeError, match=r"\*recipients"):   # the body might use them as fields
        notify("x", "y", notification_type="approval")
    assert notify.last_decision.rule_id == "ALLOW_REJECTION_NOTIFICATION"   # not evaluated


def test_guard_fields_may_not_name_a_parameter(engine: Engine) -> None:
    """The body would get the caller's value or the default, not the one the policy saw."""
    with pytest.raises(TypeError, match="destination_type"):
        @engine.guard("a", "EXPORT_DATA", {"destination_type": "external"})
        def export(destination_type: str = "internal") -> None:
            pass


def test_guard_fields_yield_to_what_the_call_passes(engine: Engine) -> None:
    @engine.guard("a", "EXPORT_DATA", {"destination_type": "external"})
    def export(data_classification: str = "sensitive", **options: Any) -> None:
        pass

    export()                                              # the guard's field and the default
    assert export.last_decision.rule_id == "RISKY_SENSITIVE_EXTERNAL_EXPORT"
    export("sensitive", destination_type="internal")     # the body gets "internal": so does
    assert export.last_decision.rule_id == "ALLOW_INTERNAL_EXPORT"   # the policy


def test_guard_reads_only_declared_names(engine: Engine) -> None:
    """Other arguments (a key, a payload) never reach the decision or the audit log."""
    @engine.guard("a", "APPROVE_TRANSACTION")
    def pay(amount: Any, api_key: str, payload: bytes = b"") -> None:
        pass

    with pytest.raises(ActionDenied):
        pay("100", "sk-live-SECRET", b"\0" * 50)        # amount is not a number: blocked
    record = list(engine.audit_records())[-1]
    assert record["decision"]["rule_id"] == "INVALID_INPUT"
    assert record["input"] == {"amount": "100"}


def test_guard_reads_the_arguments_a_partial_binds(engine: Engine) -> None:
    import functools

    def export(destination_type: str, data_classification: str) -> None:
        pass

    guarded = engine.guard("a", "EXPORT_DATA")(functools.partial(export, "external"))
    guarded("restricted")
    assert guarded.last_decision.rule_id == "RISKY_SENSITIVE_EXTERNAL_EXPORT"
    guarded = engine.guard("b", "EXPORT_DATA")(functools.partial(
        export, data_classification="restricted"))
    guarded("external")
    assert guarded.last_decision.rule_id == "RISKY_SENSITIVE_EXTERNAL_EXPORT"


def test_guard_refuses_what_it_cannot_read(engine: Engine) -> None:
    with pytest.raises(TypeError, match="no signature"):
        engine.guard("a", "EXPORT_DATA")(max)
    with pytest.raises(TypeError, match="below @classmethod"):
        class Tools:
            @engine.guard("a", "EXPORT_DATA")   # type: ignore[arg-type]
            @classmethod
            def export(cls) -> None:
                pass

    @engine.guard("a", "EXPORT_DATA")
    def export(destination_type: str, data_classification: str, /, **options: Any) -> None:
        pass

    with pytest.raises(TypeError, match="ambiguous"):
        export("external", "restricted", data_classification="internal")
    assert engine.agents() == []   # nothing was evaluated


def test_guard_refuses_a_decorated_function_whose_wrapper_takes_other_parameters(
        engine: Engine) -> None:
    import functools

    def inject_session(function: Any) -> Any:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return function("SESSION", *args, **kwargs)
        return wrapper

    def export(session: str, destination_type: str) -> str:
        return destination_type

    with pytest.raises(TypeError, match="directly on the function"):
        engine.guard("a", "EXPORT_DATA")(inject_session(export))
    guarded = inject_session(engine.guard("a", "EXPORT_DATA")(export))   # innermost: fine
    assert guarded("external") == "external"
    assert guarded.__wrapped__.last_decision.trace.values["destination_type"] == "external"
    cached = engine.guard("b", "EXPORT_DATA")(functools.lru_cache(export))   # no own signature
    assert cached("s", "internal") == "internal"


def test_guard_reads_flat_dotted_keys_and_refuses_dotted_fields_on_parameters(
        engine: Engine) -> None:
    @engine.guard("a", "SEND_NOTIFICATION")
    def notify(notification_type: str, **options: Any) -> None:
        pass

    with pytest.raises(ActionDenied):   # as evaluate reads it: a flat dotted key counts
        notify("approval", **{"context.approval_requires_verified_eligibility": True})
    assert notify.last_decision.rule_id == "BLOCK_UNSAFE_APPROVAL_NOTIFICATION"
    with pytest.raises(TypeError, match="context.max_approval_amount"):
        @engine.guard("a", "APPROVE_TRANSACTION", {"context.max_approval_amount": 1000})
        def approve(amount: int, context: Any = None) -> None:
            pass
    with pytest.raises(TypeError, match="declared field"):
        @engine.guard("a", "SEND_NOTIFICATION")
        def send(notification_type: str, **context: Any) -> None:
            pass


def test_guard_reads_partials_of_partials(engine: Engine) -> None:
    import functools

    def export(session: str, destination_type: str = "internal",
               data_classification: str = "internal") -> tuple[str, str]:
        return destination_type, data_classification

    tool = functools.partial(export, "S", "external")
    tool.__name__ = "export_external"   # type: ignore[attr-defined]  # not flattened now
    guarded = engine.guard("a", "EXPORT_DATA")(functools.partial(
        tool, data_classification="restricted"))
    assert guarded() == ("external", "restricted")
    assert guarded.last_decision.rule_id == "RISKY_SENSITIVE_EXTERNAL_EXPORT"


def test_guard_refuses_what_it_cannot_follow(engine: Engine) -> None:
    def with_session(function: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:   # no functools.wraps
            return function("SESSION", *args, **kwargs)
        return wrapper

    def export(session: str, destination_type: str, data_classification: str) -> None:
        pass

    guarded = engine.guard("a", "EXPORT_DATA")(with_session(export))
    with pytest.raises(TypeError, match=r"\*args"):
        guarded("external", "restricted")
    with pytest.raises(TypeError, match="generator"):
        @engine.guard("a", "SEND_NOTIFICATION")
        def notify(notification_type: str) -> Any:
            yield notification_type


def test_guard_accepts_what_it_can_follow(engine: Engine) -> None:
    import inspect
    import math

    @engine.guard("a", "APPROVE_TRANSACTION")
    def approve(amount: float = math.nan) -> None:   # nan != nan: defaults are not compared
        pass

    @engine.guard("b", "EXPORT_DATA")
    @engine.guard("b", "FILE_READ")   # guards stack: each passes the arguments on
    def export(destination_type: str) -> None:
        pass

    export("external")
    assert export.last_decision.trace.values["destination_type"] == "external"
    assert export.__wrapped__.last_decision.rule_id == "ALLOW_INTERNAL_WORKFLOW"

    class Notifier:
        async def __call__(self, notification_type: str) -> str:
            return notification_type

    notifier = engine.guard("c", "SEND_NOTIFICATION")(Notifier())
    assert inspect.iscoroutinefunction(notifier)   # checked when called, then awaited


def test_guard_on_a_method_reads_its_arguments_not_self(engine: Engine) -> None:
    class Exporter:
        destination_type = "ignored"

        @engine.guard("a", "EXPORT_DATA")
        def export(self, destination_type: str, data_classification: str) -> str:
            return destination_type

    assert Exporter().export("external", "internal") == "external"
    assert Exporter.export.last_decision.rule_id == "ALLOW_INTERNAL_EXPORT"
    with pytest.raises(ActionDenied):
        for _ in range(2):
            Exporter().export("external", "restricted")


def test_guard_without_arguments_uses_its_fields_only(engine: Engine) -> None:
    @engine.guard("a", "EXPORT_DATA", {"destination_type": "internal"}, from_arguments=False)
    def export(destination_type: str) -> str:
        return destination_type

    assert export("external") == "external"
    assert export.last_decision.rule_id == "ALLOW_INTERNAL_EXPORT"


def test_guard_refuses_a_call_that_does_not_fit_before_evaluating(engine: Engine) -> None:
    @engine.guard("a", "FILE_READ")
    def read(path: str) -> str:
        return path

    with pytest.raises(TypeError):
        read()   # type: ignore[call-arg]
    assert read.last_decision is None and engine.agents() == []


def test_guard_on_a_coroutine_function_reads_its_arguments(engine: Engine) -> None:
    import asyncio

    @engine.guard("a", "CHANGE_PERMISSION")
    async def grant(user: str) -> str:
        return user

    with pytest.raises(ActionDenied):
        asyncio.run(grant("eve"))

    @engine.guard("b", "SEND_NOTIFICATION")
    async def notify(notification_type: str) -> str:
        return notification_type

    assert asyncio.run(notify("rejection")) == "rejection"
    assert notify.last_decision.rule_id == "ALLOW_REJECTION_NOTIFICATION"


def test_shutdown_rule_stops_the_agent_at_once(sentra_table: dict[str, object]) -> None:
    from tests.runtime.tables import with_shutdown_rule
    engine = Engine(with_shutdown_rule(sentra_table))
    decision = engine.evaluate("a", "CHANGE_PERMISSION")
    assert_decision(decision, "Agent Shut Down", "BLOCK_PERMISSION_CHANGE", blocked=1)
    assert (decision.status, decision.reason) == (
        "shut_down", "Permission changes are blocked without explicit authorization.")
    assert engine.state("a").status == "shut_down"


def test_unknown_action_without_otherwise_is_blocked(sentra_table: dict[str, object]) -> None:
    from tests.runtime.tables import without_otherwise
    engine = Engine(without_otherwise(sentra_table))
    decision = engine.evaluate("a", "launch")
    assert_decision(decision, "Blocked", "UNKNOWN_ACTION", blocked=1)
    assert decision.reason == ("Action type `LAUNCH` is not covered by the policy and it has no "
                               "`otherwise` rule.")
    assert decision.threat == "Unknown Behavior"
    assert decision.audit_input == {}
