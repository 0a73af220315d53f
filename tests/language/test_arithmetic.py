"""Arithmetic and the reason placeholders in the language: known answers from docs/language.md
and docs/table.md, the checker's diagnostics, hostile input, the table's schema version, the
analysis (exact rewrite or SL408, never a wrong finding), `diff`, `explain` and the docs."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sentra_runtime import Decider
from sentra_runtime.policy import PolicyLoadError, load_policy

from sentra_lang import ast
from sentra_lang.compiler import compile_source
from sentra_lang.formatter import format_condition, format_source
from sentra_lang.parser import parse
from sentra_lang.table import dump_table
from tests.helpers import assert_diagnostic, compile_ok

ROOT = Path(__file__).resolve().parents[2]
FIELDS = "input {\n  amount: number\n  items: int\n  total: number\n  limit: int?\n}\n"


def policy(*rules: str, header: str = 'policy p version "1" {}\n', fields: str = FIELDS) -> str:
    body = "\n".join(f"  {rule}" for rule in rules)
    return f"{header}{fields}action REFUND {{\n{body}\n  allow as OK\n}}\notherwise block as OTHER\n"


def table_of(src: str) -> dict[str, Any]:
    comp = compile_ok(src)
    assert comp.table is not None
    data: dict[str, Any] = json.loads(dump_table(comp.table))
    return data


def table_tests(src: str) -> list[dict[str, Any]]:
    return [test for row in table_of(src)["actions"][0]["rows"] for test in row["tests"]]


def decide(src: str, fields: dict[str, Any], action: str = "REFUND",
           agent: str = "agent-1") -> Any:
    decision, _ = Decider(table_of(src)).decide(action, fields, agent_id=agent)
    return decision


def parsed_condition(text: str) -> ast.Condition:
    module, diagnostics = parse(f"let C = {text}\n")
    assert module is not None and not diagnostics, diagnostics
    let = module.items[0]
    assert isinstance(let, ast.Let)
    return let.value  # type: ignore[return-value]


# ------------------------------------------------------------------- grammar and formatter

@pytest.mark.parametrize(("source", "expected"), [
    ("a+b*c>d", "a + b * c > d"),
    ("(a+b)*c>d", "(a + b) * c > d"),
    ("a-b-c>0", "a - b - c > 0"),
    ("a-(b-c)>0", "a - (b - c) > 0"),
    ("a+(b+c)>0", "a + (b + c) > 0"),
    ("a/b/c>0", "a / b / c > 0"),
    ("a/(b*c)>0", "a / (b * c) > 0"),
    ("(a*b)/c>0", "a * b / c > 0"),
    ("-(a+b)>0", "-(a + b) > 0"),
    ("- a * b>0", "-a * b > 0"),
    ("--a>0", "--a > 0"),
    ("a > - 5", "a > -5"),
    ("a-1>0", "a - 1 > 0"),
    ("a - -1>0", "a - -1 > 0"),
    ("0.50 * a > 1.0", "0.5 * a > 1.0"),
    ("not (a*2>b) and c", "not a * 2 > b and c"),
    ("(a + 1 > 2) or b", "a + 1 > 2 or b"),
])
def test_conditions_with_arithmetic_print_with_minimal_parentheses(source: str,
                                                                   expected: str) -> None:
    cond = parsed_condition(source)
    assert format_condition(cond) == expected
    assert parsed_condition(expected) == cond


def test_precedence_and_left_grouping_are_the_documented_ones() -> None:
    cond = parsed_condition("a - b - c * d / e > -f")
    assert isinstance(cond, ast.ArithCompare)
    left = cond.left
    assert isinstance(left, ast.BinOp) and left.op == "-"  # (a - b) - ((c * d) / e)
    assert isinstance(left.left, ast.BinOp) and left.left.op == "-"
    assert isinstance(left.right, ast.BinOp) and left.right.op == "/"
    assert isinstance(left.right.left, ast.BinOp) and left.right.left.op == "*"
    assert isinstance(cond.right, ast.Neg)


def test_a_field_compared_with_a_field_or_literal_stays_an_ordinary_comparison() -> None:
    assert isinstance(parsed_condition("a > b"), ast.Compare)
    assert isinstance(parsed_condition("a > -5"), ast.Compare)
    assert isinstance(parsed_condition("a > - 5"), ast.Compare)  # `- 5` is the number -5
    assert isinstance(parsed_condition("5 < a"), ast.ArithCompare)


def test_formatter_golden_case_is_idempotent() -> None:
    source = (ROOT / "tests" / "formatter" / "cases" / "arithmetic.sentra.in").read_text("utf-8")
    once, _ = format_source(source)
    assert once is not None and format_source(once)[0] == once
    assert table_of(once)["actions"] == table_of(source)["actions"]


# ---------------------------------------------------------------------------- the checker

def test_operands_must_be_numbers_with_did_you_mean() -> None:
    assert_diagnostic(policy("when amount > totl * 2 block as X"), "SL101", underline="totl",
                      message="undeclared field `totl`")
    fields = FIELDS.replace("}\n", "  kind: string\n  kinds: bool\n}\n")
    diag = assert_diagnostic(policy("when amount > kinds * 2 block as X", fields=fields),
                             "SL220", underline="kinds", message="`kinds` is a `bool` field")
    assert diag.help is not None
    fields = FIELDS.replace("}\n", "  amounts: string\n}\n")
    diag = assert_diagnostic(policy("when amounts * 2 > 1 block as X", fields=fields), "SL220")
    assert diag.help == "did you mean `amount`?"


def test_a_condition_is_not_a_number_and_a_number_is_not_a_condition() -> None:
    assert_diagnostic(policy("when (amount > 1) * 2 > 1 block as X"), "SL220",
                      underline="amount > 1")
    assert_diagnostic(policy("when amount * 2 block as X"), "SL204", underline="amount * 2",
                      message="is a number, not a condition")
    assert_diagnostic(policy("when amount + 1 == true block as X"), "SL201")


def test_constant_failures_and_constant_comparisons_are_errors() -> None:
    assert_diagnostic(policy("when amount > 10 / (5 - 5) block as X"), "SL221",
                      underline="10 / (5 - 5)", message="`10 / 0` divides by zero")
    big = "9" * 99 + ".0"
    assert_diagnostic(policy(f"when amount > {big} * {big} * {big} * {big} block as X"),
                      "SL221", message="is not a finite number")
    assert_diagnostic(policy("when 1 + 1 == 2 block as X"), "SL223", underline="1 + 1 == 2")


def test_fields_may_not_take_the_built_in_placeholder_names() -> None:
    for name in ("action", "agent_id"):
        fields = f"input {{\n  {name}: string\n}}\n"
        assert_diagnostic(policy(f'when {name} == "x" block as X', fields=fields), "SL222",
                          underline=name)
    compile_ok(policy('when context.action == "x" block as X',
                      fields="input {\n  context.action: string\n}\n"))


def test_reason_placeholders_are_known_with_did_you_mean() -> None:
    compile_ok(policy('when amount > 1 block as X "{action} by {agent_id}"'))
    diag = assert_diagnostic(policy('when amount > 1 block as X "{acton}"'), "SL101")
    assert diag.help == "did you mean `action`?"


# ------------------------------------------------------------------------ hostile input

@pytest.mark.parametrize("condition", [
    " + ".join(["amount"] * 20000) + " > 1",
    " * ".join(["amount"] * 102) + " > 1",
    "-" * 50000 + "amount > 1",
    "- " * 20000 + "amount > 1",
    "amount + (" * 3000 + "amount" + ")" * 3000 + " > 1",
    "(" * 5000 + "amount > 1",
    "amount +* 2 > 1",
    "amount + > 1",
    "amount > 1 +",
    "amount ** 2 > 1",
    "amount > 1 / / 2",
    "(amount > 1) / 2 > 1",
    "amount < items < total",
])
def test_hostile_arithmetic_gets_a_located_error_never_a_traceback(condition: str) -> None:
    result = compile_source(policy(f"when {condition} block as X"), "t.sentra")
    errors = [d for d in result.diagnostics if d.severity.value == "error"]
    assert errors, "hostile input compiled"
    assert all(d.code.startswith("SL") and d.span.line >= 1 for d in errors)


def test_arithmetic_just_within_the_nesting_limit_compiles_to_a_table_the_runtime_loads() -> None:
    chain = " + ".join(["amount"] * 101)  # 100 operations: the limit
    load_policy(table_of(policy(f"when {chain} > 1 block as X")))
    parens = "(" * 20000 + "amount" + ")" * 20000  # parentheses alone add nothing
    load_policy(table_of(policy(f"when {parens} * 2 > 1 block as X")))


def test_hostile_table_expressions_are_refused_with_their_path() -> None:
    good = table_of(policy("when amount > total * 0.5 block as X"))
    deep: dict[str, Any] = {"field": "amount"}
    for _ in range(150):
        deep = {"op": "neg", "args": [deep]}
    for bad, message in [
        ({"op": "%", "args": [{"field": "amount"}, {"const": 2}]}, "unknown operator `%`"),
        ({"op": "+", "args": [{"field": "amount"}]}, "`+` takes 2 arguments, got 1"),
        ({"const": "2"}, "expected a finite number"),
        ({"field": "kind"}, "field `kind` is not declared"),
        ({"field": "amount", "const": 1}, "expected"),
        (deep, "nests more than 100 levels"),
    ]:
        table = json.loads(json.dumps(good))
        table["actions"][0]["rows"][0]["tests"][0]["right"] = bad
        with pytest.raises(PolicyLoadError) as raised:
            load_policy(table, verify_hash=False)
        assert message in str(raised.value) and "actions[0].rows[0].tests[0].right" in str(
            raised.value)


# ------------------------------------------------------------------------------ the table

def test_constants_fold_and_single_field_comparisons_are_ordinary_tests() -> None:
    assert table_tests(policy("when amount > 100 * 2 block as X")) == [
        {"field": "amount", "op": ">", "value": 200, "other": None, "negate": False}]
    assert table_tests(policy("when 100 * 2 < amount block as X")) == [
        {"field": "amount", "op": ">", "value": 200, "other": None, "negate": False}]
    assert table_tests(policy("when amount != total + 0 block as X"))[0]["negate"] is True
    assert table_tests(policy("when amount > total * (1 - 0.5) block as X")) == [
        {"op": ">", "negate": False, "left": {"field": "amount"},
         "right": {"op": "*", "args": [{"field": "total"}, {"const": 0.5}]}}]
    assert table_tests(policy("when amount + 1 + 2 > 0 block as X"))[0]["left"] == {
        "op": "+", "args": [{"op": "+", "args": [{"field": "amount"}, {"const": 1}]},
                            {"const": 2}]}


def test_only_tables_that_compute_or_name_the_agent_are_version_3() -> None:
    assert table_of(policy("when amount > 100 * 2 block as X"))["schema_version"] == 2
    assert table_of(policy("when amount > total * 2 block as X"))["schema_version"] == 3
    assert table_of(policy('when amount > 1 block as X "{agent_id}"'))["schema_version"] == 3
    assert table_of(policy('when amount > 1 block as X "{amount}"'))["schema_version"] == 2
    sentra = json.loads((ROOT / "tests" / "golden" / "table" / "sentra.json").read_text("utf-8"))
    assert sentra["schema_version"] == 2


def _old_runtime_policy_module() -> ModuleType:
    """`sentra_runtime/policy.py` as it was before version 3 (the commit this work started
    from), loaded beside the current runtime."""
    text = subprocess.run(
        ["git", "-C", str(ROOT), "show", "ef80cec:runtime/sentra_runtime/policy.py"],
        capture_output=True, text=True, check=False)
    if text.returncode != 0:
        pytest.skip("the repository's history is not available")
    spec = importlib.util.spec_from_loader("old_sentra_policy", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_sentra_policy"] = module
    exec(compile(text.stdout, "old_policy.py", "exec"), module.__dict__)
    return module


def test_an_older_runtime_refuses_a_version_3_table_and_loads_the_others() -> None:
    old = _old_runtime_policy_module()
    assert old.SCHEMA_VERSION == 2
    with pytest.raises(old.PolicyLoadError) as raised:
        old.load_policy(table_of(policy("when amount > total * 0.5 block as X")))
    assert str(raised.value) == ("table schema_version 3 is newer than this runtime supports "
                                 "(2); upgrade sentra-runtime to load it")
    old.load_policy(table_of(policy("when amount > 100 * 2 block as X")))


def test_a_version_2_table_may_not_compute_and_keeps_its_placeholders() -> None:
    table = table_of(policy("when amount > total * 0.5 block as X"))
    table["schema_version"] = 2
    with pytest.raises(PolicyLoadError, match="arithmetic tests need schema_version 3"):
        load_policy(table, verify_hash=False)
    plain = table_of(policy('block as X "{action} {agent_id} {amount}"',
                            fields="input {\n  amount: number\n}\n"))
    assert Decider(plain).decide("REFUND", {"amount": 5}, agent_id="ag")[0].reason == \
        "REFUND ag 5"
    plain["schema_version"] = 2  # as an older compiler wrote it: the names are fields' names
    old = Decider(load_policy(plain, verify_hash=False))
    assert old.decide("REFUND", {"amount": 5}, agent_id="ag")[0].reason == \
        "{action} {agent_id} 5"


# ------------------------------------------------------------------- decisions (the docs)

REFUNDS = (ROOT / "docs" / "language.md").read_text("utf-8").split(
    "### Arithmetic")[1].split("```sentra\n")[1].split("```")[0]
REASONS = (ROOT / "docs" / "language.md").read_text("utf-8").split(
    "policy reasons version")[1].split("```")[0]


@pytest.mark.parametrize(("fields", "rule", "reason"), [
    ({"amount": 60, "items": 1, "context": {"order_total": 100}}, "OVER_HALF",
     "A refund of 60 is over half the order."),
    ({"amount": 40, "items": 1, "context": {"order_total": 100, "refunded_so_far": 70}},
     "OVER_TOTAL", ""),
    ({"amount": 500, "items": 2, "context": {"order_total": 10000}}, "PER_ITEM_HIGH", ""),
    ({"amount": 500, "items": 0, "context": {"order_total": 10000}}, "LARGE", ""),
    ({"amount": 0, "items": 1, "context": {"order_total": 100}}, "NOT_POSITIVE", ""),
    ({"amount": 5, "items": 11, "context": {"order_total": 100}}, "MANY_ITEMS", ""),
    ({"amount": 5, "items": 10, "context": {"order_total": 100}}, "SMALL", ""),
    ({"amount": 8e307, "items": 0, "context": {"order_total": 1.7e308, "refunded_so_far": 1e308}},
     "ARITHMETIC_ERROR",
     "Rule `OVER_TOTAL`: `amount + context.refunded_so_far` is not a finite number."),
])
def test_the_documented_refund_policy_decides_as_documented(
        fields: dict[str, Any], rule: str, reason: str) -> None:
    decision = decide(REFUNDS, fields)
    assert decision.rule_id == rule
    assert decision.reason == reason
    if rule == "ARITHMETIC_ERROR":
        assert (decision.outcome, decision.threat, decision.attempted_risk) == (
            "block", "Invalid Input", 0)


def test_division_by_zero_is_a_strike_with_the_documented_reason() -> None:
    src = policy("when amount / items > 200 block as PER_ITEM")
    decider = Decider(table_of(src))
    state: Any = (0, 0, False)
    for strike in range(1, 4):
        decision, state = decider.decide("REFUND", {"amount": 5, "items": 0, "total": 1},
                                         state)
        assert state[1] == strike
    assert decision.outcome == "shutdown"
    first = decider.decide("REFUND", {"amount": 5, "items": 0, "total": 1})[0]
    assert first.reason == "Rule `PER_ITEM`: `amount / items` divides by zero."


@pytest.mark.parametrize(("guarded", "rule"), [
    ("when items > 0 and amount / items > 200 block as PER_ITEM", "OK"),
    ("when amount / items > 200 and items > 0 block as PER_ITEM", "OK"),
    ("when not (items == 0 or amount / items <= 200) block as PER_ITEM", "OK"),
    ("when items == 0 or amount / items > 200 block as PER_ITEM", "PER_ITEM"),
    ("when amount / items > 200 or items == 0 block as PER_ITEM", "PER_ITEM"),
    ("when amount / items > 200 or items == 1 block as PER_ITEM", "ARITHMETIC_ERROR"),
    ("when not (amount / items > 200) block as PER_ITEM", "ARITHMETIC_ERROR"),
])
def test_a_guard_decides_in_either_order(guarded: str, rule: str) -> None:
    assert decide(policy(guarded), {"amount": 5, "items": 0, "total": 1}).rule_id == rule


def test_a_missing_operand_makes_the_comparison_false_and_not_negates_it() -> None:
    src = policy("when limit * 2 > amount block as OVER", "when not (limit * 2 > amount) "
                 "allow as NOT_OVER")
    assert decide(src, {"amount": 5, "items": 0, "total": 1}).rule_id == "NOT_OVER"
    src = policy("when amount / items > limit block as OVER")  # missing beats division by zero
    assert decide(src, {"amount": 5, "items": 0, "total": 1}).rule_id == "OK"


def test_int_arithmetic_is_exact_and_division_is_true_division() -> None:
    huge = 10**40
    src = policy("when items * items - items * items + 1 == 1 allow as EXACT",
                 "when items / 2 == 3.5 allow as HALF")
    assert decide(src, {"amount": 1, "items": huge, "total": 1}).rule_id == "EXACT"
    src = policy("when items / 2 == 3.5 allow as HALF")
    assert decide(src, {"amount": 1, "items": 7, "total": 1}).rule_id == "HALF"
    src = policy("when items * 1.5 > 0 allow as BIG")  # an int too large to become a number
    assert decide(src, {"amount": 1, "items": 10**400, "total": 1}).rule_id == "ARITHMETIC_ERROR"


TWO_53 = 2**53


@pytest.mark.parametrize(("rule", "fields", "expected"), [
    # docs/language.md, "Arithmetic": a `number` field is a number in a computation, however it
    # was sent: 2**53 + 1 sent as a JSON integer computes as the number 2**53
    ("when amount - 9007199254740992 > 0 allow as ABOVE", {"amount": TWO_53 + 1}, "OK"),
    ("when amount * 1 == 9007199254740992 allow as SAME", {"amount": TWO_53 + 1}, "SAME"),
    # a comparison compares its two sides exactly, as an ordinary test does
    ("when amount * 1 == 9007199254740993 allow as SAME", {"amount": TWO_53 + 1}, "OK"),
    # a bare `number` field beside a computation is a number too
    ("when amount > items * 1 allow as ABOVE", {"amount": TWO_53 + 1, "items": TWO_53}, "OK"),
    ("when amount > items * 1 allow as ABOVE", {"amount": TWO_53 + 2, "items": TWO_53}, "ABOVE"),
    # an int too large to be a number cannot be computed, as a `number` field or in an `int`
    # computation meeting a number
    ("when amount / items > 0 allow as POSITIVE", {"amount": 10, "items": 10**400},
     "ARITHMETIC_ERROR"),
    ("when amount / items > 0 allow as POSITIVE", {"amount": 10.0, "items": 10**400},
     "ARITHMETIC_ERROR"),
    ("when amount / 2 > 0 allow as POSITIVE", {"amount": 10**400}, "ARITHMETIC_ERROR"),
    ("when amount > items * 2 allow as ABOVE", {"amount": 10**400, "items": 1},
     "ARITHMETIC_ERROR"),
    # `int` arithmetic stays exact
    ("when items - 9007199254740992 > 0 allow as ABOVE", {"items": TWO_53 + 1}, "ABOVE"),
])
def test_a_number_field_is_a_number_in_a_computation(rule: str, fields: dict[str, Any],
                                                     expected: str) -> None:
    assert decide(policy(rule), {"amount": 1, "items": 1, "total": 1, **fields}).rule_id == \
        expected


def test_a_number_field_too_large_to_compute_names_itself_and_reasons_show_it_as_sent() -> None:
    src = policy("when amount / 2 > 0 allow as POSITIVE",
                 'when amount > total * 0.5 block as HALF "A refund of {amount} is too much."')
    assert decide(src, {"amount": 10**400, "items": 1, "total": 1}).reason == \
        "Rule `POSITIVE`: `amount` is not a finite number."
    src = policy('when amount > total * 0.5 block as HALF "A refund of {amount} is too much."')
    assert decide(src, {"amount": 10, "items": 1, "total": 1}).reason == \
        "A refund of 10 is too much."


def test_reasons_interpolate_the_action_and_the_agent_as_documented() -> None:
    src = "policy reasons version" + REASONS
    decision = decide(src, {"amount": 900}, action=" refund ", agent="support-7")
    assert decision.reason == "support-7 may not REFUND 900 without review."
    other = decide(src, {"amount": 900}, action="delete", agent="support-7")
    assert other.reason == "DELETE is not part of the refund agent's job."


# --------------------------------------------------------------------------- analysis

def test_an_exact_rewrite_gives_findings_whose_witnesses_replay() -> None:
    src = policy("when items * 2 + 1 > 9 block as BIG", "when items * 3 > 12 allow as SHADOWED")
    comp = compile_ok(src)
    found = {d.code: d for d in comp.diagnostics if d.code.startswith("SL4")}
    assert "SL408" not in found
    shadowed = found["SL401"]
    assert "SHADOWED" in shadowed.message
    assert shadowed.witness is not None
    assert decide(src, dict(shadowed.witness)).rule_id == "BIG"


def test_an_exact_rewrite_does_not_invent_findings() -> None:
    """`items * 2 > 9` is `items > 4` on integers, not `items > 4.5`: `items * 2 >= 10` is the
    same condition, so the second rule is shadowed and nothing is uncovered between them."""
    src = policy("when items * 2 > 9 block as A", "when items * 2 >= 10 block as B",
                 "when -items * 3 >= -12 allow as C")
    comp = compile_ok(src)
    codes = sorted(d.code for d in comp.diagnostics if d.code.startswith("SL4"))
    assert "SL401" in codes and "SL408" not in codes
    assert not any(d.code == "SL402" for d in comp.diagnostics)


def test_an_inexact_action_gets_sl408_and_no_other_finding() -> None:
    src = policy("when amount > total * 0.5 block as HALF", "when amount > total block as "
                 "NEVER_REACHED_IN_TRUTH")
    comp = compile_ok(src)
    codes = [d.code for d in comp.diagnostics if d.code.startswith("SL4")]
    assert codes == ["SL408"]
    assert "rule `HALF` compares computed values" in comp.diagnostics[-1].message or any(
        "rule `HALF`" in d.message for d in comp.diagnostics)


def test_diff_says_which_actions_it_could_not_compare_exactly(tmp_path: Path) -> None:
    old = tmp_path / "old.sentra"
    new = tmp_path / "new.sentra"
    old.write_text(policy("when amount > total * 0.5 block as HALF"), "utf-8")
    new.write_text(policy("when amount > total * 0.4 block as HALF"), "utf-8")
    run = subprocess.run([sys.executable, "-m", "sentra_lang", "diff", str(old), str(new)],
                         capture_output=True, text=True, check=False)
    assert "not compared" in run.stdout and "compares computed values" in run.stdout, run.stdout
    exact_old = tmp_path / "exact_old.sentra"
    exact_new = tmp_path / "exact_new.sentra"
    exact_old.write_text(policy("when items * 2 > 9 block as BIG"), "utf-8")
    exact_new.write_text(policy("when items > 5 block as BIG"), "utf-8")
    run = subprocess.run([sys.executable, "-m", "sentra_lang", "diff", str(exact_old),
                          str(exact_new)], capture_output=True, text=True, check=False)
    assert "not compared" not in run.stdout and "items=5" in run.stdout.replace(" ", ""), \
        run.stdout


def test_explain_names_the_failed_computation(tmp_path: Path) -> None:
    path = tmp_path / "p.sentra"
    path.write_text(policy("when amount / items > 200 block as PER_ITEM"), "utf-8")
    run = subprocess.run([sys.executable, "-m", "sentra_lang", "explain", str(path), "REFUND",
                          "--field", "amount=5", "--field", "items=0", "--field", "total=1"],
                         capture_output=True, text=True, check=False)
    assert "`amount / items > 200` cannot be computed, got amount = 5, items = 0: " \
           "`amount / items` divides by zero" in run.stdout, run.stdout + run.stderr
    assert "ARITHMETIC_ERROR" in run.stdout
    run = subprocess.run([sys.executable, "-m", "sentra_lang", "explain", str(path), "REFUND",
                          "--field", "amount=5", "--field", "items=0", "--field", "total=1",
                          "--format", "json"], capture_output=True, text=True, check=True)
    trial = json.loads(run.stdout)["explanation"]["trials"][0]
    assert trial == {"rule_id": "PER_ITEM", "row": 0, "matched": False,
                     "failed_test": "amount / items > 200", "actual": {"amount": 5, "items": 0},
                     "error": "`amount / items` divides by zero"}


def test_generated_python_shows_the_computation(tmp_path: Path) -> None:
    path = tmp_path / "p.sentra"
    path.write_text(policy("when amount > total * 0.5 block as HALF"), "utf-8")
    run = subprocess.run([sys.executable, "-m", "sentra_lang", "compile", str(path), "--emit",
                          "python"], capture_output=True, text=True, check=True)
    assert "(_n0 if (_n0 := (float(v3) * 0.5)) - _n0 == 0 else _not_finite())" in run.stdout \
        and "_by_rows(" in run.stdout, run.stdout


# ------------------------------------------------------------------ suites and the docs

SUITE = '''suite "refunds" for "refunds.sentra"

scenario "half the order, and a division by zero" {
  agent "a" REFUND { amount: 60, items: 1, total: 100 }
    -> blocked rule HALF reason "Refund of 60 by a for REFUND."
  agent "a" REFUND { amount: 5, items: 0, total: 100 }
    -> blocked rule ARITHMETIC_ERROR threat "Invalid Input"
       reason "Rule `PER_ITEM`: `amount / items` divides by zero." strikes 2
}

property "over the total is never allowed" REFUND where amount > total * 1 -> never allowed
'''


def _refunds(folder: Path) -> Path:
    source = policy('when amount > total * 0.5 block as HALF "Refund of {amount} by {agent_id} '
                    'for {action}."', "when amount / items > 2 block as PER_ITEM")
    (folder / "refunds.sentra").write_text(source, "utf-8")
    (folder / "refunds.sentra-test").write_text(SUITE, "utf-8")
    return folder / "refunds.sentra-test"


def test_suites_expect_arithmetic_errors_and_sample_properties_that_compute(
        tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "sentra_lang", "test", str(_refunds(tmp_path))],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 proved, 1 sampled" in run.stdout


def test_the_policy_reference_shows_the_expressions(tmp_path: Path) -> None:
    _refunds(tmp_path)
    site = tmp_path / "site"
    run = subprocess.run([sys.executable, "-m", "sentra_lang", "docs", "--markdown-only", "-o",
                          str(site), str(tmp_path / "refunds.sentra")],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    pages = " ".join(path.read_text("utf-8") for path in site.rglob("*.md"))
    assert "amount &gt; total * 0.5" in pages or "amount > total * 0.5" in pages
    assert "amount / items &gt; 2" in pages or "amount / items > 2" in pages


def test_the_language_server_sees_the_fields_a_computation_reads() -> None:
    """Rename and find-references reach fields inside arithmetic; `{action}` and `{agent_id}`
    in a reason are no field."""
    from types import SimpleNamespace

    from sentra_lang.lsp.symbols import _interpolations, condition_references

    cond = parsed_condition("amount > context.total * (1 - limit) / 2")
    found = [ref.name for ref in condition_references(cond, SimpleNamespace(lets={}))]  # type: ignore[arg-type]
    assert found == ["amount", "context.total", "limit"]
    module, _ = parse('otherwise block as O "{action} {agent_id} {amount}"\n')
    assert module is not None
    otherwise = module.items[0]
    assert isinstance(otherwise, ast.Otherwise)
    reason = otherwise.outcome.clause("reason")
    assert reason is not None and isinstance(reason.value, ast.Str)
    assert [ref.name for ref in _interpolations(reason.value)] == ["amount"]


def test_the_rewrite_is_total_for_one_int_field() -> None:
    """`items * 3 == 2` holds for no integer (SL402, a true finding); `items * 0 + 1 > 0` holds
    whenever `items` is present."""
    comp = compile_ok(policy("when items * 3 == 2 block as NEVER", "when limit * 0 + 1 > 0 "
                             "allow as PRESENT", "when not exists limit allow as ABSENT"))
    codes = {d.code: d for d in comp.diagnostics if d.code.startswith("SL4")}
    assert "SL408" not in codes and "NEVER" in codes["SL402"].message
    assert "SL405" not in codes  # PRESENT and ABSENT cover every input
