"""`sentra-lang diff`: known answers from the documented semantics, the replay and brute-force
laws on generated pairs of policies, and the command (formats, exit codes, git revisions)."""

from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from sentra_lang import regions
from sentra_lang.checker import Model
from sentra_lang.cli import main
from sentra_lang.compiler import Compilation
from sentra_lang.interpreter import Interpreter, InvalidInput
from sentra_lang.semdiff import OTHER_ACTION, PolicyDiff, Verdict, diff_policies
from tests.analysis.helpers import compiled, engine_for
from tests.analysis.strategies import SmallPolicy, brute_inputs, complete, policy_pairs
from tests.analysis.test_laws import LAWS

HEADER = 'policy pay version "1" {{{settings}}}\n'
INPUT = 'input {\n  amount: number\n  vip: bool = false\n  kind: string normalize lower = "card"\n}\n'


def version(rules: str, *, settings: str = "", inputs: str = INPUT,
            otherwise: str = "otherwise block as UNKNOWN\n") -> str:
    return HEADER.format(settings=settings) + inputs + rules + otherwise


BASE = version("action PAY {\n  when amount > 1000 and not vip block risk 40 as BIG\n"
               "  when amount > 100 allow risk 10 as MEDIUM\n  allow as SMALL\n}\n")


def diff_of(old: str, new: str) -> PolicyDiff:
    return diff_policies(compiled(old), compiled(new))


def changes(diff: PolicyDiff) -> set[tuple[str, str, str]]:
    return {(c.action, c.before.rule, c.after.rule) for c in diff.changes}


def assert_regions_replay(diff: PolicyDiff) -> None:
    """Each region's witness: the runtimes match the rules the diff names."""
    for action in diff.actions:
        for region in action.regions:
            assert region.old is not None and region.new is not None
            for verdict, decision in ((region.before, region.old), (region.after, region.new)):
                matched = decision.trace.matched_rule
                if verdict.rule in ("INVALID_INPUT", "UNDECLARED_FIELD", "UNKNOWN_ACTION",
                                    "NO_RULE_MATCHED"):
                    assert matched is None and decision.rule_id in (
                        verdict.rule, "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS"), (region, decision)
                else:
                    assert matched == verdict.rule, (region.to_dict(), matched)


# ---------------------------------------------------------------------------- known answers

def test_a_policy_against_itself_changes_nothing_and_is_equivalent() -> None:
    diff = diff_of(BASE, BASE)
    assert not diff.changed and diff.changes == []
    assert diff.counterexample() is None


def test_moving_a_threshold_changes_exactly_the_band_between() -> None:
    new = BASE.replace("amount > 100 allow", "amount > 500 allow")
    diff = diff_of(BASE, new)
    assert changes(diff) == {("PAY", "MEDIUM", "SMALL")}
    (region,) = diff.changes
    assert 100 < region.witness["amount"] <= 500
    assert region.old is not None and region.new is not None
    assert (region.old.rule_id, region.new.rule_id) == ("MEDIUM", "SMALL")
    assert_regions_replay(diff)


def test_a_new_rule_takes_its_region_from_each_rule_it_overlaps() -> None:
    new = BASE.replace("  allow as SMALL", '  when kind == "crypto" block as CRYPTO\n  allow as SMALL')
    diff = diff_of(BASE, new)
    assert changes(diff) == {("PAY", "SMALL", "CRYPTO")}
    assert diff.changes[0].witness["kind"] == "crypto"
    assert_regions_replay(diff)


def test_risk_and_threat_are_part_of_the_decision() -> None:
    new = BASE.replace("allow risk 10 as MEDIUM", 'allow risk 15 as MEDIUM threat "Spend"')
    diff = diff_of(BASE, new)
    (region,) = diff.changes
    assert (region.before.risk, region.after.risk, region.after.threat) == (10, 15, "Spend")


def test_added_removed_actions_and_otherwise() -> None:
    new = BASE.replace("action PAY", "action REFUND {\n  allow as REFUND_OK\n}\naction PAY")
    diff = diff_of(BASE, new)
    assert changes(diff) == {("REFUND", "UNKNOWN", "REFUND_OK")}
    assert next(a for a in diff.actions if a.action == "REFUND").status == "added"
    back = diff_of(new, BASE)
    assert next(a for a in back.actions if a.action == "REFUND").status == "removed"
    other = diff_of(BASE, BASE.replace("otherwise block as UNKNOWN",
                                       "otherwise allow risk 5 as ANYTHING"))
    assert changes(other) == {(OTHER_ACTION, "UNKNOWN", "ANYTHING")}
    assert_regions_replay(other)


def test_no_otherwise_is_a_fail_closed_block() -> None:
    diff = diff_of(BASE, BASE.replace("otherwise block as UNKNOWN\n", ""))
    assert changes(diff) == {(OTHER_ACTION, "UNKNOWN", "UNKNOWN_ACTION")}
    assert_regions_replay(diff)


def test_a_field_made_required_rejects_inputs_without_it() -> None:
    new = version(BASE.split("input {")[1].split("}\n", 1)[1].replace("otherwise block as UNKNOWN\n", ""),
                  inputs=INPUT.replace("vip: bool = false", "vip: bool"))
    diff = diff_of(BASE, new)
    assert ("PAY", "SMALL", "INVALID_INPUT") in changes(diff)
    rejected = [c for c in diff.changes if c.after.rule == "INVALID_INPUT"]
    assert all("vip" not in c.witness for c in rejected)
    assert_regions_replay(diff)


def test_action_type_normalisation_changes_which_spellings_reach_a_block() -> None:
    new = BASE.replace("{}", "{\n  action_type normalize trim, upper\n}", 1)
    diff = diff_of(BASE, new)
    assert [s.name for s in diff.settings] == ["action_type normalize"]
    assert {c.action for c in diff.changes} >= {"pay"}
    assert_regions_replay(diff)


def test_changed_normalisation_is_said_to_be_approximate() -> None:
    new = BASE.replace("kind: string normalize lower", "kind: string normalize lower, trim")
    new = new.replace("  allow as SMALL", '  when kind == "crypto" block as CRYPTO\n  allow as SMALL')
    old = BASE.replace("  allow as SMALL", '  when kind == "crypto" block as CRYPTO\n  allow as SMALL')
    diff = diff_of(old, new)
    assert diff.approximate == ["kind"]
    assert any(c.witness["kind"].strip() == "crypto" and c.witness["kind"] != "crypto"
               for c in diff.changes)
    assert_regions_replay(diff)


# -------------------------------------------------------------------------------- sequences

def test_a_threshold_change_shows_over_a_sequence() -> None:
    new = BASE.replace("{}", "{\n  risk_threshold 45\n}", 1)
    diff = diff_of(BASE, new)
    assert [s.name for s in diff.settings] == ["risk_threshold"]
    found = diff.counterexample()
    assert found is not None and len(found.steps) == 5  # 4 x 10, then 50 > 45
    last = found.steps[-1]
    assert (last.old.label, last.new.rule_id) == ("Allowed", "RISK_THRESHOLD_EXCEEDED")


def test_a_threshold_no_sum_of_risks_can_tell_apart_is_equivalent() -> None:
    old = version("action PAY {\n  allow risk 30 as PAY_30\n}\n", settings="\n  risk_threshold 50\n")
    new = old.replace("risk_threshold 50", "risk_threshold 55")
    diff = diff_of(old, new)
    assert diff.settings and diff.counterexample() is None  # 30, 60: blocked by both


def test_a_strikes_change_shows_after_that_many_blocks() -> None:
    new = BASE.replace("{}", "{\n  strikes 2\n}", 1)
    found = diff_of(BASE, new).counterexample()
    assert found is not None and len(found.steps) == 2
    assert found.steps[-1].new.rule_id == "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS"
    assert found.steps[-1].old.label == "Blocked"


# ------------------------------------------------------------------------------- the laws

def _verdict_of(model: Model, interpreter: Interpreter, action: str,
                fields: dict[str, Any]) -> Verdict:
    try:
        rule = interpreter.match(action, fields)
    except InvalidInput:
        return Verdict("block", "INVALID_INPUT", 0, "Invalid Input")
    if rule is None:
        known = interpreter.rules_for(action) is not None
        name = "NO_RULE_MATCHED" if known else "UNKNOWN_ACTION"
        return Verdict("block", name, 0, "Unknown Behavior")
    return Verdict(rule.outcome, rule.id, rule.risk, rule.threat)


def enumerate_changes(old: Compilation, new: Compilation, actions: list[str],
                      inputs: list[dict[str, Any]]) -> set[tuple[str, Verdict, Verdict]]:
    assert old.model is not None and new.model is not None
    first, second = Interpreter(old.model), Interpreter(new.model)
    found = set()
    for action in actions:
        for fields in inputs:
            before = _verdict_of(old.model, first, action, fields)
            after = _verdict_of(new.model, second, action, fields)
            if before != after:
                found.add((action, before, after))
    return found


@LAWS
@given(policy_pairs())
def test_diff_regions_replay_and_equal_enumeration(pair: tuple[SmallPolicy, SmallPolicy]) -> None:
    first, second = pair
    old, new = compiled(first.source), compiled(second.source)
    diff = diff_policies(old, new)
    assert_regions_replay(diff)
    names = sorted(set(first.actions) | set(second.actions))
    claimed = {(c.action if c.action != OTHER_ACTION else "UNLISTED", c.before, c.after)
               for c in diff.changes}
    fields = {f.name: f for f in first.fields + second.fields}
    truth = enumerate_changes(old, new, names + ["UNLISTED"],
                              brute_inputs(SmallPolicy("", list(fields.values()))))
    assert truth <= claimed, (first.source, second.source)
    if complete(first):
        assert truth == claimed, (first.source, second.source)


@settings(LAWS, max_examples=30)
@given(policy_pairs())
def test_every_counterexample_replays(pair: tuple[SmallPolicy, SmallPolicy]) -> None:
    old, new = compiled(pair[0].source), compiled(pair[1].source)
    diff = diff_policies(old, new)
    found = diff.counterexample()

    def seen(decision: Any) -> tuple[Any, ...]:
        return (decision.outcome, decision.rule_id, decision.attempted_risk, decision.threat,
                decision.trace.matched_rule)

    if found is not None:
        last = found.steps[-1]
        assert seen(last.old) != seen(last.new)
        return
    # "equivalent": random sequences of actions find no difference either
    assert not diff.changes
    engines = [engine_for(old), engine_for(new)]
    inputs = brute_inputs(pair[0])
    actions = sorted(set(pair[0].actions) | set(pair[1].actions)) + ["UNLISTED"]
    for sequence in range(4):
        rnd = random.Random(sequence)
        for step in range(40):
            action, fields = rnd.choice(actions), rnd.choice(inputs)
            agent = f"sequence-{sequence}"
            before, after = (e.evaluate(agent, action, dict(fields)) for e in engines)
            assert seen(before) == seen(after), (step, action, fields, pair)


# --------------------------------------------------------------------------------- command

@pytest.fixture
def versions(tmp_path: Path) -> tuple[Path, Path]:
    old = tmp_path / "old.sentra"
    new = tmp_path / "new.sentra"
    old.write_text(BASE, encoding="utf-8")
    new.write_text(BASE.replace("{}", "{\n  strikes 2\n}", 1)
                   .replace("amount > 100 allow", "amount > 500 allow")
                   .replace("  allow as SMALL", '  when kind == "crypto" block as CRYPTO\n'
                            "  allow as SMALL")
                   .replace("otherwise", "action EXPORT {\n  block as NO_EXPORT\n}\notherwise"),
                   encoding="utf-8")
    return old, new


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["diff", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("output", ["human", "markdown", "github", "json"])
def test_formats_golden(output: str, versions: tuple[Path, Path], golden: Any,
                        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(versions[0].parent)
    code, out, _ = run_cli(capsys, "old.sentra", "new.sentra", "--format", output)
    assert code == 0
    suffix = {"human": "txt", "markdown": "md", "github": "github", "json": "json"}[output]
    golden.check(f"diff/pay.{suffix}", out)


def test_json_is_the_whole_diff(versions: tuple[Path, Path],
                                capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run_cli(capsys, str(versions[0]), str(versions[1]), "--format", "json")
    data = json.loads(out)
    assert data["summary"] == {"changed_regions": 4, "changed_actions": 2}
    assert [s["name"] for s in data["settings"]] == ["strikes"]


def test_exit_codes(versions: tuple[Path, Path], tmp_path: Path,
                    capsys: pytest.CaptureFixture[str]) -> None:
    old, new = (str(p) for p in versions)
    assert run_cli(capsys, old, new)[0] == 0
    assert run_cli(capsys, old, new, "--fail-on-change")[0] == 1
    assert run_cli(capsys, old, old, "--fail-on-change")[0] == 0
    code, out, _ = run_cli(capsys, old, new, "--equivalent")
    assert code == 1 and out.startswith("not equivalent")
    code, out, _ = run_cli(capsys, old, old, "--equivalent")
    assert code == 0 and out.startswith("equivalent")
    code, out, _ = run_cli(capsys, old, new, "--equivalent", "--format", "json")
    assert code == 1 and json.loads(out)["equivalent"] is False


def test_a_version_that_does_not_compile_prints_its_errors_and_exits_2(
        versions: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.sentra"
    broken.write_text(BASE.replace("amount > 100", "amont > 100"), encoding="utf-8")
    code, out, err = run_cli(capsys, str(versions[0]), str(broken), "--format", "json")
    assert code == 2 and out == ""
    assert "error[SL101]: undeclared field `amont`" in err and "does not compile" in err
    code, _, err = run_cli(capsys, str(tmp_path / "missing.sentra"), str(versions[0]))
    assert code == 2 and "cannot read" in err and "Traceback" not in err


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
                        "HOME": str(repo), "PATH": "/usr/bin:/bin"})


def _committed_library_change(tmp_path: Path, library_path: str) -> Path:
    """A git repository whose `policies/pay.sentra` imports the library at `library_path`; the
    library's `BIG` moves from 100 (committed) to 500 (in the working tree)."""
    repo = tmp_path / "repo"
    library = repo / library_path
    policy = repo / "policies" / "pay.sentra"
    library.parent.mkdir(parents=True)
    policy.parent.mkdir(parents=True, exist_ok=True)
    library.write_text("input {\n  amount: number\n}\nlet BIG = amount > 100\n", encoding="utf-8")
    imported = os.path.relpath(library, policy.parent)
    policy.write_text(f'import "{imported}"\npolicy pay version "1" {{}}\n'
                      "action PAY {\n  when BIG block as BIG_PAY\n  allow as PAY_OK\n}\n"
                      "otherwise block as NO\n", encoding="utf-8")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "one")
    library.write_text("input {\n  amount: number\n}\nlet BIG = amount > 500\n", encoding="utf-8")
    return repo


def test_git_revisions_with_their_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    repo = _committed_library_change(tmp_path, "policies/lib/fields.sentra")
    monkeypatch.chdir(repo)
    code, out, err = run_cli(capsys, "HEAD:policies/pay.sentra", "policies/pay.sentra",
                             "--fail-on-change")
    assert code == 1, err
    assert "HEAD:/policies/pay.sentra" in out and "block `BIG_PAY` -> allow `PAY_OK`" in out
    monkeypatch.chdir(repo / "policies")
    code, out, err = run_cli(capsys, "HEAD:./pay.sentra", "pay.sentra", "--equivalent")
    assert code == 1 and "not equivalent" in out, err
    code, _, err = run_cli(capsys, "HEAD:policies/nope.sentra", "pay.sentra")
    assert code == 2 and "does not exist" in err
    code, _, err = run_cli(capsys, "no-such-rev:policies/pay.sentra", "pay.sentra")
    assert code == 2 and "Traceback" not in err


def test_imports_stay_inside_the_root_in_files_and_revisions(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A library beside the policies' folder is read only under `--root`, for a file and for a
    revision alike (the same folder of the repository as the revision has it)."""
    repo = _committed_library_change(tmp_path, "shared/fields.sentra")
    monkeypatch.chdir(repo)
    versions = ("HEAD:policies/pay.sentra", "policies/pay.sentra")
    code, out, err = run_cli(capsys, *versions, "--color", "never")
    assert code == 2 and out == "" and "\x1b[" not in err
    assert "error[SL014]: import refused" in err, err
    code, out, err = run_cli(capsys, *versions, "--root", ".", "--fail-on-change")
    assert code == 1, err
    assert "block `BIG_PAY` -> allow `PAY_OK`" in out
    code, _, err = run_cli(capsys, *versions, "--root", str(tmp_path))
    assert code == 2 and "not inside the git repository" in err
    code, _, err = run_cli(capsys, "policies/pay.sentra", "policies/pay.sentra", "--color",
                           "always")
    assert code == 2 and "\x1b[" in err


@LAWS
@given(policy_pairs())
def test_the_sparse_representation_diffs_alike(pair: tuple[SmallPolicy, SmallPolicy]) -> None:
    original = regions.DENSE_LIMIT
    regions.DENSE_LIMIT = 1
    try:
        test_diff_regions_replay_and_equal_enumeration.hypothesis.inner_test(pair)  # type: ignore[attr-defined]
    finally:
        regions.DENSE_LIMIT = original


DECAY_RULES = "action PAY {\n  allow risk 60 as PAY_OK\n}\n"


@pytest.mark.parametrize(("old", "new", "wait", "old_decayed", "new_decayed"), [
    ("", "risk_decay 10 per 1h", 3600, 0, 10),
    ("risk_decay 10 per 1h", "risk_decay 20 per 2h", 3600, 10, 0),
    ("risk_decay 10 per 1h", "risk_decay 50 per 1h", 3600, 10, 50),
])
def test_a_risk_decay_change_is_a_setting_change_with_a_timed_counterexample(
        old: str, new: str, wait: int, old_decayed: int, new_decayed: int) -> None:
    diff = diff_of(version(DECAY_RULES, settings=old), version(DECAY_RULES, settings=new))
    assert [change.name for change in diff.settings] == ["risk_decay"]
    found = diff.counterexample()
    assert found is not None
    last = found.steps[-1]
    assert (last.after, last.old.decayed, last.new.decayed) == (wait, old_decayed, new_decayed)


def test_the_same_risk_decay_is_equivalent() -> None:
    same = version(DECAY_RULES, settings="risk_decay 10 per 1h")
    assert diff_of(same, same).counterexample() is None


LIMITED = ("action PAY {{\n  {block}when amount > 100 allow risk 10 as MEDIUM{rule}\n"
           "  allow as SMALL\n}}\n")


@pytest.mark.parametrize(("old", "new", "blocked_at", "blocked_by"), [
    ({}, {"rule": " limit 3 per 1h"}, 4, "new"),
    ({"rule": " limit 3 per 1h"}, {"rule": " limit 5 per 1h"}, 4, "old"),
    ({"block": "limit 2 per 1d\n  "}, {}, 3, "old"),
])
def test_a_limit_change_is_a_setting_change_with_a_counterexample_that_replays(
        old: dict[str, str], new: dict[str, str], blocked_at: int, blocked_by: str) -> None:
    def source(parts: dict[str, str]) -> str:
        return version(LIMITED.format(block=parts.get("block", ""), rule=parts.get("rule", "")))
    diff = diff_of(source(old), source(new))
    assert [change.name for change in diff.settings] == ["limits"]
    assert not diff.changes   # a limit only turns an allow into a block over a sequence
    found = diff.counterexample()
    assert found is not None and len(found.steps) == blocked_at
    last = found.steps[-1]
    blocked = last.old if blocked_by == "old" else last.new
    assert blocked.rule_id == "RATE_LIMIT_EXCEEDED"


def test_the_same_limits_are_equivalent() -> None:
    same = version(LIMITED.format(block="limit 2 per 1d\n  ", rule=" limit 3 per 1h"))
    diff = diff_of(same, same)
    assert not diff.settings and diff.counterexample() is None


ABSENT_THEN_DEFAULT = [
    # `a` is absent from the input: in the old version it is missing (no test on it holds), in
    # the new one it is its default, which `b` is compared with
    ("a: number?", "a: number = 2.5", "b: number = 2.5", "when a < b allow as LESS",
     {("OTHERWISE", "LESS")}),
    ("a: string?", 'a: string = "x"', 'b: string = ""', "when a == b allow as SAME",
     {("OTHERWISE", "SAME")}),
    ("a: int?", "a: int = 3", "b: int = 0", "when b > a allow as MORE",
     {("OTHERWISE", "MORE")}),
]


@pytest.mark.parametrize(("old", "new", "other", "rule", "changes"), ABSENT_THEN_DEFAULT)
@pytest.mark.parametrize("dense", [True, False])
def test_a_default_is_compared_with_the_fields_of_its_group(
        old: str, new: str, other: str, rule: str, changes: set[tuple[str, str]],
        dense: bool) -> None:
    """Found by Hypothesis: an absent field compared with another field is its default in one
    version only; the other field's regions must hold that default's side of the comparison, or
    the change is missed."""
    source = ('policy p version "1" {}\ninput {\n  FIELD\n  ' + other + '\n}\naction ACT {\n  '
              + rule + '\n  block as OTHERWISE\n}\notherwise block as OTHER\n')
    original = regions.DENSE_LIMIT
    regions.DENSE_LIMIT = original if dense else 1
    try:
        diff = diff_policies(compiled(source.replace("FIELD", old)),
                             compiled(source.replace("FIELD", new)))
    finally:
        regions.DENSE_LIMIT = original
    assert {(c.before.rule, c.after.rule) for c in diff.changes} == changes
    assert_regions_replay(diff)
