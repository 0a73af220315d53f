"""The agent's state as the analysis sees it: three more input dimensions.

A policy whose conditions read `agent.group`, `agent.cumulative_risk` or
`agent.blocked_attempts` is analysed over its input *and* those three, so that its findings stay
exact (docs/language.md, "Agent state in conditions"): `agent.group` ranges over the groups an
agent can be in (every declared group, and `""` when some id is in none),
the two counts over the integers from 0. A witness then carries an `agent` part, with an agent
id in the witness's group, which replays by seeding that agent's state.

Every declared group is a region, also one no agent id reaches by its patterns: an operator may
assign any agent to any declared group (`Engine.assign_group`), and the assignment wins. A witness
in such a group says so (`"assigned": true`): its agent is put in the group before it replays.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from itertools import chain
from typing import Any

from sentra_runtime import arith
from sentra_runtime.policy import STATE_NAMES, GroupSpec, RiskDecay

from sentra_lang.table import Group, InputField, Table, Test

_READABLE = "abcdefghijklmnopqrstuvwxyz0123456789-_"
"""Characters an agent id found for a group is extended with, tried first (ids stay readable)."""


def reads_state(table: Table) -> bool:
    """Whether a test of the table reads the agent's state (also inside a computation)."""
    return any(name in STATE_NAMES for action in table.actions for row in action.rows
               for test in row.tests for name in test_fields(test))


def test_fields(test: Test) -> list[str]:
    """The fields a table test reads: its field and the other one, or a computation's."""
    if test.left is not None and test.right is not None:
        return [*arith.fields(arith.as_expr(test.left)), *arith.fields(arith.as_expr(test.right))]
    return [test.field] if test.other is None else [test.field, test.other]


def runtime_groups(groups: list[Group]) -> tuple[GroupSpec, ...]:
    """The table's groups as the runtime reads them (one definition of membership)."""
    return tuple(GroupSpec(g.name, tuple(g.agents), g.risk_threshold, g.strikes,
                           None if g.risk_decay is None
                           else RiskDecay(g.risk_decay.amount, g.risk_decay.period))
                 for g in groups)


def _candidates(prefix: str, patterns: list[str]) -> Iterator[str]:
    """`prefix`, then `prefix` and one character no pattern has right after `prefix`: if a
    pattern `prefix*` holds an id no earlier pattern holds, it holds one of these (an earlier
    pattern holding `prefix` and that character is either the exact id or a prefix of
    `prefix`, which holds every id `prefix*` holds)."""
    yield prefix
    used = {p[len(prefix)] for p in patterns if len(p) > len(prefix) and p.startswith(prefix)}
    pool = chain(_READABLE, (chr(code) for code in range(0xE000, 0x110000)))
    yield prefix + next(c for c in pool if c not in used)


def group_of(groups: tuple[GroupSpec, ...], agent_id: str) -> str:
    """The group that holds the agent (the first whose pattern matches; `""`: none)."""
    return next((group.name for group in groups if group.holds(agent_id)), "")


def agent_ids(table_groups: list[Group]) -> dict[str, str]:
    """An agent id in each group some id reaches by the patterns (`""` for no group, when some
    id is in none); exact: `_candidates` finds one whenever one exists."""
    groups = runtime_groups(table_groups)
    found: dict[str, str] = {}
    patterns = [(g.name, p) for g in groups for p in g.agents] + [("", "agent*"), ("", "*")]
    texts = [p for _, p in patterns]
    for name, pattern in patterns:
        if name in found:
            continue
        tries = _candidates(pattern[:-1], texts) if pattern.endswith("*") else iter([pattern])
        for agent in tries:
            if group_of(groups, agent) == name:
                found[name] = agent
                break
    return found


def distinct_ids(*versions: Sequence[Group]) -> list[str]:
    """Agent ids that, between them, meet every combination of groups the versions' patterns
    put one agent id in (an id held by no exact pattern is held by the same prefix patterns
    as its longest held prefix followed by a character no pattern has there)."""
    patterns = [p for groups in versions for g in groups for p in g.agents] + ["*"]
    ids = [p for p in patterns if not p.endswith("*")]
    ids += [agent for p in patterns if p.endswith("*") for agent in _candidates(p[:-1], patterns)]
    return list(dict.fromkeys(ids))


def state_view(table: Table, groups: list[Group] | None = None
               ) -> tuple[Table, dict[str, str] | None]:
    """The table with the agent's state as three more input fields, and an agent id per group
    its patterns reach (``None``, and the table as it is, when no test reads the state).
    ``groups`` (default: the table's) are the groups `agent.group` ranges over: every one, since
    an operator may assign any agent to any of them, and `""` when some id is in none."""
    if not reads_state(table):
        return table, None
    groups = table.groups if groups is None else groups
    ids = agent_ids(groups)
    names = [group.name for group in groups] + ([""] if "" in ids else [])
    fields = [InputField(name="agent.group", type="enum", values=names),
              InputField(name="agent.cumulative_risk", type="int"),
              InputField(name="agent.blocked_attempts", type="int")]
    return table.model_copy(update={"input": [*table.input, *fields]}), ids


def fold_witness(witness: Mapping[str, Any], ids: Mapping[str, str]) -> dict[str, Any]:
    """A witness with the state fields as its `agent` part: the agent's `id` (one in the
    witness's group), `group`, `cumulative_risk` and `blocked_attempts`; for a group no id
    reaches by the patterns, an id of its own and `"assigned": true` (assign it first)."""
    agent = {name.split(".", 1)[1]: value for name, value in witness.items()
             if name in STATE_NAMES}
    agent.setdefault("group", next(iter(ids)))
    agent.setdefault("cumulative_risk", 0)
    agent.setdefault("blocked_attempts", 0)
    rest = {name: value for name, value in witness.items() if name not in STATE_NAMES}
    group = agent["group"]
    if group in ids:
        return {**rest, "agent": {"id": ids[group], **agent}}
    return {**rest, "agent": {"id": assigned_id(group, ids), **agent, "assigned": True}}


def assigned_id(group: str, ids: Mapping[str, str]) -> str:
    """The agent id a witness in a group only an operator's assignment reaches uses: its own
    (no other witness's), so that replays in one store do not meet another's assignment."""
    agent = f"assigned-{group}"
    while agent in ids.values():
        agent += "_"
    return agent
