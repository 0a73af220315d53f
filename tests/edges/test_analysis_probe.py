"""Adversarial probes of the exact analysis (`check`'s SL401 to SL405, `diff`'s regions): known
answers worked out from docs/language.md ("Exact analysis", "Agent state in conditions") and
docs/diff.md, every witness replayed through the real runtime (`sentra_runtime.Engine`), and laws
on the inputs the existing generators do not draw."""

from __future__ import annotations

from itertools import product
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sentra_runtime import Engine, MemoryStore

from sentra_lang.agent_state import distinct_ids, group_of, runtime_groups
from sentra_lang.compiler import compile_source
from sentra_lang.semdiff import diff_policies
from sentra_lang.table import Group
from tests.analysis.helpers import compiled, decided_by, findings

HEADER = 'policy p version "1" {}\n'
QUARANTINE = 'group quarantine {\n  strikes 1\n}\n'


def policy(rules: str, groups: str = "", action: str = "A") -> str:
    return HEADER + groups + f"action {action} {{\n{rules}}}\notherwise allow as OTHER\n"


def decide(src: str, action: str, fields: dict[str, Any], *, agent: str = "probe",
           group: str | None = None, state: tuple[int, int] = (0, 0)) -> str | None:
    """The rule the runtime matches for one agent (assigned to `group` by an operator)."""
    result = compiled(src)
    assert result.table is not None
    store = MemoryStore()
    store.set_state(agent, *state)
    engine = Engine(result.table.model_dump(mode="json"), store)
    if group is not None:
        engine.assign_group(agent, group, operator="probe")
    return engine.evaluate(agent, action, fields).trace.matched_rule


# ----------------------------------------------- agent.group: groups only an operator assigns

def test_a_rule_on_a_group_without_patterns_matches_an_assigned_agent() -> None:
    """A group with no `agents` is for operators to put agents in (a quarantine): the analysis
    called its rule never matching (SL402), yet the runtime decides by it."""
    src = policy('  when agent.group == "quarantine" block as Q\n  allow as REST\n', QUARANTINE)
    assert decide(src, "A", {}, group="quarantine") == "Q"
    assert not findings(src, "SL402", "SL401")


def test_a_rule_on_a_group_whose_patterns_are_taken_earlier_matches_an_assigned_agent() -> None:
    groups = 'group all {\n  agents "*"\n}\ngroup new {\n  agents "new-*"\n}\n'
    src = policy('  when agent.group == "new" block as NEW\n  allow as REST\n', groups)
    assert decide(src, "A", {}, agent="new-1", group="new") == "NEW"
    assert not findings(src, "SL402", "SL401")


def test_a_witness_in_an_assigned_only_group_says_so_and_replays() -> None:
    src = policy('  when agent.group == "quarantine" block as Q\n'
                 '  when agent.group == "quarantine" allow as Q2\n  allow as REST\n', QUARANTINE)
    shadowed = findings(src, "SL401")
    assert [f.ids[0] for f in shadowed] == ["Q2"]
    witness = shadowed[0].witness
    assert witness is not None and witness["agent"]["assigned"] is True
    assert decided_by(compiled(src), "A", witness) == "Q"


def test_diff_sees_a_change_for_assigned_agents() -> None:
    """`diff` used the same regions: it said nothing changed when only an assigned agent's
    decision did."""
    old = compile_source(policy('  when agent.group == "quarantine" allow risk 3 as Q\n'
                                '  allow as REST\n', QUARANTINE))
    new = compile_source(policy('  when agent.group == "quarantine" block as Q\n'
                                '  allow as REST\n', QUARANTINE))
    regions = [r for a in diff_policies(old, new).actions for r in a.regions if r.changed]
    assert len(regions) == 1
    region = regions[0]
    assert region.witness["agent"]["assigned"] is True
    assert region.old is not None and region.new is not None
    assert (region.old.outcome, region.new.outcome) == ("allow", "shutdown")  # strikes 1


def test_diff_against_a_version_without_the_group_replays_without_assigning() -> None:
    old = compile_source(policy("  when agent.cumulative_risk > 5 block as HI\n  allow as R\n"))
    new = compile_source(policy("  when agent.cumulative_risk > 6 block as HI\n  allow as R\n",
                                QUARANTINE))
    for a, b in ((old, new), (new, old)):
        changed = [r for d in diff_policies(a, b).actions for r in d.regions if r.changed]
        assert changed and all(r.old is not None and r.new is not None for r in changed)


def test_a_group_reached_only_by_an_id_outside_a_z_gets_an_id_not_an_assignment() -> None:
    """The search for an id in a group tried ids of up to two characters of a-z, 0-9, `-` and
    `_` after a pattern's prefix; `p` and every `pX*` taken earlier leave `p` with any other
    character (`pZ`) to the later `p*`."""
    readable = "abcdefghijklmnopqrstuvwxyz0123456789-_"
    agents = ", ".join(['"p"', *(f'"p{c}*"' for c in readable)])
    groups = f"group early {{\n  agents {agents}\n}}\ngroup late {{\n  agents \"p*\"\n}}\n"
    src = policy('  when agent.group == "late" block as LATE\n'
                 '  when agent.group == "late" allow as LATE2\n  allow as REST\n', groups)
    shadowed = findings(src, "SL401")
    assert [f.ids[0] for f in shadowed] == ["LATE2"]
    witness = shadowed[0].witness
    assert witness is not None and "assigned" not in witness["agent"]
    assert decided_by(compiled(src), "A", witness) == "LATE"


GROUPS = ('group all {\n  agents "*"\n}\ngroup late {\n  agents "late-*"\n}\n' + QUARANTINE)
GROUP_TESTS = st.sampled_from(['agent.group == "late"', 'agent.group != "quarantine"',
                               'agent.group == "all"', 'agent.group in {"late", "quarantine"}',
                               "agent.blocked_attempts >= 1", "agent.cumulative_risk < 2"])


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(GROUP_TESTS, min_size=1, max_size=2), min_size=1, max_size=4))
def test_law_findings_hold_for_every_group_an_operator_can_assign(conds: list[list[str]]) -> None:
    """SL401/SL402 exactly when no agent, in any declared group (by its id or assigned),
    in any state the constants tell apart, is decided by the rule."""
    rules = "".join(f"  when {' and '.join(c)} allow as R{i}\n" for i, c in enumerate(conds))
    src = policy(rules, GROUPS)
    result = compiled(src)
    assert result.table is not None
    table = result.table.model_dump(mode="json")
    matched: set[str | None] = set()
    for group in ("all", "late", "quarantine"):
        for risk in range(3):
            for blocked in range(3):
                store = MemoryStore(audit=False)
                store.set_state("late-1", risk, blocked)
                engine = Engine(table, store)
                engine.assign_group("late-1", group, operator="probe")
                matched.add(engine.evaluate("late-1", "A", {}).trace.matched_rule)
    never = {f.ids[0] for f in findings(src, "SL402", "SL401")}
    assert never == {f"R{i}" for i in range(len(conds))} - matched, src


def test_diff_shows_a_group_without_patterns_without_an_empty_pattern_list() -> None:
    old = compile_source(policy("  allow as R\n"))
    new = compile_source(policy("  allow as R\n", QUARANTINE))
    groups = [s for s in diff_policies(old, new).settings if s.name == "groups"]
    assert groups and groups[0].after == "quarantine (strikes 1)"


# ------------------------------------------------- diff: action types under two normalisations

def normalised(steps: str, name: str) -> str:
    return (f'policy p version "1" {{\n  action_type normalize {steps}\n}}\n'
            f'action "{name}" {{\n  allow as NAMED\n}}\notherwise allow risk 5 as OTHER\n')


def test_diff_finds_an_action_type_only_a_case_mapping_sends_to_another_block() -> None:
    """`"ß"` upper-cases to `"SS"` but lower-cases to itself: the lower-casing version sends it
    to `otherwise`, the upper-casing one to its `"SS"` block. `diff` tried only the names as
    written, lower- and upper-cased and with spaces, found no change, and `--equivalent`
    answered "equivalent"."""
    old = compile_source(normalised("lower", "ss"))
    new = compile_source(normalised("upper", "SS"))
    diff = diff_policies(old, new)
    changes = [(c.raw, c.old.rule_id if c.old else None, c.new.rule_id if c.new else None)
               for c in diff.changes]
    assert changes == [("ß", "OTHER", "NAMED")]
    counterexample = diff.counterexample()
    assert counterexample is not None and counterexample.steps[0].action == "ß"


SPELLING_ALPHABET = ("a", "A", "s", "S", "ß", " ", "k", "K", "ı", "I", "i", "İ", "Σ", "ς", "σ")
STEP_CHOICES = st.sampled_from(("", "lower", "upper", "trim", "trim, lower", "upper, trim",
                                "lower, upper"))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(st.sampled_from(SPELLING_ALPHABET), min_size=1, max_size=2),
                min_size=1, max_size=2, unique=True),
       STEP_CHOICES,
       st.lists(st.text(st.sampled_from(SPELLING_ALPHABET), min_size=1, max_size=2),
                min_size=1, max_size=2, unique=True),
       STEP_CHOICES)
def test_law_diff_compares_every_action_type_of_two_letters(old_names: list[str], old_steps: str,
                                                            new_names: list[str],
                                                            new_steps: str) -> None:
    """Every action type of up to two characters of a case-rich alphabet that the versions
    decide differently is in a changed region of `diff` (one block per name)."""
    def source(names: list[str], steps: str) -> str:
        header = f"  action_type normalize {steps}\n" if steps else ""
        blocks = "".join(f'action "{n}" {{\n  allow risk {i + 1} as R{i}\n}}\n'
                         for i, n in enumerate(names))
        return f'policy p version "1" {{\n{header}}}\n{blocks}otherwise allow as OTHER\n'

    old, new = compile_source(source(old_names, old_steps)), compile_source(source(new_names,
                                                                                  new_steps))
    if not (old.ok and new.ok):  # a name its own normalisation changes is refused
        return
    assert old.table is not None and new.table is not None
    engines = (Engine(old.table.model_dump(mode="json")), Engine(new.table.model_dump(mode="json")))
    changed = {(c.old.rule_id, c.new.rule_id) for c in diff_policies(old, new).changes
               if c.old is not None and c.new is not None}
    words = [""] + list(SPELLING_ALPHABET) + [a + b for a in SPELLING_ALPHABET
                                              for b in SPELLING_ALPHABET]
    for number, word in enumerate(words):
        pair = tuple(engine.evaluate(f"probe-{number}", word, {}).rule_id for engine in engines)
        assert pair[0] == pair[1] or pair in changed, (word, pair)


# ------------------------------------------------------- agent state inside an exact computation

STATE_SUM = ("  when agent.cumulative_risk + 30 > 100 block as HIGH\n"
             "  when agent.cumulative_risk > 60 allow risk 3 as MID\n"
             "  when agent.blocked_attempts * 2 >= 3 allow risk 2 as STRUCK\n  allow as LAST\n")


def test_a_state_count_with_int_constants_is_analysed_exactly() -> None:
    """`agent.cumulative_risk + 30 > 100` is the threshold `agent.cumulative_risk > 70` (the
    counts are `int`s, docs/language.md): it got SL408 and no finding at all."""
    src = policy(STATE_SUM)
    assert not findings(src, "SL408")
    overlaps = {f.ids[:2]: f.witness for f in findings(src, "SL404")}
    assert set(overlaps) == {("HIGH", "MID"), ("MID", "STRUCK")}
    high = overlaps[("HIGH", "MID")]
    assert high is not None and high["agent"]["cumulative_risk"] == 71
    for (earlier, _), witness in overlaps.items():
        assert witness is not None and decided_by(compiled(src), "A", witness) == earlier


def test_diff_compares_a_state_count_with_int_constants_exactly() -> None:
    old = compile_source(policy(STATE_SUM))
    new = compile_source(policy(STATE_SUM.replace("+ 30 > 100", "+ 31 > 100")))
    diff = diff_policies(old, new)
    assert not [a for a in diff.actions if a.skipped]
    changes = diff.changes
    assert len(changes) == 1 and changes[0].witness["agent"]["cumulative_risk"] == 70
    assert changes[0].old is not None and changes[0].new is not None
    assert (changes[0].old.rule_id, changes[0].new.rule_id) == ("MID", "HIGH")


# ------------------------------------------------------- diff --equivalent and groups' settings

def grouped(setting: str, rules: str = "  allow risk 30 as OK\n", agents: str = '"g-*"') -> str:
    members = f"  agents {agents}\n" if agents else ""
    return HEADER + f"group g {{\n{members}  {setting}\n}}\n" + \
        f"action A {{\n{rules}}}\notherwise block as O\n"


@pytest.mark.parametrize(("old", "new", "rules"), [
    ("risk_threshold 50", "risk_threshold 60", "  allow risk 30 as OK\n"),
    ("strikes 2", "strikes 3", "  block as NO\n"),
    ("risk_decay 10 per 1h", "risk_decay 20 per 1h", "  allow risk 30 as OK\n"),
    ("limit 2 per 1h", "limit 3 per 1h", "  allow as OK\n"),
])
def test_equivalent_sees_a_change_of_a_groups_setting(old: str, new: str, rules: str) -> None:
    """`--equivalent` searched sequences with the header's settings and an agent in no group
    only, and called versions that differ in a group's threshold, strikes, decay or limit
    equivalent."""
    diff = diff_policies(compile_source(grouped(old, rules)), compile_source(grouped(new, rules)))
    found = diff.counterexample()
    assert found is not None and found.agent is not None and found.agent.startswith("g-")
    last = found.steps[-1]
    assert last.old.outcome != last.new.outcome or last.old.decayed != last.new.decayed


def test_equivalent_sees_a_group_only_an_operator_assigns() -> None:
    diff = diff_policies(compile_source(grouped("strikes 1", "  block as NO\n", agents="")),
                         compile_source(grouped("strikes 2", "  block as NO\n", agents="")))
    found = diff.counterexample()
    assert found is not None and found.assigned == "g"
    assert [s.old.outcome for s in found.steps] == ["shutdown"]
    assert [s.new.outcome for s in found.steps] == ["block"]


def test_equivalent_sees_an_agent_moved_out_of_its_group() -> None:
    diff = diff_policies(compile_source(grouped("risk_threshold 50")),
                         compile_source(grouped("risk_threshold 50", agents='"h-*"')))
    found = diff.counterexample()
    assert found is not None and found.agent is not None
    assert found.agent.startswith(("g-", "h-"))


# ------------------------------------------- diff: fields one version declares, undeclared keys

def undeclared_pair(old_fields: str, new_fields: str, old_setting: str = "",
                    otherwise: bool = True) -> tuple[Any, Any]:
    def source(fields: str, setting: str) -> str:
        header = f"  undeclared_fields {setting}\n" if setting else ""
        rules = "".join(f"  when {name} > 1 block as BIG_{name.upper()}\n"
                        for name in fields.split() if name)
        tail = "otherwise block as O\n" if otherwise else ""
        return (f'policy p version "1" {{\n{header}}}\ninput {{\n'
                + "".join(f"  {name}: int = 0\n" for name in fields.split())
                + f"}}\naction A {{\n{rules}  allow as OK\n}}\n" + tail)
    return (compile_source(source(old_fields, old_setting)),
            compile_source(source(new_fields, "")))


def region_rules(diff: Any) -> set[tuple[str, str, str]]:
    return {(r.action, r.before.rule, r.after.rule) for r in diff.changes}


def test_diff_sees_that_a_field_no_longer_declared_is_refused() -> None:
    """Under `undeclared_fields refuse` (the default) a field the new version no longer
    declares blocks the action when sent; the diff modelled it as ignored: it labelled the
    region `block BIGB -> allow OK` while the runtime said `UNDECLARED_FIELD`, and missed the
    inputs that send the field with a harmless value."""
    old, new = undeclared_pair("a b", "a")
    diff = diff_policies(old, new)
    assert ("A", "OK", "UNDECLARED_FIELD") in region_rules(diff)
    assert ("A", "BIG_B", "UNDECLARED_FIELD") in region_rules(diff)
    assert_labels_are_the_runtimes(diff)


def test_diff_sees_a_change_of_undeclared_fields() -> None:
    """`undeclared_fields ignore` -> `refuse` blocks every input with a stray key; the diff
    listed no setting, no region, and `--equivalent` answered "equivalent"."""
    old, new = undeclared_pair("a", "a", old_setting="ignore")
    diff = diff_policies(old, new)
    assert [s.name for s in diff.settings] == ["undeclared_fields"]
    assert ("A", "OK", "UNDECLARED_FIELD") in region_rules(diff)
    assert diff.counterexample() is not None
    assert_labels_are_the_runtimes(diff)


def test_diff_without_otherwise_reads_no_input_of_an_unknown_action() -> None:
    """An action no block names, in a policy without `otherwise`, is `UNKNOWN_ACTION` before
    any input is read; the diff labelled a region of it `INVALID_INPUT` (a field became
    required), a change the runtime does not make."""
    old = compile_source(HEADER + "input {\n  a: int = 0\n}\naction A {\n  allow as OK\n}\n")
    new = compile_source(HEADER + "input {\n  a: int\n}\naction A {\n  allow as OK\n}\n")
    diff = diff_policies(old, new)
    assert region_rules(diff) == {("A", "OK", "INVALID_INPUT")}
    assert_labels_are_the_runtimes(diff)


def assert_labels_are_the_runtimes(diff: Any) -> None:
    """Every region's two rules are the ones the runtimes decide its witness by."""
    for action in diff.actions:
        for region in action.regions:
            assert region.old is not None and region.new is not None
            for verdict, decision in ((region.before, region.old), (region.after, region.new)):
                matched = decision.trace.matched_rule if decision.trace else None
                assert (matched or decision.rule_id) == verdict.rule, (region.to_dict(),
                                                                       decision.rule_id)


FIELD_SETS = st.sampled_from(("", "a", "b", "a b"))


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(FIELD_SETS, FIELD_SETS, st.sampled_from(("", "ignore", "refuse")),
       st.sampled_from(("", "ignore")), st.booleans(), st.booleans())
def test_law_diff_regions_cover_every_changed_decision_over_declared_and_stray_keys(
        old_fields: str, new_fields: str, old_setting: str, new_setting: str,
        old_otherwise: bool, new_otherwise: bool) -> None:
    def source(fields: str, setting: str, otherwise: bool) -> str:
        header = f"  undeclared_fields {setting}\n" if setting else ""
        rules = "".join(f"  when {n} > 1 block as BIG_{n.upper()}\n" for n in fields.split())
        return (f'policy p version "1" {{\n{header}}}\ninput {{\n'
                + "".join(f"  {n}: int = 0\n" for n in fields.split())
                + f"}}\naction A {{\n{rules}  allow as OK\n}}\n"
                + ("otherwise allow as O\n" if otherwise else ""))

    old = compile_source(source(old_fields, old_setting, old_otherwise))
    new = compile_source(source(new_fields, new_setting, new_otherwise))
    assert old.ok and new.ok and old.table is not None and new.table is not None
    diff = diff_policies(old, new)
    assert_labels_are_the_runtimes(diff)
    claimed = {(r.raw, r.old.rule_id, r.new.rule_id) for r in diff.changes
               if r.old is not None and r.new is not None}
    engines = (Engine(old.table.model_dump(mode="json")), Engine(new.table.model_dump(mode="json")))
    values = ({}, {"a": 0}, {"a": 2}, {"b": 0}, {"b": 2}, {"a": 2, "b": 0}, {"c": 1},
              {"a": "x"})
    for number, fields in enumerate(values):
        for action in ("A", diff.actions[-1].raw if diff.actions else "A"):
            pair = tuple(e.evaluate(f"p-{number}-{action}", action, dict(fields)).rule_id
                         for e in engines)
            changed = [c for c in claimed if (c[1], c[2]) == pair]
            assert pair[0] == pair[1] or changed, (fields, action, pair, claimed)


def test_diff_sees_a_whole_number_sent_as_a_decimal_when_int_becomes_number() -> None:
    """`1.0` is no `int` (refused) but is the `number` 1: with `a: int` -> `a: number` and a
    rule `a == 1`, the input `a=1.0` goes from INVALID_INPUT to that rule; the diff's values
    kept `1` and dropped `1.0` as equal, and missed the region."""
    old = compile_source(HEADER + "input {\n  a: int\n}\naction A {\n  when a == 1 block as ONE\n"
                         "  allow as OK\n}\notherwise block as O\n")
    new = compile_source(HEADER + "input {\n  a: number\n}\naction A {\n  when a == 1 block as "
                         "ONE\n  allow as OK\n}\notherwise block as O\n")
    diff = diff_policies(old, new)
    assert ("A", "INVALID_INPUT", "ONE") in region_rules(diff)
    assert_labels_are_the_runtimes(diff)


def test_diff_keeps_0_and_1_apart_from_false_and_true_when_bool_becomes_int() -> None:
    old = compile_source(HEADER + "input {\n  a: bool\n}\naction A {\n  when a block as ON\n"
                         "  allow as OK\n}\notherwise block as O\n")
    new = compile_source(HEADER + "input {\n  a: int\n}\naction A {\n  when a == 0 block as "
                         "ZERO\n  when a == 1 block as ONE\n  allow as OK\n}\notherwise block as O\n")
    diff = diff_policies(old, new)
    assert {("A", "INVALID_INPUT", "ZERO"), ("A", "INVALID_INPUT", "ONE"),
            ("A", "ON", "INVALID_INPUT")} <= region_rules(diff)
    assert_labels_are_the_runtimes(diff)


PATTERN = st.builds(lambda text, star: text + ("*" if star else ""),
                    st.text(st.sampled_from("ab"), max_size=2), st.booleans()).filter(bool)
GROUP_LISTS = st.lists(st.lists(PATTERN, max_size=3), max_size=3)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(GROUP_LISTS, GROUP_LISTS)
def test_law_distinct_ids_meet_every_pair_of_groups_an_id_can_be_in(old: list[list[str]],
                                                                    new: list[list[str]]) -> None:
    """`diff --equivalent` tries one agent per pair (old group, new group) of an id: every
    id of up to three characters of `a`, `b`, `c` is in a pair some tried id is in."""
    def groups(patterns: list[list[str]]) -> list[Group]:
        return [Group(name=f"g{i}", agents=p) for i, p in enumerate(patterns)]

    versions = (runtime_groups(groups(old)), runtime_groups(groups(new)))
    tried = {(group_of(versions[0], i), group_of(versions[1], i))
             for i in distinct_ids(groups(old), groups(new))}
    words = [""] + ["".join(p) for n in range(1, 4) for p in product("abc", repeat=n)]
    assert {(group_of(versions[0], i), group_of(versions[1], i)) for i in words} <= tried
