"""`diff` misses no setting: every policy, group, rule and input setting that can change a
decision (of one action, or of a sequence of actions of one agent over time) is noticed when it
changes alone, and `diff --equivalent` then answers "not equivalent" with a counterexample that
replays; the changes that cannot alter any decision are equivalent, each with its reason
(docs/diff.md, "What it compares" and "Equivalence"). The next setting the language gains
belongs in `NOTICED` or `EQUIVALENT`.

Also: the label a changed region gets for an input with a key one version declares as an
object (`UNDECLARED_FIELD` or `INVALID_INPUT`) is the one the runtime answers, and a witness of
an agent an operator assigns to a group replays through `sentra-lang explain --group`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sentra_runtime import Engine

from sentra_lang.compiler import Compilation, compile_source
from sentra_lang.keywords import FIXED_TIME
from sentra_lang.semdiff import Counterexample, PolicyDiff, diff_policies

BASE = """policy p version "1" {
  risk_threshold 100
  strikes 3
}

group trusted {
  agents "ops-*"
  risk_threshold 200
}

input {
  amount: int = 0
  kind: string normalize lower = "card"
}

action PAY {
  when amount > 100 block risk 5 as BIG threat "Overreach" "Too big."
  when kind == "crypto" review risk 10 as CRYPTO "Crypto needs a human."
  allow risk 30 as OK "Fine."
}

otherwise block as O "Not covered."
"""


def changed(old: str, new: str, source: str = BASE) -> tuple[str, str]:
    """The base policy and the base with one text replaced (which must be in it)."""
    assert old in source, old
    return source, source.replace(old, new, 1)


def with_header(setting: str, source: str = BASE) -> str:
    return source.replace("  strikes 3\n", f"  strikes 3\n  {setting}\n", 1)


def with_block_line(line: str, source: str = BASE) -> str:
    return source.replace("action PAY {\n", f"action PAY {{\n  {line}\n", 1)


def with_group_line(line: str, source: str = BASE) -> str:
    return source.replace('  agents "ops-*"\n', f'  agents "ops-*"\n  {line}\n', 1)


QUARANTINE = BASE.replace("input {", "group quarantine {\n  strikes 1\n}\n\ninput {", 1)
REVIEWED = BASE.replace('review risk 10 as CRYPTO "Crypto needs a human."',
                        'review risk 10 as CRYPTO "Crypto needs a human." expires 2h', 1)
DECAYING = with_header("risk_decay 10 per 1h")
LIMITED = BASE.replace('allow risk 30 as OK "Fine."', 'allow risk 30 as OK limit 2 per 1h "Fine."')
SMALL_RISKS = BASE.replace("allow risk 30 as OK", "allow risk 20 as OK", 1)

NOTICED: dict[str, tuple[str, str]] = {
    # the header
    "risk_threshold": changed("risk_threshold 100", "risk_threshold 80"),
    "strikes": changed("strikes 3", "strikes 2"),
    "risk_decay added": (BASE, DECAYING),
    "risk_decay amount": changed("10 per 1h", "20 per 1h", DECAYING),
    "risk_decay period": changed("10 per 1h", "10 per 2h", DECAYING),
    "undeclared_fields": (BASE, with_header("undeclared_fields ignore")),
    "action_type normalize": (BASE, with_header("action_type normalize lower")),
    "review_timeout added": (BASE, with_header("review_timeout 1h")),
    "review_timeout": changed("review_timeout 1h", "review_timeout 2h",
                              with_header("review_timeout 1h")),
    "risk_threshold under decay": changed("risk_threshold 100", "risk_threshold 90", DECAYING),
    # a rule
    "rule expires added": (BASE, REVIEWED),
    "rule expires": changed("expires 2h", "expires 3h", REVIEWED),
    "rule expires to review_timeout": changed(
        " expires 3h", "", with_header("review_timeout 2h",
                                       REVIEWED.replace("expires 2h", "expires 3h"))),
    "rule risk": changed("allow risk 30 as OK", "allow risk 31 as OK"),
    "rule outcome": changed("review risk 10 as CRYPTO", "block risk 10 as CRYPTO"),
    "rule threat": changed('threat "Overreach"', 'threat "Other"'),
    "rule id": changed("as BIG", "as HUGE"),
    "rule condition": changed("amount > 100", "amount > 101"),
    "rule order": (BASE, BASE.replace(
        '  when amount > 100 block risk 5 as BIG threat "Overreach" "Too big."\n'
        '  when kind == "crypto" review risk 10 as CRYPTO "Crypto needs a human."\n',
        '  when kind == "crypto" review risk 10 as CRYPTO "Crypto needs a human."\n'
        '  when amount > 100 block risk 5 as BIG threat "Overreach" "Too big."\n')),
    "rule limit added": (BASE, LIMITED),
    "rule limit count": changed("limit 2 per 1h", "limit 3 per 1h", LIMITED),
    "rule limit period": changed("limit 2 per 1h", "limit 2 per 2h", LIMITED),
    # an action block
    "block limit added": (BASE, with_block_line("limit 2 per 1h")),
    "block limit period": changed("limit 2 per 1h", "limit 2 per 30m",
                                  with_block_line("limit 2 per 1h")),
    "block names": changed("action PAY {", "action PAY, REFUND {"),
    # a group
    "group risk_threshold": changed("risk_threshold 200", "risk_threshold 150"),
    "group strikes": (BASE, with_group_line("strikes 1")),
    "group risk_decay": (BASE, with_group_line("risk_decay 10 per 1h")),
    "group limit": (BASE, with_group_line("limit 2 per 1h")),
    "group limit period": changed("limit 2 per 1h", "limit 2 per 2h",
                                  with_group_line("limit 2 per 1h")),
    "group action limit": (BASE, with_group_line("limit PAY 2 per 1h")),
    "group agents": changed('agents "ops-*"', 'agents "op-*"'),
    "group only an operator assigns": changed("strikes 1", "strikes 2", QUARANTINE),
    # the input
    "input default": changed("amount: int = 0", "amount: int = 101"),
    "input required": changed("amount: int = 0", "amount: int"),
    "input type": changed("amount: int = 0", "amount: number = 0"),
    "input normalisation": changed('normalize lower = "card"', '= "card"'),
    "input field removed": changed('  kind: string normalize lower = "card"\n', "",
                                   BASE.replace('when kind == "crypto" ', "when amount == 7 ")),
    # otherwise
    "otherwise outcome": changed('otherwise block as O', 'otherwise allow as O'),
    "otherwise removed": changed('otherwise block as O "Not covered."\n', ""),
}


EQUIVALENT: dict[str, tuple[str, str]] = {
    # a reason or a description is text about a decision, not the decision: the outcome, rule,
    # risk, threat and every state after it are the same (docs/diff.md: not compared)
    "rule reason": changed('"Too big."', '"Far too big."'),
    "rule description": changed('"Fine."', '"Fine." description "Small payments."'),
    "otherwise reason": changed('"Not covered."', '"Not ours."'),
    "policy version and description": changed(
        'policy p version "1" {', 'policy p version "2" {\n  description "Payments."'),
    # a setting written out at its default value is that value
    "default written out": (BASE, with_header("undeclared_fields refuse\n  review_timeout 24h")),
    # `review_timeout` is the lifetime of a ticket whose rule gives none: with every review rule
    # giving its own `expires`, no ticket ever has it
    "review_timeout no rule uses": changed(
        "review_timeout 1h", "review_timeout 2h", with_header("review_timeout 1h", REVIEWED)),
    # a limit no sequence can reach: the highest threshold (the group's 200) blocks OK (risk 30)
    # at its 7th allowed decision, whatever the window, so limits of 7 and 8 never decide (with
    # the review rule, approvals of 10 would be allowed decisions that reach them)
    "unreachable limits": changed("limit 7 per 1h", "limit 8 per 1h", with_block_line(
        "limit 7 per 1h", BASE.replace(
            '  when kind == "crypto" review risk 10 as CRYPTO "Crypto needs a human."\n', ""))),
    # thresholds no sum of the allowed risks (30, review's 10 at approval) tells apart: every
    # sum up to 100 is a multiple of 10
    "threshold between sums": changed("risk_threshold 100", "risk_threshold 109"),
}


def compiled(source: str) -> Compilation:
    result = compile_source(source, "p.sentra")
    assert result.ok and result.table is not None, [d.message for d in result.diagnostics]
    return result


def diff_of(old: str, new: str) -> PolicyDiff:
    return diff_policies(compiled(old), compiled(new))


def observed(decision: Any) -> tuple[Any, ...]:
    """What an agent and its operator see of a decision (its reason text aside)."""
    trace = decision.trace
    return (decision.outcome, decision.rule_id, decision.attempted_risk, decision.threat,
            trace.matched_rule if trace is not None else None, decision.decayed,
            decision.expires_at)


def assert_replays(old: str, new: str, found: Counterexample) -> None:
    """The counterexample, replayed through both runtimes on one clock, for its agent (put in
    its group by an operator when it says so), ends in decisions that differ."""
    now = [1_704_067_200.0]
    engines = [Engine(compiled(source).table.model_dump(mode="json"),  # type: ignore[union-attr]
                      clock=lambda: now[0]) for source in (old, new)]
    agent = found.agent or "replayed"
    if found.assigned is not None:
        for engine in engines:
            engine.assign_group(agent, found.assigned, operator="test")
    last: list[Any] = []
    for step in found.steps:
        now[0] += step.after
        fields = {k: v for k, v in step.fields.items() if k != "agent"}
        last = [engine.evaluate(agent, step.action, dict(fields)) for engine in engines]
        assert [observed(d) for d in last] == [observed(step.old), observed(step.new)]
    assert observed(last[0]) != observed(last[1]), found.to_dict()


@pytest.mark.parametrize("case", sorted(NOTICED))
def test_diff_notices_every_setting_that_changes_a_decision(case: str) -> None:
    old, new = NOTICED[case]
    diff = diff_of(old, new)
    assert diff.changed, case
    found = diff.counterexample()
    assert found is not None, f"{case}: called equivalent"
    assert_replays(old, new, found)


@pytest.mark.parametrize("case", sorted(EQUIVALENT))
def test_a_change_no_decision_can_show_is_equivalent(case: str) -> None:
    old, new = EQUIVALENT[case]
    assert diff_of(old, new).counterexample() is None, case


def test_the_cases_cover_every_setting_of_the_table() -> None:
    """A key the table gains (a new setting) fails here until a case above changes it."""
    from sentra_lang.table import ActionBlock, Group, InputField, PolicyInfo, Rule, Settings

    covered = {
        Settings: {"risk_threshold", "strikes", "risk_decay", "undeclared_fields",
                   "action_normalize", "review_timeout"},
        Rule: {"id", "outcome", "risk", "threat", "reason", "description", "condition",
               "generated_id", "span", "limit", "expires"},
        ActionBlock: {"names", "rows", "limits"},
        Group: {"name", "agents", "risk_threshold", "strikes", "risk_decay", "limits"},
        InputField: {"name", "type", "optional", "default", "has_default", "normalize",
                     "values"},
        PolicyInfo: {"name", "version", "description"},
    }
    for model, names in covered.items():
        assert set(model.model_fields) == names, model.__name__


# ----------------------------------------------------------- the review ticket's time in `diff`

def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    from sentra_lang.cli import main

    code = main(list(args))
    return code, capsys.readouterr().out


@pytest.fixture
def expiry_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """Two versions that differ only in how long review tickets wait: the rule's `expires`
    (2h -> 3h) and the header's `review_timeout` (24h by default -> 1h), used by `CRYPTO`
    and `otherwise` once the rule's own `expires` is gone."""
    monkeypatch.chdir(tmp_path)
    old = REVIEWED.replace('otherwise block as O', 'otherwise review as O')
    new = with_header("review_timeout 1h", old.replace("expires 2h", "expires 3h"))
    Path("old.sentra").write_text(old, "utf-8")
    Path("new.sentra").write_text(new, "utf-8")
    return "old.sentra", "new.sentra"


def test_a_review_expiry_change_is_reported_with_its_rule_and_action(
        expiry_versions: tuple[str, str], capsys: pytest.CaptureFixture[str],
        golden: Any) -> None:
    """`diff` compared no ticket time: versions differing only in `expires` or
    `review_timeout` had no setting change, no changed region, and were "equivalent"."""
    code, out = run_cli(capsys, "diff", *expiry_versions)
    assert code == 0
    golden.check("diff/review_expiry.txt", out)
    code, out = run_cli(capsys, "diff", *expiry_versions, "--format", "json")
    data = json.loads(out)
    settings = {s["name"]: (s["before"], s["after"]) for s in data["settings"]}
    assert settings == {
        "review_timeout": ("1d", "1h"),
        "expires": ("rule `CRYPTO` (`PAY`): 2h; rule `O` (other actions): 1d (review_timeout)",
                    "rule `CRYPTO` (`PAY`): 3h; rule `O` (other actions): 1h (review_timeout)")}
    changes = [c for action in data["actions"] for c in action["changes"]]
    assert {(c["action_type"], c["before"]["rule"], c["before"]["expires"],
             c["after"]["expires"]) for c in changes} >= {("PAY", "CRYPTO", 7200, 10800)}
    crypto = next(c for c in changes if c["before"]["rule"] == "CRYPTO")
    assert (crypto["old_decision"]["expires_at"], crypto["new_decision"]["expires_at"]) == (
        FIXED_TIME + 7200, FIXED_TIME + 10800)
    assert run_cli(capsys, "diff", *expiry_versions, "--fail-on-change")[0] == 1


def test_equivalent_fails_on_a_review_expiry_change(expiry_versions: tuple[str, str],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "diff", *expiry_versions, "--equivalent")
    assert code == 1
    assert out.splitlines() == [
        "not equivalent; counterexample (one agent, from a clean record):",
        "  1. OTHER_ACTION (any input)",
        "     old: Review Required (O, ticket expires after 1d)",
        "     new: Review Required (O, ticket expires after 1h)"]


def test_a_review_witness_replays_through_explain_with_the_same_ticket_time(
        expiry_versions: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    """The diff decides witnesses at `explain`'s time: the ticket times it shows are the ones
    `sentra-lang explain` gives for the witness."""
    run_cli(capsys, "diff", *expiry_versions, "--format", "json")
    diff = diff_of(*(Path(p).read_text("utf-8") for p in expiry_versions))
    for region in diff.changes:
        for path, decision in zip(expiry_versions, (region.old, region.new)):
            assert decision is not None
            args = [f"--field={k}={json.dumps(v)}" for k, v in region.witness.items()]
            code, out = run_cli(capsys, "explain", path, region.raw, *args, "--format", "json")
            assert code == 0
            explained = json.loads(out)
            assert (explained["rule_id"], explained["expires_at"]) == (decision.rule_id,
                                                                       decision.expires_at)


# ------------------------------------------- undeclared keys and the objects a version declares

def nested(fields: str, setting: str) -> str:
    """A policy declaring `fields` (dotted names: nested objects), each `int = 0` with a rule
    `when FIELD > 1 block`, and `undeclared_fields SETTING`."""
    names = fields.split()
    return (f'policy p version "1" {{\n  undeclared_fields {setting}\n}}\ninput {{\n'
            + "".join(f"  {name}: int = 0\n" for name in names) + "}\naction A {\n"
            + "".join(f"  when {name} > 1 block as BIG_{name.upper().replace('.', '_')}\n"
                      for name in names)
            + "  allow as OK\n}\notherwise block as O\n")


def assert_labels_are_the_runtimes(diff: PolicyDiff) -> None:
    """Every region's two rules are the ones the runtimes decide its witness by."""
    for action in diff.actions:
        for region in action.regions:
            for verdict, decision in ((region.before, region.old), (region.after, region.new)):
                assert decision is not None
                matched = decision.trace.matched_rule if decision.trace else None
                assert (matched or decision.rule_id) == verdict.rule, (
                    region.witness, verdict.rule, decision.rule_id, decision.reason)


def test_a_key_one_version_declares_as_an_object_is_invalid_not_undeclared() -> None:
    """`a` is a field in one version and the object of `a.b` in the other: the runtime refuses
    `{"a": 2}` as `INVALID_INPUT` (`Field `a` must be an object`), whatever
    `undeclared_fields` says; the diff labelled it `UNDECLARED_FIELD` under `refuse` and
    decided it by the rules under `ignore`."""
    for setting in ("refuse", "ignore"):
        diff = diff_of(nested("a", setting), nested("a.b", setting))
        assert_labels_are_the_runtimes(diff)
        labels = {(r.before.rule, r.after.rule): r.witness for r in diff.changes}
        assert labels[("BIG_A", "INVALID_INPUT")]["a"] == 2, (setting, labels)
        # `{}` is what the new version takes for `a`, and the old one refuses
        assert labels[("INVALID_INPUT", "OK")]["a"] == {}, (setting, labels)


FIELD_SETS = ("", "a", "a.b", "a.b a.c", "a.c", "c.a", "a.b.c", "a.b c.a")
INPUTS: tuple[dict[str, Any], ...] = (
    {}, {"a": 2}, {"a": 0}, {"a": {}}, {"a": {"z": 1}}, {"a.b": 2}, {"a.c": 2}, {"a.b.c": 2},
    {"a.b": 0, "c.a": 2}, {"c": 5}, {"z": 1}, {"a": None, "c.a": 2}, {"a": {}, "a.b": 2},
    {"c": {}, "a": 0}, {"c": {"z": 1}})
"""Inputs that give the fields as flat keys, and objects holding no declared field: the ones
the diff compares (docs/diff.md, "Limits": declared fields given inside their objects, when
the versions nest them differently, are not)."""


@pytest.mark.slow
@pytest.mark.parametrize("old_fields", FIELD_SETS)
@pytest.mark.parametrize("new_fields", FIELD_SETS)
def test_law_labels_of_nested_fields_are_the_runtimes(old_fields: str, new_fields: str) -> None:
    """For versions declaring nested fields (under either setting): every region's labels are
    the runtime's decisions of its witness, and every input the versions decide differently
    (objects, flat keys, stray keys) lies in a changed region of the same pair."""
    for old_setting, new_setting in (("refuse", "refuse"), ("ignore", "refuse"),
                                     ("refuse", "ignore"), ("ignore", "ignore")):
        old, new = nested(old_fields, old_setting), nested(new_fields, new_setting)
        diff = diff_of(old, new)
        assert_labels_are_the_runtimes(diff)
        claimed = {(r.before.rule, r.after.rule) for r in diff.changes}
        engines = [Engine(compiled(s).table.model_dump(mode="json"))  # type: ignore[union-attr]
                   for s in (old, new)]
        for number, fields in enumerate(INPUTS):
            pair = tuple((d.trace.matched_rule if d.trace else None) or d.rule_id for d in
                         (e.evaluate(f"agent-{number}", "A", dict(fields)) for e in engines))
            assert pair[0] == pair[1] or pair in claimed, (old_setting, new_setting, fields,
                                                           pair, claimed)


# ------------------------------------------- `explain --group`: witnesses of assigned agents

ASSIGNED_ONLY = ('policy p version "1" {}\n'
                 'group all {\n  agents "*"\n}\ngroup quarantine {\n  strikes 1\n}\n'
                 'input {\n  amount: int = 0\n}\n'
                 'action A {\n'
                 '  when agent.group == "quarantine" and amount > 5 block as Q\n'
                 '  when agent.group == "quarantine" and amount > 5 allow as Q2\n'
                 '  when agent.group in {"quarantine"} and agent.blocked_attempts >= 1 '
                 'allow risk 3 as STRUCK\n'
                 '  allow as REST\n}\notherwise allow as OTHER\n')
"""A group no id reaches by the patterns (`all` holds every id): only an operator's assignment
puts an agent in `quarantine`, so its witnesses say `"assigned": true`."""


def explain_witness(capsys: pytest.CaptureFixture[str], path: Path, action: str,
                    witness: dict[str, Any]) -> dict[str, Any]:
    """`sentra-lang explain` of a witness: its fields, its agent's id and state, and, when the
    witness says `assigned`, the agent's group by `--group`."""
    fields = {k: v for k, v in witness.items() if k != "agent"}
    args = ["explain", str(path), action, "--format", "json",
            *(f"--field={k}={json.dumps(v)}" for k, v in fields.items())]
    agent = witness.get("agent")
    if agent is not None:
        args += ["--agent", agent["id"],
                 "--state", f"{agent['cumulative_risk']},{agent['blocked_attempts']}"]
        if agent.get("assigned"):
            args += ["--group", agent["group"]]
    code, out = run_cli(capsys, *args)
    assert code == 0, out
    decided: dict[str, Any] = json.loads(out)
    return decided


def matched(decided: dict[str, Any]) -> str:
    return str(decided["explanation"]["matched_rule"] or decided["rule_id"])


def test_every_assigned_finding_witness_replays_through_explain(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A finding's witness in a group only an operator assigns could be replayed through the
    API only: `explain` could not put the agent in the group."""
    from tests.analysis.helpers import decided_by, findings

    path = tmp_path / "p.sentra"
    path.write_text(ASSIGNED_ONLY, "utf-8")
    assigned = [f for f in findings(ASSIGNED_ONLY) if f.witness is not None
                and f.witness.get("agent", {}).get("assigned")]
    assert {f.code for f in assigned} >= {"SL401"}
    for found in assigned:
        assert found.witness is not None
        decided = explain_witness(capsys, path, "A", found.witness)
        assert decided["group"] == found.witness["agent"]["group"] == "quarantine"
        assert matched(decided) == decided_by(compiled(ASSIGNED_ONLY), "A", found.witness)
    shadowed = next(f for f in assigned if f.code == "SL401")
    assert shadowed.witness is not None
    assert matched(explain_witness(capsys, path, "A", shadowed.witness)) == "Q"


def test_every_assigned_diff_witness_replays_through_explain(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each changed region's witness of an assigned agent gives, through `explain --group`,
    the decision `diff` labels it with in each version."""
    old = ASSIGNED_ONLY
    new = ASSIGNED_ONLY.replace("amount > 5 block as Q", "amount > 6 block as Q").replace(
        ">= 1 allow risk 3", ">= 2 allow risk 3")
    paths = (tmp_path / "old.sentra", tmp_path / "new.sentra")
    for path, source in zip(paths, (old, new)):
        path.write_text(source, "utf-8")
    diff = diff_of(old, new)
    assigned = [r for r in diff.changes if r.witness.get("agent", {}).get("assigned")]
    assert len(assigned) >= 2
    for region in assigned:
        for path, verdict in zip(paths, (region.before, region.after)):
            decided = explain_witness(capsys, path, region.raw, region.witness)
            assert matched(decided) == verdict.rule, (region.witness, path.name)


def test_explain_group_must_be_declared(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from sentra_lang.cli import main

    path = tmp_path / "p.sentra"
    path.write_text(ASSIGNED_ONLY, "utf-8")
    assert main(["explain", str(path), "A", "--group", "quarantin"]) == 2
    assert ("--group: the policy declares no group `quarantin`; did you mean `quarantine`?"
            in capsys.readouterr().err)
    path.write_text(BASE.replace("group trusted {\n  agents \"ops-*\"\n  risk_threshold 200\n}\n",
                                 ""), "utf-8")
    assert main(["explain", str(path), "PAY", "--group", "trusted"]) == 2
    assert "declares no groups" in capsys.readouterr().err
