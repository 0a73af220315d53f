"""Property checks (`property NAME ACTION ... -> never|always TARGET`): proved where possible.

An action's inputs split into finitely many cells (`sentra_lang.space`), and within one rule's
region every input gets the same decision from a given agent state. So a property is checked
on one witness per (action, deciding rule) of the inputs its `where` allows: for a single
action of a fresh agent that covers every input, and the result is *proved*. With `sequence`,
the decision depends on the agent's record too; every record reachable within the property's
1 to 20 steps is visited (breadth first, one witness per rule from each), which again covers
every sequence. Each witness is decided by the runtime the suite runs, so a failure is a real
run and shows the steps that led to it.

Only when the cells cannot be built (the analysis limits, SL406) does the check fall back to
Hypothesis sampling (`sentra_lang.testing.sampling`, which needs the `properties` extra: without
it the property is an error naming the extra, `cli.extras.MissingExtra`) and the report says
*sampled*.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sentra_lang.agent_state import reads_state
from sentra_lang.arithmetic import exact_view
from sentra_lang.cli.extras import require
from sentra_lang.compiler import Lowerer
from sentra_lang.regions import TooManyPieces, engine_for
from sentra_lang.space import Box, SpaceTooLarge, build_space
from sentra_lang.table import Test
from sentra_lang.testing import suite_ast as s
from sentra_lang.testing.policies import PolicyUnderTest

DEFAULT_EXAMPLES = 100
MAX_SEQUENCE = 20
MAX_PROOF_STEPS = 200_000
"""Evaluations a sequence proof may take before it falls back to sampling."""

Evaluate = Callable[[str, str, dict[str, Any]], Any]


class PropertyFalsified(Exception):
    def __init__(self, steps: list[tuple[str, dict[str, Any]]], decision: Any) -> None:
        super().__init__("property falsified")
        self.steps = steps
        self.decision = decision


@dataclass
class PropertyOutcome:
    examples: int
    """Actions evaluated."""
    falsified: PropertyFalsified | None = None
    method: str = "proved"
    """`proved` (every cell, or every reachable record, checked) or `sampled`."""


def target_holds(prop: s.Property, decision: Any) -> bool:
    """Whether the decision satisfies the property (`never X`: it is not X)."""
    target = prop.target
    if target.kind == "decision":
        hit = decision.outcome == s.DECISIONS.get(target.value)
    else:
        hit = decision.rule_id == target.value
    return bool(hit) != (prop.quantifier == "never")


def run_property(prop: s.Property, put: PolicyUnderTest, evaluate: Evaluate,
                 *, examples: int | None = None) -> PropertyOutcome:
    """Check one property: proved on every cell when it can be, else sampled."""
    witnesses = property_witnesses(prop, put)
    if witnesses is not None:
        outcome = _prove(prop, witnesses, evaluate)
        if outcome is not None:
            return outcome
    require("properties", "hypothesis")
    from sentra_lang.testing.sampling import sample_property

    return sample_property(prop, put, evaluate, examples=examples)


def property_witnesses(prop: s.Property, put: PolicyUnderTest) -> list[tuple[str, dict[str, Any]]] | None:
    """One input per (action, rule that decides some input the `where` allows), or None when
    an action's cells cannot be built, or when the rows read the agent's state (`agent.*`: a
    proof would have to seed every state a cell needs; such properties are sampled)."""
    comp = put.compilation
    assert comp.model is not None and comp.table is not None
    if reads_state(comp.table):
        return None
    where = [[atom.to_test() for atom in row] for row in Lowerer(comp.model).rows(prop.where)]
    blocks = [b for b in comp.model.blocks if b.names]
    out: list[tuple[str, dict[str, Any]]] = []
    for action, _, _ in prop.actions:
        index = put.blocks.get(put.normalize_action(action))
        rows_of = exact_view(comp.table).actions[index].rows if index is not None else []
        tests = [(0, t) for row in rows_of for t in row.tests]
        tests += [(0, t) for row in where for t in row]
        try:
            space = build_space([comp.table.input], tests)
            labels = {r.id: n for n, r in enumerate(blocks[index].rules)} if index is not None else {}
            rows = [(labels[row.rule], space.row_box(0, row.tests)) for row in rows_of]
            filters = [box for box in (_box(space, row) for row in where) if box is not None]
            found = engine_for(space, rows).deciders(rows, filters)
        except (SpaceTooLarge, TooManyPieces):
            return None
        out += [(action, space.witness(cell)) for _, cell in sorted(
            found.items(), key=lambda item: -1 if item[0] is None else item[0])]
    return out


def _box(space: Any, tests: list[Test]) -> Box | None:
    return space.row_box(0, tests)  # type: ignore[no-any-return]


def _prove(prop: s.Property, witnesses: list[tuple[str, dict[str, Any]]],
           evaluate: Evaluate) -> PropertyOutcome | None:
    if not prop.sequence:
        for number, (action, fields) in enumerate(witnesses):
            decision = evaluate(f"proof-{number}", action, dict(fields))
            if not target_holds(prop, decision):
                return PropertyOutcome(number + 1, PropertyFalsified([(action, fields)], decision))
        return PropertyOutcome(len(witnesses))
    return _prove_sequences(prop, witnesses, evaluate)


def _prove_sequences(prop: s.Property, witnesses: list[tuple[str, dict[str, Any]]],
                     evaluate: Evaluate) -> PropertyOutcome | None:
    """Breadth first over the agent records reachable in up to MAX_SEQUENCE steps: from the
    shortest path to each record, try one witness per rule. A record is (cumulative risk,
    blocked attempts, status), the whole of what a decision depends on besides the rule."""
    frontier: list[list[int]] = [[]]
    seen: set[tuple[int, int, str]] = {(0, 0, "active")}
    evaluations = 0
    agents = 0
    for _depth in range(MAX_SEQUENCE):
        following: list[list[int]] = []
        for path in frontier:
            for choice, (action, fields) in enumerate(witnesses):
                agents += 1
                agent = f"proof-{agents}"
                for step in path:
                    evaluate(agent, witnesses[step][0], dict(witnesses[step][1]))
                decision = evaluate(agent, action, dict(fields))
                evaluations += len(path) + 1
                if not target_holds(prop, decision):
                    steps = [witnesses[step] for step in path] + [(action, fields)]
                    return PropertyOutcome(evaluations, PropertyFalsified(steps, decision))
                record = (decision.cumulative_risk, decision.blocked_attempts, decision.status)
                if record not in seen:
                    seen.add(record)
                    following.append(path + [choice])
                if evaluations > MAX_PROOF_STEPS:
                    return None
        frontier = following
        if not frontier:
            break
    return PropertyOutcome(evaluations)
