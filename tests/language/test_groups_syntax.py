"""`group` declarations: what the checker accepts and how it says what is wrong
(docs/language.md, "Agent groups"; docs/diagnostics.md, SL110, SL130, SL131, SL132)."""

from __future__ import annotations

import pytest

from tests.helpers import assert_diagnostic, compile_ok

HEADER = 'policy p version "1" {}\n'
OTHERWISE = "otherwise allow as X\n"


def policy(groups: str) -> str:
    return HEADER + groups + OTHERWISE


def test_groups_compile_in_declaration_order_with_the_settings_they_give() -> None:
    table = compile_ok(policy('group b {\n  agents "b-*"\n  strikes 2\n}\n'
                              'group a {\n  agents "a", "b-1"\n}\n')).table
    assert table is not None and table.schema_version == 3
    assert [(g.name, g.agents, g.strikes, g.risk_threshold) for g in table.groups] == [
        ("b", ["b-*"], 2, None), ("a", ["a", "b-1"], None, None)]


def test_a_group_may_hold_every_agent() -> None:
    compile_ok(policy('group everyone {\n  agents "*"\n}\n'))


def test_a_duplicate_group_is_sl130_at_its_name() -> None:
    found = assert_diagnostic(policy('group g {\n  agents "a"\n}\ngroup g {\n  agents "b"\n}\n'),
                              "SL130", message="group `g` is declared twice")
    assert (found.span.line, found.span.text) == (5, "g")


@pytest.mark.parametrize("pattern", ['""', '"a*b"', '"**"', '"*-eu"'])
def test_a_bad_pattern_is_sl131(pattern: str) -> None:
    assert_diagnostic(policy(f"group g {{\n  agents {pattern}\n}}\n"), "SL131", underline=pattern)


@pytest.mark.parametrize(("first", "second"), [('"ops-*"', '"ops-senior-*"'),
                                               ('"ops-*"', '"ops-7"'), ('"a"', '"a"'),
                                               ('"*"', '"x"')])
def test_a_pattern_an_earlier_one_takes_is_sl132(first: str, second: str) -> None:
    found = assert_diagnostic(
        policy(f"group one {{\n  agents {first}\n}}\ngroup two {{\n  agents {second}\n}}\n"),
        "SL132", underline=second)
    assert "group `one` takes its agents first" in found.message


def test_a_narrower_exact_id_before_a_prefix_is_fine() -> None:
    result = compile_ok(policy('group one {\n  agents "ops-7"\n}\n'
                               'group two {\n  agents "ops-7*", "ops-*"\n}\n'))
    assert not [d for d in result.diagnostics if d.code == "SL132"]


@pytest.mark.parametrize(("setting", "hint"), [("risk_treshold 5", "did you mean `risk_threshold`?"),
                                               ("description \"x\"", "a group may give"),
                                               ("undeclared_fields refuse", "a group may give")])
def test_a_setting_a_group_cannot_give_is_sl110(setting: str, hint: str) -> None:
    found = assert_diagnostic(policy(f'group g {{\n  agents "a"\n  {setting}\n}}\n'), "SL110",
                              underline=setting.split()[0], message="is not a group setting")
    assert found.help is not None and hint in found.help


@pytest.mark.parametrize(("setting", "code", "underline"), [
    ("strikes 0", "SL210", "0"), ("risk_threshold 1.5", "SL210", "1.5"),
    ("risk_decay 10 per 1hr", "SL224", "1hr"), ("risk_decay 10", "SL210", "10"),
])
def test_bad_group_settings_are_reported_where_they_are(setting: str, code: str,
                                                         underline: str) -> None:
    assert_diagnostic(policy(f'group g {{\n  agents "a"\n  {setting}\n}}\n'), code,
                      underline=underline)


def test_a_setting_given_twice_in_a_group_is_sl115() -> None:
    assert_diagnostic(policy('group g {\n  strikes 2\n  strikes 3\n}\n'), "SL115")


def test_group_and_agents_stay_ordinary_names_elsewhere() -> None:
    compile_ok(HEADER + "input {\n  group: string\n  agents: int\n}\n"
               'action A {\n  when group == "x" and agents > 1 allow as Y\n}\n' + OTHERWISE)


def test_many_patterns_are_checked_in_linear_time() -> None:
    """The SL132 check looks each pattern's prefixes up: 20,000 patterns stay fast."""
    import time

    lines = "".join(f'  agents "agent-{n}-*"\n' for n in range(20_000))
    started = time.perf_counter()
    result = compile_ok(policy(f"group many {{\n{lines}}}\n"), analyse=False)
    assert time.perf_counter() - started < 30
    assert not [d for d in result.diagnostics if d.code == "SL132"]
