"""Property checks (`property NAME ACTION ... -> never|always TARGET`): proved where possible.

An action's inputs split into finitely many cells (`sentra_lang.space`), and within one rule's
region every input gets the same decision from a given agent state. So a property is checked
on one witness per (action, deciding rule) of the inputs its `where` allows: for a single
action of a fresh agent that covers every input, and the result is *proved*. With `sequence`,
the decision depends on the agent's record too; every record reachable within the property's
1 to 20 steps is visited (breadth first, one witness per rule from each), which again covers
every sequence. Each witness is decided by the runtime the suite runs, so a failure is a real
run and shows the steps that led to it.

A decision also depends on who decides: the agent's group gives its threshold, strikes, decay
and limits. So every check runs for one agent of each group an agent can be in (an id the
group's patterns hold, or an agent an operator assigns to a group no id reaches, and an id in
no group when there is one), each case on that agent's fresh state.

Only when the cells cannot be built (the analysis limits, SL406) does the check fall back to
Hypothesis sampling (`sentra_lang.testing.sampling`, which needs the `properties` extra: without
it the property is an error naming the extra, `cli.extras.MissingExtra`) and the report says
*sampled*.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from sentra_lang.agent_state import agent_ids, assigned_id, reads_state
from sentra_lang.arithmetic import exact_view
from sentra_lang.cli.extras import require
from sentra_lang.compiler import Lowerer
from sentra_lang.regions import TooManyPieces, engine_for
from sentra_lang.space import Box, SpaceTooLarge, build_space
from sentra_lang.table import Test
from sentra_lang.testing import NothingToCheck
from sentra_lang.testing import suite_ast as s
from sentra_lang.testing.policies import PolicyUnderTest

DEFAULT_EXAMPLES = 100
MAX_SEQUENCE = 20
MAX_PROOF_STEPS = 200_000
"""Evaluations a sequence proof may take before it falls back to sampling."""

Evaluate = Callable[[str, str, dict[str, Any]], Any]


@dataclass(frozen=True)
class Agents:
    """What a property check does with the runtime the suite runs: decide, give an agent
    fresh state (`reset`, which keeps an operator's group assignment), assign a group, and
    read an agent's record: everything besides the input that a decision depends on."""

    evaluate: Evaluate
    fresh: Callable[[str], None]
    assign: Callable[[str, str], None]
    record: Callable[[str], Hashable]


@dataclass(frozen=True)
class PropertyAgent:
    """The agent a property is checked for: its id, its group (`""`: none) and whether an
    operator's assignment puts it there (no id reaches the group by its patterns)."""

    id: str
    group: str
    assigned: bool = False

    def describe(self) -> str:
        if not self.group:
            return f"agent `{self.id}` (in no group)"
        how = "assigned to" if self.assigned else "in"
        return f"agent `{self.id}` ({how} group `{self.group}`)"


def property_agents(put: PolicyUnderTest) -> list[PropertyAgent]:
    """One agent of each group an agent can be in, in declaration order, then one in no group
    when some id is in none (docs/testing.md, "Properties")."""
    table = put.compilation.table
    assert table is not None
    ids = agent_ids(table.groups)
    found = [PropertyAgent(ids[g.name], g.name) if g.name in ids
             else PropertyAgent(assigned_id(g.name, ids), g.name, True) for g in table.groups]
    if "" in ids:
        found.append(PropertyAgent(ids[""], ""))
    return found


def prepare(agents: Agents, who: list[PropertyAgent]) -> None:
    """Put each assigned agent in its group (the assignment survives the resets)."""
    for agent in who:
        if agent.assigned:
            agents.assign(agent.id, agent.group)


class PropertyFalsified(Exception):
    def __init__(self, steps: list[tuple[str, dict[str, Any]]], decision: Any,
                 agent: PropertyAgent | None = None) -> None:
        super().__init__("property falsified")
        self.steps = steps
        self.decision = decision
        self.agent = agent


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


def run_property(prop: s.Property, put: PolicyUnderTest, agents: Agents,
                 *, examples: int | None = None) -> PropertyOutcome:
    """Check one property: proved on every cell when it can be, else sampled. Raises
    NothingToCheck when its `where` allows no input."""
    who = property_agents(put)
    prepare(agents, who)
    witnesses = property_witnesses(prop, put)
    if witnesses is not None:
        if not witnesses:
            raise NothingToCheck(
                f"`where` allows no input of {', '.join(a for a, _, _ in prop.actions)}: the "
                "property checks nothing")
        outcome = _prove(prop, witnesses, agents, who)
        if outcome is not None:
            return outcome
    require("properties", "hypothesis")
    from sentra_lang.testing.sampling import sample_property

    return sample_property(prop, put, agents, who, examples=examples)


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


def _prove(prop: s.Property, witnesses: list[tuple[str, dict[str, Any]]], agents: Agents,
           who: list[PropertyAgent]) -> PropertyOutcome | None:
    if prop.sequence:
        return _prove_sequences(prop, witnesses, agents, who)
    evaluations = 0
    for agent in who:
        for action, fields in witnesses:
            agents.fresh(agent.id)
            decision = agents.evaluate(agent.id, action, dict(fields))
            evaluations += 1
            if not target_holds(prop, decision):
                return PropertyOutcome(evaluations, PropertyFalsified([(action, fields)],
                                                                      decision, agent))
    return PropertyOutcome(evaluations)


def _prove_sequences(prop: s.Property, witnesses: list[tuple[str, dict[str, Any]]],
                     agents: Agents, who: list[PropertyAgent]) -> PropertyOutcome | None:
    """For each agent, breadth first over its records reachable in up to MAX_SEQUENCE steps:
    from the shortest path to each record, try one witness per rule. A record
    (`Agents.record`: risk, strikes, status and the counts of its rate-limit windows; the
    clock stands still) is the whole of what a decision depends on besides the input."""
    evaluations = 0
    for agent in who:
        frontier: list[list[int]] = [[]]
        agents.fresh(agent.id)
        seen: set[Hashable] = {agents.record(agent.id)}
        for _depth in range(MAX_SEQUENCE):
            following: list[list[int]] = []
            for path in frontier:
                for choice, (action, fields) in enumerate(witnesses):
                    agents.fresh(agent.id)
                    for step in path:
                        agents.evaluate(agent.id, witnesses[step][0], dict(witnesses[step][1]))
                    decision = agents.evaluate(agent.id, action, dict(fields))
                    evaluations += len(path) + 1
                    if not target_holds(prop, decision):
                        steps = [witnesses[step] for step in path] + [(action, fields)]
                        return PropertyOutcome(evaluations,
                                               PropertyFalsified(steps, decision, agent))
                    record = agents.record(agent.id)
                    if record not in seen:
                        seen.add(record)
                        following.append(path + [choice])
                    if evaluations > MAX_PROOF_STEPS:
                        return None
            frontier = following
            if not frontier:
                break
    return PropertyOutcome(evaluations)
