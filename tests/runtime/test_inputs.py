"""Known answers for the one definition of input semantics (docs/table.md, "Input"), through the
real runtime, the reference interpreter and the server's 422 validation; each case is a claim of
that page."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sentra_runtime import Engine
from sentra_runtime.inputs import InputSchema, closest

from sentra_lang.compiler import compile_source
from sentra_lang.interpreter import Interpreter, InvalidInput
from sentra_lang.server.gate import field_errors
from tests.runtime.helpers import sentra_table
from tests.runtime.tables import reseal, with_undeclared

ACCOUNT_FLAG = {"name": "context.account_flag", "type": "string", "optional": True,
                "has_default": False, "default": None, "normalize": [], "values": None}


def table(undeclared: str | None = "refuse") -> dict[str, Any]:
    """The Sentra reference table plus `context.account_flag`, with `undeclared_fields`
    (``None``: a version-1 table without the setting)."""
    changed = copy.deepcopy(sentra_table())
    changed["input"].append(copy.deepcopy(ACCOUNT_FLAG))
    return reseal(with_undeclared(changed, undeclared))


def decide(fields: dict[str, Any], undeclared: str | None = "refuse",
           action: str = "APPROVE_TRANSACTION") -> tuple[str, str]:
    decision = Engine(table(undeclared)).evaluate("agent", action, fields)
    return decision.rule_id, decision.reason


def max_amount(fields: dict[str, Any]) -> Any:
    """The value the policy read for `context.max_approval_amount`."""
    decision = Engine(table()).evaluate("agent", "APPROVE_TRANSACTION", fields)
    assert decision.trace is not None and decision.trace.evaluated, decision.reason
    return decision.trace.values["context.max_approval_amount"]


# -- where a field is, and null ---------------------------------------------------------------------

def test_a_dotted_field_is_read_nested_or_flat_and_both_styles_mix() -> None:
    assert max_amount({"context": {"max_approval_amount": 10}}) == 10
    assert max_amount({"context.max_approval_amount": 10}) == 10
    assert max_amount({"context": {"eligibility_verified": True},
                       "context.max_approval_amount": 10}) == 10


def test_null_is_absent_so_the_flat_key_is_read() -> None:
    """Issue 11's example: the interpreter read none, the engine 5; both read 5 now."""
    fields = {"context": {"max_approval_amount": None}, "context.max_approval_amount": 5}
    assert max_amount(fields) == 5
    assert max_amount({"context": None, "context.max_approval_amount": 5}) == 5
    assert max_amount({"context": {"max_approval_amount": None}}) is None
    model = compile_source(POLICY, "p.sentra").model
    assert model is not None
    assert Interpreter(model).values(fields)["context.max_approval_amount"] == 5


def test_a_field_given_nested_and_flat_is_refused_even_when_they_agree() -> None:
    for flat in (5, 10):
        rule, reason = decide({"context": {"max_approval_amount": 10},
                               "context.max_approval_amount": flat})
        assert (rule, reason) == ("INVALID_INPUT", (
            "Field `context.max_approval_amount` is given twice: inside its object and as the "
            "flat key `context.max_approval_amount`."))


@pytest.mark.parametrize(("value", "kind"), [(5, "integer"), ("{}", "string"), ([], "array"),
                                           (True, "boolean")])
def test_an_object_that_is_not_an_object_is_refused_by_its_path(value: Any, kind: str) -> None:
    assert decide({"context": value}) == (
        "INVALID_INPUT", f"Field `context` must be an object, got {kind}.")


def test_half_flat_spellings_are_not_read() -> None:
    half = {"context": {"max_approval_amount.x": 1}}
    assert decide(half, "ignore")[0] == "ALLOW_TRANSACTION"
    assert decide(half) == ("UNDECLARED_FIELD", "Field `context.max_approval_amount.x` is not "
                            "declared by the policy; did you mean `context.max_approval_amount`?")


def test_types_are_strict_and_numbers_may_be_any_size() -> None:
    assert max_amount({"context": {"max_approval_amount": 10**400}}) == 10**400
    assert decide({"amount": 10**400, "context": {"max_approval_amount": 1.5}})[0] == \
        "RISKY_OVER_LIMIT_TRANSACTION"
    assert decide({"amount": float("nan")}) == (
        "INVALID_INPUT", "Field `amount` must be a number, got nan.")
    assert decide({"amount": True}) == (
        "INVALID_INPUT", "Field `amount` must be a number, got boolean.")


# -- undeclared keys ------------------------------------------------------------------------------

def test_a_typo_in_policy_context_is_refused_with_a_did_you_mean() -> None:
    """Issue 11 item 4: `"policy_context": {"acount_flag": "fraud"}` was allowed."""
    decision = Engine(table()).evaluate("a", "FILE_READ", {"context": {"acount_flag": "fraud"}})
    assert (decision.allowed, decision.rule_id, decision.threat) == (
        False, "UNDECLARED_FIELD", "Invalid Input")
    assert decision.reason == ("Field `context.acount_flag` is not declared by the policy; did "
                               "you mean `context.account_flag`?")
    assert decision.blocked_attempts == 1   # a strike, as any block
    assert "input rejected before any rule" in str(decision.explanation)


def test_top_level_typos_and_keys_far_from_any_field() -> None:
    assert decide({"amout": 5}) == (
        "UNDECLARED_FIELD", "Field `amout` is not declared by the policy; did you mean `amount`?")
    assert decide({"zzz": 1}) == ("UNDECLARED_FIELD", "Field `zzz` is not declared by the policy.")
    assert decide({"contxt": {}})[1].endswith("did you mean `context`?")


def test_objects_flat_keys_and_null_values_are_declared() -> None:
    for fields in ({"context": {"max_approval_amount": 5}}, {"context": None}, {"context": {}},
                   {"context.max_approval_amount": 5}, {"bogus": None},
                   {"context": {"bogus": None}}):
        assert decide(fields)[0] == "ALLOW_TRANSACTION", fields


def test_the_first_undeclared_key_in_sorted_order_is_named_before_any_other_problem() -> None:
    fields = {"zeta": 1, "amount": "not a number", "context": {"beta": 1}, "alpha": 2}
    assert decide(fields)[1].startswith("Field `alpha` is not declared")


def test_ignore_reads_past_undeclared_keys_and_version_1_tables_ignore() -> None:
    fields = {"context": {"acount_flag": "fraud"}, "claim_id": "c-1"}
    assert decide(fields, "ignore")[0] == "ALLOW_TRANSACTION"
    assert decide(fields, None)[0] == "ALLOW_TRANSACTION"
    assert Engine(table(None)).policy.schema_version == 1


def test_unknown_actions_are_decided_before_input_is_read() -> None:
    changed = table()
    changed["otherwise"] = None
    decision = Engine(reseal(changed)).evaluate("a", "NO_SUCH_ACTION", {"zzz": 1})
    assert decision.rule_id == "UNKNOWN_ACTION"


# -- the other readers of the definition ---------------------------------------------------------

POLICY = """policy p version "1" {}
input {
  amount: number?
  context.account_flag: string?
  context.max_approval_amount: number?
}
action APPROVE_TRANSACTION {
  when context.account_flag == "fraud" block as FRAUD "Fraud."
  allow as ALLOW_TRANSACTION "Allowed."
}
otherwise block as OTHER "No."
"""


@pytest.mark.parametrize(("fields", "field"), [
    ({"context": {"acount_flag": "fraud"}}, "context.acount_flag"),
    ({"context": {"account_flag": "x"}, "context.account_flag": "y"}, "context.account_flag"),
    ({"context": 5}, "context"),
    ({"amount": "12"}, "amount"),
])
def test_the_interpreter_refuses_what_the_engine_refuses(fields: dict[str, Any],
                                                        field: str) -> None:
    result = compile_source(POLICY, "p.sentra")
    assert result.model is not None and result.table is not None
    with pytest.raises(InvalidInput) as raised:
        Interpreter(result.model).values(fields)
    decision = Engine(result.table.model_dump(mode="json")).evaluate("a", "APPROVE_TRANSACTION",
                                                                    fields)
    assert raised.value.field == field and decision.reason == raised.value.problem.reason


def test_the_server_422_lists_every_problem_with_its_location() -> None:
    policy = Engine(table()).policy
    errors = field_errors(policy, {"context": {"acount_flag": "fraud", "max_approval_amount": "x"},
                                   "amout": 5, "amount": True},
                          lambda name: ("body", "fields", *name.split(".")))
    assert [(error.loc, error.type) for error in errors] == [
        (("body", "fields", "amout"), "extra_forbidden"),
        (("body", "fields", "context", "acount_flag"), "extra_forbidden"),
        (("body", "fields", "amount"), "number_type"),
        (("body", "fields", "context", "max_approval_amount"), "number_type"),
    ]
    assert errors[0].msg == "The policy declares no such field; did you mean `amount`?"
    assert errors[1].msg == "The policy declares no such field; did you mean `account_flag`?"
    assert errors[1].input == "fraud"
    twice = field_errors(policy, {"context": {"account_flag": "a"}, "context.account_flag": "b"},
                         lambda name: (name,))
    assert [(error.loc, error.type) for error in twice] == [
        (("context.account_flag",), "given_twice")]
    assert field_errors(Engine(table("ignore")).policy, {"amout": 5}, lambda n: (n,)) == []


def test_closest_is_the_compilers_did_you_mean() -> None:
    names = ["amount", "context.account_flag", "context"]
    assert closest("amout", names) == "amount"
    assert closest("CONTEXT", names) == "context"
    assert closest("other.account_flag", names) == "context.account_flag"
    assert closest("zzz", names) is None


def test_a_schema_refuses_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="undeclared_fields"):
        InputSchema((), "warn")
