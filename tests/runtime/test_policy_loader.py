"""Loading tables: schema errors name the path, the hash is verified, future schemas refused."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from sentra_runtime import PolicyLoadError, load_policy

from sentra_lang.table import Table
from sentra_lang.table import content_hash as compiler_hash
from tests.runtime.helpers import SENTRA_TABLE
from tests.runtime.tables import reseal


def assert_load_error(table: Any, message: str) -> None:
    with pytest.raises(PolicyLoadError) as raised:
        load_policy(table)
    assert message in str(raised.value), str(raised.value)


def changed(table: dict[str, Any], edit: Any, *, seal: bool = True) -> dict[str, Any]:
    copy_ = copy.deepcopy(table)
    edit(copy_)
    return reseal(copy_) if seal else copy_


def test_fixture_matches_the_compiler_schema_and_hash(sentra_table: dict[str, Any]) -> None:
    Table.model_validate(sentra_table)
    assert compiler_hash(sentra_table) == sentra_table["hash"]


def test_loads_from_dict_text_and_path(sentra_table: dict[str, Any]) -> None:
    from_path = load_policy(SENTRA_TABLE)
    assert load_policy(sentra_table) == load_policy(SENTRA_TABLE.read_text()) == from_path
    assert load_policy(str(SENTRA_TABLE)).hash == sentra_table["hash"]


def test_bad_hash_is_refused(sentra_table: dict[str, Any]) -> None:
    tampered = changed(sentra_table, lambda t: t["rules"][0].update(risk=1), seal=False)
    assert_load_error(tampered, "hash: content hash mismatch")
    assert_load_error(changed(sentra_table, lambda t: t.pop("hash"), seal=False),
                      "has no content hash")


def test_future_schema_is_refused(sentra_table: dict[str, Any]) -> None:
    future = changed(sentra_table, lambda t: t.update(schema_version=5, new_thing=1))
    assert_load_error(future, "table schema_version 5 is newer than this runtime supports (4); "
                              "upgrade sentra-runtime to load it")


def test_version_1_tables_ignore_undeclared_fields_as_they_did(
        sentra_table: dict[str, Any]) -> None:
    """The fixture is a version-1 table: no `undeclared_fields`, and the old behaviour."""
    assert sentra_table["schema_version"] == 1
    assert load_policy(sentra_table).undeclared_fields == "ignore"
    assert_load_error(changed(sentra_table, lambda t: t["settings"].update(
        undeclared_fields="ignore")), "settings: unknown key `undeclared_fields`")


def test_version_2_tables_refuse_undeclared_fields_unless_they_say_so(
        sentra_table: dict[str, Any]) -> None:
    def version_2(setting: str | None) -> dict[str, Any]:
        def edit(table: dict[str, Any]) -> None:
            table["schema_version"] = 2
            if setting is not None:
                table["settings"]["undeclared_fields"] = setting
        return changed(sentra_table, edit)

    assert load_policy(version_2(None)).undeclared_fields == "refuse"
    assert load_policy(version_2("ignore")).undeclared_fields == "ignore"
    assert_load_error(version_2("warn"), "settings.undeclared_fields: unknown value `warn` "
                                         "(expected one of `ignore`, `refuse`)")


def test_a_field_inside_another_field_is_refused(sentra_table: dict[str, Any]) -> None:
    def edit(table: dict[str, Any]) -> None:
        inner = copy.deepcopy(table["input"][0])
        inner["name"] = table["input"][0]["name"] + ".inner"
        table["input"].append(inner)

    assert_load_error(changed(sentra_table, edit), "is inside the declared field")


def test_load_is_linear_in_the_number_of_rules() -> None:
    """Rule lookups are O(1): ten times the rules loads in about ten times the time (with a
    generous margin for a noisy machine), not a hundred."""
    import time

    from sentra_runtime import Engine

    from tests.runtime.tables import generate_table

    def load_seconds(rules: int) -> float:
        table = generate_table(rules, seed=1, actions=1)
        start = time.perf_counter()
        Engine(table)
        return time.perf_counter() - start

    load_seconds(200)
    assert load_seconds(5_000) < 60 * max(load_seconds(500), 0.002)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t["rules"][3].update(risk="40"), "rules[3].risk: expected integer, got string"),
    (lambda t: t["rules"][3].update(risk=True), "rules[3].risk: expected integer, got boolean"),
    (lambda t: t["rules"][0].update(outcome="deny"), "rules[0].outcome: unknown value `deny`"),
    (lambda t: t["input"][0].update(type="float"), "input[0].type: unknown value `float`"),
    (lambda t: t["actions"][1]["rows"][0].update(rule="NOPE"),
     "actions[1].rows[0].rule: unknown rule id `NOPE`"),
    (lambda t: t["actions"][1]["rows"][0]["tests"][0].update(field="nope"),
     "actions[1].rows[0].tests[0].field: field `nope` is not declared"),
    (lambda t: t["actions"][2]["rows"][2]["tests"][0].update(op="~"),
     "actions[2].rows[2].tests[0].op: unknown value `~`"),
    (lambda t: t["settings"].update(strikes=None), "settings.strikes: expected integer, got null"),
    (lambda t: t.update(extra=1), "table: unknown key `extra`"),
    (lambda t: t.pop("rules"), "table: missing required key `rules`"),
    (lambda t: t.update(otherwise="MISSING"), "otherwise: unknown rule id `MISSING`"),
    (lambda t: t["actions"][3]["rows"][0]["tests"][1].update(value="sensitive"),
     "`in` on `data_classification` needs an array of strings"),
])
def test_wrong_shapes_name_the_path(sentra_table: dict[str, Any], edit: Any,
                                    message: str) -> None:
    assert_load_error(changed(sentra_table, edit), message)


def test_unreadable_inputs(tmp_path: Path) -> None:
    assert_load_error(str(tmp_path / "missing.json"), "cannot read policy table")
    (tmp_path / "bad.json").write_text("{not json")
    assert_load_error(tmp_path / "bad.json", "not valid JSON")
    assert_load_error("[1, 2]" if False else json.loads("[1]"), "cannot load a policy from list")


def with_decay(decay: Any, version: int = 3) -> Any:
    def edit(table: dict[str, Any]) -> None:
        table["schema_version"] = version
        table["settings"]["risk_decay"] = decay
    return edit


def test_version_3_tables_take_risk_decay(sentra_table: dict[str, Any]) -> None:
    loaded = load_policy(changed(sentra_table, with_decay({"amount": 10, "period": 3600})))
    assert (loaded.risk_decay.amount, loaded.risk_decay.period) == (10, 3600)  # type: ignore[union-attr]
    assert str(loaded.risk_decay) == "10 per 1h"
    assert load_policy(changed(sentra_table, with_decay(None))).risk_decay is None
    assert load_policy(sentra_table).risk_decay is None


@pytest.mark.parametrize(("decay", "version", "message"), [
    ({"amount": 10, "period": 3600}, 2, "settings: unknown key `risk_decay`"),
    ({"amount": 0, "period": 3600}, 3, "settings.risk_decay.amount: expected a positive integer"),
    ({"amount": 10, "period": -1}, 3, "settings.risk_decay.period: expected a positive integer"),
    ({"amount": 10, "period": 1.5}, 3, "settings.risk_decay.period: expected integer"),
    ({"amount": True, "period": 60}, 3, "settings.risk_decay.amount: expected integer"),
    ({"amount": 10}, 3, "settings.risk_decay: missing required key `period`"),
    ({"amount": 10, "period": 60, "unit": "s"}, 3, "settings.risk_decay: unknown key `unit`"),
    ("10 per 1h", 3, "settings.risk_decay: expected object, got string"),
])
def test_a_bad_risk_decay_is_refused_with_its_path(sentra_table: dict[str, Any], decay: Any,
                                                  version: int, message: str) -> None:
    assert_load_error(changed(sentra_table, with_decay(decay, version)), message)


@pytest.mark.parametrize(("seconds", "text"), [(1, "1s"), (59, "59s"), (60, "1m"), (90, "90s"),
                                               (3600, "1h"), (5400, "90m"), (86400, "1d"),
                                               (7 * 86400, "7d"), (90000, "25h")])
def test_durations_are_written_in_the_largest_exact_unit(seconds: int, text: str) -> None:
    from sentra_runtime.policy import duration_text

    from sentra_lang.checker import duration_problem, duration_seconds

    assert duration_text(seconds) == text
    assert duration_problem(text) == (None, None) and duration_seconds(text) == seconds
