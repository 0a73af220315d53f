"""Tables for tests and the benchmark: variants of the Sentra table and generated policies."""

from __future__ import annotations

import copy
import random
from typing import Any

from sentra_runtime.policy import content_hash

SPAN = {"file": "gen.sentra", "line": 1, "column": 1, "end_line": 1, "end_column": 2}


def reseal(table: dict[str, Any]) -> dict[str, Any]:
    table["hash"] = content_hash(table)
    return table


def with_shutdown_rule(table: dict[str, Any]) -> dict[str, Any]:
    """The Sentra table with CHANGE_PERMISSION as a `shutdown` rule."""
    changed = copy.deepcopy(table)
    for rule in changed["rules"]:
        if rule["id"] == "BLOCK_PERMISSION_CHANGE":
            rule["outcome"] = "shutdown"
    return reseal(changed)


def without_otherwise(table: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(table)
    changed["otherwise"] = None
    return reseal(changed)


GENERATED_INPUT = [
    {"name": "amount", "type": "number", "optional": True, "has_default": False, "default": None,
     "normalize": [], "values": None},
    {"name": "count", "type": "int", "optional": False, "has_default": True, "default": 0,
     "normalize": [], "values": None},
    {"name": "kind", "type": "string", "optional": False, "has_default": True, "default": "a",
     "normalize": ["trim", "lower"], "values": None},
    {"name": "flag", "type": "bool", "optional": False, "has_default": True, "default": False,
     "normalize": [], "values": None},
    {"name": "limits.max", "type": "number", "optional": True, "has_default": False,
     "default": None, "normalize": [], "values": None},
    {"name": "tags", "type": "set", "optional": True, "has_default": False, "default": None,
     "normalize": ["lower"], "values": None},
]
KINDS = ["a", "b", "c", "ab"]


def random_test(rng: random.Random) -> dict[str, Any]:
    choice = rng.randrange(9)
    negate = rng.random() < 0.2
    if choice == 0:
        test = {"field": "amount", "op": rng.choice(["<", "<=", ">", ">=", "==", "!="]),
                "value": rng.choice([0, 10, 50, 99.5])}
    elif choice == 1:
        test = {"field": "count", "op": rng.choice(["<", ">=", "==", "!="]),
                "value": rng.randrange(4)}
    elif choice == 2:
        test = {"field": "kind", "op": rng.choice(["==", "!=", "starts_with", "ends_with",
                                                   "contains"]), "value": rng.choice(KINDS)}
    elif choice == 3:
        test = {"field": "kind", "op": "in", "value": sorted(rng.sample(KINDS, 2))}
    elif choice == 4:
        test = {"field": "flag", "op": rng.choice(["==", "!="]), "value": rng.random() < 0.5}
    elif choice == 5:
        test = {"field": "amount", "op": rng.choice(["<", ">", "==", "!="]),
                "other": "limits.max"}
    elif choice == 6:
        test = {"field": rng.choice(["amount", "limits.max", "tags"]), "op": "exists"}
    elif choice == 7:
        test = {"field": "tags", "op": "contains", "value": rng.choice(KINDS)}
    else:
        test = {"field": "count", "op": "<=", "other": "amount"}
    return {"value": None, "other": None, "negate": negate, **test}


def generate_table(rules: int, *, seed: int = 0, actions: int | None = None,
                   threshold: int = 100, strikes: int = 3, otherwise: bool = True,
                   outcomes: tuple[str, ...] = ("allow", "allow", "allow", "block", "shutdown"),
                   required: str | None = None, undeclared: str | None = None) -> dict[str, Any]:
    """A valid, sealed table of about ``rules`` rules spread over action blocks of ~10 rules.

    ``required`` names an input field to declare required (no default, not optional);
    ``undeclared`` (``refuse`` or ``ignore``) makes a version-2 table with that setting (a
    version-1 table has none, and ignores undeclared fields)."""
    rng = random.Random(seed)
    blocks = actions if actions is not None else max(1, rules // 10)
    rule_list = []
    action_list: list[dict[str, Any]] = [{"names": [f"ACTION_{b}"], "rows": []}
                                         for b in range(blocks)]
    for index in range(rules):
        rule_id = f"RULE_{index}"
        rule_list.append({
            "id": rule_id, "outcome": rng.choice(outcomes), "risk": rng.choice([0, 10, 25, 40, 60]),
            "threat": rng.choice([None, "Threat"]), "reason": rng.choice(
                ["Reason {kind}.", "Constant reason.", "Amount {amount} {{literal}}"]),
            "description": None, "condition": None, "generated_id": False, "span": SPAN})
        rows = action_list[index % blocks]["rows"]
        for _ in range(rng.choice([1, 1, 2])):
            rows.append({"rule": rule_id,
                         "tests": [random_test(rng) for _ in range(rng.randrange(0, 4))]})
    if otherwise:
        rule_list.append({"id": "FALLBACK", "outcome": "allow", "risk": 5, "threat": None,
                          "reason": "Fallback.", "description": None, "condition": None,
                          "generated_id": False, "span": SPAN})
    table = {
        "schema_version": 1,
        "policy": {"name": f"generated{rules}", "version": "1", "description": None},
        "settings": {"risk_threshold": threshold, "strikes": strikes,
                     "action_normalize": ["trim", "upper"]},
        "input": [{**spec, "optional": False, "has_default": False, "default": None}
                  if spec["name"] == required else copy.deepcopy(spec)
                  for spec in GENERATED_INPUT],
        "rules": rule_list,
        "actions": action_list,
        "otherwise": "FALLBACK" if otherwise else None,
    }
    return reseal(with_undeclared(table, undeclared))


def with_undeclared(table: dict[str, Any], undeclared: str | None) -> dict[str, Any]:
    """A version-2 table saying ``undeclared_fields`` (unchanged for ``None``); not resealed."""
    if undeclared is not None:
        table["schema_version"] = 2
        table["settings"]["undeclared_fields"] = undeclared
    return table


def _rule(rule_id: str, outcome: str, risk: int) -> dict[str, Any]:
    return {"id": rule_id, "outcome": outcome, "risk": risk, "threat": None,
            "reason": f"{rule_id} {{kind}} {{amount}}", "description": None, "condition": None,
            "generated_id": False, "span": SPAN}


def _run_row(rng: random.Random, pattern: str) -> list[dict[str, Any]]:
    """The tests of one row of a run-shaped block (see :func:`dispatch_table`)."""
    def test(field: str, op: str, value: Any = None, negate: bool = False) -> dict[str, Any]:
        return {"field": field, "op": op, "value": value, "other": None, "negate": negate}

    if pattern == "kind":
        if rng.random() < 0.3:
            tests = [test("kind", "in", sorted(rng.sample(RUN_KINDS, rng.randint(1, 3))))]
        else:
            tests = [test("kind", "==", rng.choice(RUN_KINDS))]
    elif pattern == "count":
        tests = [test("count", "==", rng.randrange(6))]
    else:
        tests = [test("amount", rng.choice(["<", "<=", ">", ">=", "==", "!="]),
                      rng.choice([0, 10, 10.0, 25, 50, 99.5, -3, 10**30]),
                      negate=rng.random() < 0.2)
                 for _ in range(rng.randint(1, 2))]
        if rng.random() < 0.1:
            tests.append(test("amount", "exists", negate=rng.random() < 0.5))
        return tests
    if rng.random() < 0.3:
        tests.append(random_test(rng))   # a residual test on another field (or the same)
    return tests


RUN_KINDS = ["a", "b", "c", "ab", "d", "e"]


def dispatch_table(seed: int, rows: int, *, otherwise: bool = True) -> dict[str, Any]:
    """A sealed table of one action ``A`` whose rows come in runs: equality and membership on
    ``kind`` or ``count`` (some with a residual test on other fields), comparisons of
    ``amount`` with constants (negated, ranges, ``exists``), and random rows between them; a
    row without tests may end it. For the laws of compiled dispatch."""
    rng = random.Random(seed)
    rules, table_rows = [], []
    pattern = rng.choice(["kind", "count", "amount"])
    for index in range(rows):
        if rng.random() < 0.15:
            pattern = rng.choice(["kind", "count", "amount", "random"])
        rule_id = f"RULE_{index}"
        rules.append(_rule(rule_id, rng.choice(["allow", "allow", "block"]),
                           rng.choice([0, 10, 40])))
        tests = ([random_test(rng) for _ in range(rng.randint(1, 2))] if pattern == "random"
                 else _run_row(rng, pattern))
        table_rows.append({"rule": rule_id, "tests": tests})
    if rng.random() < 0.3:
        rules.append(_rule("LAST", "allow", 0))
        table_rows.append({"rule": "LAST", "tests": []})
    if otherwise:
        rules.append(_rule("FALLBACK", "allow", 5))
    return reseal({
        "schema_version": 1,
        "policy": {"name": f"dispatch{seed}", "version": "1", "description": None},
        "settings": {"risk_threshold": 100, "strikes": 3, "action_normalize": []},
        "input": copy.deepcopy(GENERATED_INPUT),
        "rules": rules,
        "actions": [{"names": ["A"], "rows": table_rows}],
        "otherwise": "FALLBACK" if otherwise else None,
    })


NESTED_FIELDS = {"ctx.a": "bool", "ctx.b": "int", "ctx.sub.z": "string", "ctx.sub.w": "bool",
                 "d.x": "bool", "e.y": "int", "top": "string", "ctx_x": "bool", "ctxA.q": "bool"}
"""Input names that share objects and prefixes, for tables with nested input in any order."""
_NESTED_DEFAULTS = {"bool": True, "int": 7, "string": " Ab "}
_NESTED_TESTS = {"bool": ("==", True), "int": (">", 3), "string": ("==", "ab")}


def nested_input_table(fields: list[tuple[str, str]],
                       undeclared: str | None = None) -> dict[str, Any]:
    """A sealed table whose input declares ``fields`` (name from :data:`NESTED_FIELDS`, mode
    ``required``, ``optional`` or ``default``) in the order given, and whose one action ``A``
    has a row testing each field, then a row with no test; ``undeclared`` as in
    :func:`generate_table`."""
    inputs, rules, rows = [], [], []
    for index, (name, mode) in enumerate(fields):
        kind = NESTED_FIELDS[name]
        inputs.append({"name": name, "type": kind, "optional": mode == "optional",
                       "has_default": mode == "default",
                       "default": _NESTED_DEFAULTS[kind] if mode == "default" else None,
                       "normalize": ["trim", "lower"] if kind == "string" else [],
                       "values": None})
        op, value = _NESTED_TESTS[kind]
        rules.append({"id": f"RULE_{index}", "outcome": "block", "risk": 0, "threat": None,
                      "reason": f"{name} {{{name}}}", "description": None, "condition": None,
                      "generated_id": False, "span": SPAN})
        rows.append({"rule": f"RULE_{index}", "tests": [
            {"field": name, "op": op, "value": value, "other": None, "negate": False}]})
    rules.append({"id": "ALLOW", "outcome": "allow", "risk": 0, "threat": None,
                  "reason": "Allowed.", "description": None, "condition": None,
                  "generated_id": False, "span": SPAN})
    rows.append({"rule": "ALLOW", "tests": []})
    return reseal(with_undeclared({
        "schema_version": 1,
        "policy": {"name": "nested", "version": "1", "description": None},
        "settings": {"risk_threshold": 100, "strikes": 3, "action_normalize": []},
        "input": inputs, "rules": rules, "actions": [{"names": ["A"], "rows": rows}],
        "otherwise": None,
    }, undeclared))


def equality_table(rules: int) -> dict[str, Any]:
    """A sealed table of one action ``A`` whose ``rules`` rules each test one string field for
    equality with its own value (``kind == "k17"``), allow at zero risk; ``otherwise`` allows.
    The shape of issue 12's "10,000 rules in one action"."""
    return reseal({
        "schema_version": 2,
        "policy": {"name": f"equality{rules}", "version": "1", "description": None},
        "settings": {"risk_threshold": 100, "strikes": 3, "action_normalize": [],
                     "undeclared_fields": "refuse"},
        "input": [{"name": "kind", "type": "string", "optional": True, "has_default": False,
                   "default": None, "normalize": [], "values": None}],
        "rules": [{**_rule(f"R{index}", "allow", 0), "reason": "Allowed."}
                  for index in range(rules)] + [{**_rule("OTHER", "allow", 0), "reason": "Other."}],
        "actions": [{"names": ["A"], "rows": [
            {"rule": f"R{index}", "tests": [{"field": "kind", "op": "==", "value": f"k{index}",
                                             "other": None, "negate": False}]}
            for index in range(rules)]}],
        "otherwise": "OTHER",
    })
