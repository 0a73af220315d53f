"""The analysis' laws on generated policies, judged by code that is not the analysis.

(a) Every witness of every finding, given to the runtime's `Engine` as it is, lands on the
    rule the finding names, with that rule's outcome; the other rule a finding names matches
    it too (checked with the AST interpreter).
(b) On policies over small domains, the findings equal what brute-force enumeration of every
    input finds with the AST interpreter (`sentra_lang.interpreter`, which walks conditions as
    written: no table, no cells). Where the enumeration is not complete (strings), everything
    it finds must be found by the analysis, and (a) vouches for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from sentra_runtime import Engine

from sentra_lang import regions
from sentra_lang.analysis import AnalysisOptions, action_rows
from sentra_lang.arithmetic import exact_view
from sentra_lang.checker import Model, RuleInfo
from sentra_lang.compiler import Compilation, compile_source
from sentra_lang.interpreter import Interpreter, InvalidInput
from sentra_lang.regions import engine_for
from sentra_lang.space import build_space
from tests.analysis.helpers import backticked
from tests.analysis.strategies import (
    SmallField,
    SmallPolicy,
    brute_inputs,
    chain_inputs,
    chain_policies,
    complete,
    set_inputs,
    set_policies,
    small_policies,
    string_inputs,
    string_policies,
)
from tests.strategies import policies

LAWS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.reuse, Phase.generate])
ALL = AnalysisOptions(all_witnesses=True)


def _compile(source: str) -> Compilation:
    result = compile_source(source, "p.sentra", analysis=ALL)
    assert result.ok and result.model is not None and result.table is not None
    return result


def _block_of(model: Model, rule_id: str) -> tuple[str, dict[str, RuleInfo]]:
    for block in model.blocks:
        rules = {r.id: r for r in block.rules}
        if rule_id in rules:
            return block.names[0], rules
    raise AssertionError(rule_id)


def _expected_outcome(rule: RuleInfo | None, strikes: int) -> str:
    base = "block" if rule is None else rule.outcome
    if base == "block" and strikes == 1:
        return "shutdown"
    return base


def assert_witnesses_replay(result: Compilation) -> int:
    """Replay every witness through the runtime; return how many were replayed."""
    model = result.model
    assert model is not None and result.table is not None
    engine = Engine(result.table.model_dump(mode="json"))
    interpreter = Interpreter(model)
    replayed = 0
    for number, diag in enumerate(result.diagnostics):
        if diag.witness is None:
            continue
        ids = backticked(diag.message)
        if diag.code == "SL405":
            action = ids[0].split(", ")[0]
            claimed, other = (model.otherwise.id if model.otherwise else None), None
        elif diag.code == "SL401":
            action, _ = _block_of(model, ids[0])
            claimed, other = backticked(diag.related[0].message)[0], ids[0]
        else:
            assert diag.code == "SL404", diag
            action, _ = _block_of(model, ids[0])
            claimed, other = ids[0], ids[1]
        decision = engine.evaluate(f"witness-{number}", action, dict(diag.witness))
        where = f"{diag.code} {diag.message} witness={diag.witness}"
        assert decision.trace.matched_rule == claimed, (where, decision.rule_id)
        rule = next((r for b in model.blocks for r in b.rules if r.id == claimed),
                    model.otherwise)
        assert decision.outcome == _expected_outcome(rule, model.strikes), where
        if other is not None:
            _, rules = _block_of(model, other)
            condition = rules[other].when
            values = interpreter.values(dict(diag.witness))
            assert condition is None or interpreter.holds(condition, values), where
        replayed += 1
    return replayed


@LAWS
@given(policies())
def test_every_witness_replays_on_generated_policies(source: str) -> None:
    assert_witnesses_replay(_compile(source))


@LAWS
@given(small_policies())
def test_every_witness_replays_on_small_policies(policy: SmallPolicy) -> None:
    result = _compile(policy.source)
    assert_witnesses_replay(result)
    assert_every_region_replays(result)


# --------------------------------------------------------------------------- brute force

@dataclass
class Truth:
    """What enumeration finds for one action."""

    matched: set[str] = field(default_factory=set)
    decided: set[str] = field(default_factory=set)
    not_always: set[str] = field(default_factory=set)
    pairs: set[tuple[str, str]] = field(default_factory=set)
    gap: bool = False


def enumerate_block(interpreter: Interpreter, rules: list[RuleInfo],
                    inputs: list[dict[str, Any]]) -> Truth:
    truth = Truth()
    for fields in inputs:
        try:
            values = interpreter.values(fields)
        except InvalidInput:
            continue
        hits = [r for r in rules if r.when is None or interpreter.holds(r.when, values)]
        truth.matched |= {r.id for r in hits}
        truth.not_always |= {r.id for r in rules if r not in hits}
        if not hits:
            truth.gap = True
            continue
        winner = hits[0]
        truth.decided.add(winner.id)
        for later in hits[1:]:
            if winner.when is not None and later.when is not None and \
                    (winner.outcome, winner.risk) != (later.outcome, later.risk):
                truth.pairs.add((winner.id, later.id))
    truth.pairs = {(a, b) for a, b in truth.pairs if b in truth.decided}
    return truth


def claims(result: Compilation, names: list[str], rules: list[RuleInfo]) -> Truth:
    """The same facts, as the analysis reports them."""
    ids = {r.id for r in rules}
    claim = Truth(matched=set(ids), decided=set(ids), not_always=set(ids))
    action = ", ".join(names)
    for diag in result.diagnostics:
        found = backticked(diag.message)
        if diag.code == "SL405" and found[0] == action:
            claim.gap = True
        if not found or found[0] not in ids:
            continue
        if diag.code == "SL402":
            claim.matched.discard(found[0])
            claim.decided.discard(found[0])
        elif diag.code == "SL401":
            claim.decided.discard(found[0])
        elif diag.code == "SL403":
            claim.not_always.discard(found[0])
        elif diag.code == "SL404":
            claim.pairs.add((found[0], found[1]))
    return claim


@LAWS
@given(small_policies())
def test_by_default_each_overlapping_rule_is_named_once(policy: SmallPolicy) -> None:
    """Without --all-witnesses: every later rule that overlaps an earlier one with another
    decision gets exactly one note, naming an earlier rule it truly overlaps."""
    full = _compile(policy.source)
    short = compile_source(policy.source, "p.sentra")
    every = {backticked(d.message)[:2] for d in full.diagnostics if d.code == "SL404"}
    named = [backticked(d.message)[:2] for d in short.diagnostics
             if d.code == "SL404" and "later rules" not in d.message]
    for diag in short.diagnostics:
        if diag.code == "SL404" and "later rules" in diag.message:
            winner, *others = backticked(diag.message)
            named += [(winner, other) for other in others]
    assert set(named) <= every
    later = [b for _, b in named]
    summarised = any("later rules" in d.message for d in short.diagnostics)
    if not summarised:
        assert sorted(later) == sorted({b for _, b in every})


BEYOND_THE_INTS = SmallPolicy(
    'policy small version "1" {\n  strikes 3\n  risk_threshold 100\n}\ninput {\n'
    '  int_0: int = 1\n  ctx.number_1: number = 2.5\n}\naction ACT_0 {\n'
    '  when (int_0 <= ctx.number_1) and (int_0 > 4) allow as R1\n'
    '  when int_0 < ctx.number_1 allow risk 5 as R3\n}\notherwise block as OTHER\n',
    [SmallField("int_0", "int", "default", (), "1"),
     SmallField("ctx.number_1", "number", "default", (), "2.5")], ["ACT_0"])
"""R1 and R3 overlap only where the number is above 5 (`int_0 = 5, ctx.number_1 = 6`): the
enumeration's numbers once stopped at 5.0, and the law took the analysis' true SL404 for a
false one."""


@LAWS
@given(small_policies())
@example(BEYOND_THE_INTS)
def test_findings_equal_brute_force_enumeration(policy: SmallPolicy) -> None:
    result = _compile(policy.source)
    assert not [d for d in result.diagnostics if d.code == "SL406"]
    model = result.model
    assert model is not None
    interpreter = Interpreter(model)
    inputs = brute_inputs(policy)
    for block in model.blocks:
        truth = enumerate_block(interpreter, block.rules, inputs)
        claim = claims(result, block.names, block.rules)
        where = policy.source
        # whatever enumeration finds, the analysis finds
        assert truth.matched <= claim.matched, where
        assert truth.decided <= claim.decided, where
        assert truth.pairs <= claim.pairs, where
        assert not truth.gap or claim.gap, where
        conditional = {r.id for r in block.rules if r.when is not None}
        claimed_always = (conditional & claim.decided) - claim.not_always
        assert not claimed_always & truth.not_always, where
        if complete(policy):
            # and enumeration meets every region, so the analysis finds nothing more
            assert claim.matched == truth.matched, where
            assert claim.decided == truth.decided, where
            assert claim.pairs == truth.pairs, where
            assert claim.gap == truth.gap, where
            assert conditional & claim.decided & truth.decided - truth.not_always \
                <= claimed_always, where


def assert_matches_enumeration(result: Compilation, inputs: list[dict[str, Any]], where: str,
                               *, exhaustive: bool = True) -> None:
    """Enumeration finds what the analysis finds (at least, when it is not `exhaustive`)."""
    model = result.model
    assert model is not None
    interpreter = Interpreter(model)
    for block in model.blocks:
        truth = enumerate_block(interpreter, block.rules, inputs)
        claim = claims(result, block.names, block.rules)
        found = (truth.matched, truth.decided, truth.pairs, {truth.gap} - {False})
        claimed = (claim.matched, claim.decided, claim.pairs, {claim.gap} - {False})
        for mine, theirs in zip(found, claimed):
            assert mine == theirs if exhaustive else mine <= theirs, (where, mine, theirs)


def assert_every_region_replays(result: Compilation) -> None:
    """The positive claims without a diagnostic (a rule decides something, matches something)
    replay too: the analysis' own cell for each, given to the runtime."""
    model, table = result.model, result.table
    assert model is not None and table is not None
    engine = Engine(table.model_dump(mode="json"))
    interpreter = Interpreter(model)
    blocks = [b for b in model.blocks if b.names]
    for info, block in zip(blocks, exact_view(table).actions):  # computing tests rewritten
        space = build_space([table.input], [(0, t) for row in block.rows for t in row.tests])
        rows = action_rows(space, info.rules, block.rows)
        outcome = engine_for(space).first_match(rows)
        for label, cell in outcome.decided.items():
            witness = space.witness(cell)
            decision = engine.evaluate(f"region-{label}", info.names[0], witness)
            engine.reset(operator="law")
            assert decision.trace.matched_rule == info.rules[label].id, (witness, label)
        for label, cell in outcome.matched.items():
            condition = info.rules[label].when
            values = interpreter.values(space.witness(cell))
            assert condition is None or interpreter.holds(condition, values)


@LAWS
@given(string_policies())
def test_string_affix_findings_equal_enumeration(policy: SmallPolicy) -> None:
    result = _compile(policy.source)
    assert_witnesses_replay(result)
    assert_every_region_replays(result)
    assert_matches_enumeration(result, string_inputs(policy.fields[0]), policy.source,
                               exhaustive=False)


@LAWS
@given(set_policies())
def test_set_findings_equal_enumeration(policy: SmallPolicy) -> None:
    result = _compile(policy.source)
    assert_witnesses_replay(result)
    assert_matches_enumeration(result, set_inputs(policy.fields[0]), policy.source)


@pytest.mark.slow
@settings(LAWS, max_examples=30)
@given(chain_policies())
def test_numeric_comparison_findings_equal_enumeration(policy: SmallPolicy) -> None:
    result = _compile(policy.source)
    assert_witnesses_replay(result)
    assert_matches_enumeration(result, chain_inputs(policy), policy.source)


@LAWS
@given(small_policies())
def test_the_sparse_representation_obeys_the_same_laws(policy: SmallPolicy) -> None:
    """Large spaces are lists of boxes instead of one bit mask: same findings, same replays."""
    original = regions.DENSE_LIMIT
    regions.DENSE_LIMIT = 1
    try:
        test_findings_equal_brute_force_enumeration.hypothesis.inner_test(policy)  # type: ignore[attr-defined]
        result = _compile(policy.source)
        assert_witnesses_replay(result)
        assert_every_region_replays(result)
    finally:
        regions.DENSE_LIMIT = original
