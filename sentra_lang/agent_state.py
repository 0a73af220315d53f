"""The agent's state as the analysis sees it: three more input dimensions.

A policy whose conditions read `agent.group`, `agent.cumulative_risk` or
`agent.blocked_attempts` is analysed over its input *and* those three, so that its findings stay
exact (docs/language.md, "Agent state in conditions"): `agent.group` ranges over the groups an
agent can be in (the declared groups some agent id reaches, and `""` when some id is in none),
the two counts over the integers from 0. A witness then carries an `agent` part, with an agent
id in the witness's group, which replays by seeding that agent's state.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import product
from typing import Any

from sentra_runtime.policy import STATE_NAMES, GroupSpec, RiskDecay

from sentra_lang.table import Group, InputField, Table

_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-_"
_LONGEST_SUFFIX = 2
"""Agent ids tried for a group are its patterns with suffixes of up to this many characters."""


def reads_state(table: Table) -> bool:
    """Whether a test of the table reads the agent's state."""
    return any(name in STATE_NAMES for action in table.actions for row in action.rows
               for test in row.tests
               for name in ([test.field] if test.other is None else [test.field, test.other]))


def runtime_groups(groups: list[Group]) -> tuple[GroupSpec, ...]:
    """The table's groups as the runtime reads them (one definition of membership)."""
    return tuple(GroupSpec(g.name, tuple(g.agents), g.risk_threshold, g.strikes,
                           None if g.risk_decay is None
                           else RiskDecay(g.risk_decay.amount, g.risk_decay.period))
                 for g in groups)


def _candidates(prefix: str) -> Iterator[str]:
    yield prefix
    for size in range(1, _LONGEST_SUFFIX + 1):
        for letters in product(_ALPHABET, repeat=size):
            yield prefix + "".join(letters)


def group_of(groups: tuple[GroupSpec, ...], agent_id: str) -> str:
    """The group that holds the agent (the first whose pattern matches; `""`: none)."""
    return next((group.name for group in groups if group.holds(agent_id)), "")


def agent_ids(table_groups: list[Group]) -> dict[str, str]:
    """An agent id in each group some id reaches (`""` for no group, when some id is in none).

    A group is reached when one of its patterns holds an id no earlier group holds: for a
    pattern `p*` such ids, when they exist, include `p` or `p` with a suffix of one character
    (an earlier pattern holds at most one of those, unless it is a prefix of `p`); a search up
    to two characters finds them.
    """
    groups = runtime_groups(table_groups)
    found: dict[str, str] = {}
    patterns = [(g.name, p) for g in groups for p in g.agents] + [("", "agent*"), ("", "*")]
    for name, pattern in patterns:
        if name in found:
            continue
        tries = _candidates(pattern[:-1]) if pattern.endswith("*") else iter([pattern])
        for agent in tries:
            if group_of(groups, agent) == name:
                found[name] = agent
                break
    return found


def state_view(table: Table, groups: list[Group] | None = None
               ) -> tuple[Table, dict[str, str] | None]:
    """The table with the agent's state as three more input fields, and an agent id per group
    reachable (``None``, and the table as it is, when no test reads the state). ``groups``
    (default: the table's) are the groups `agent.group` ranges over."""
    if not reads_state(table):
        return table, None
    groups = table.groups if groups is None else groups
    ids = agent_ids(groups)
    names = [group.name for group in groups if group.name in ids]
    names += [""] if "" in ids else []
    fields = [InputField(name="agent.group", type="enum", values=names),
              InputField(name="agent.cumulative_risk", type="int"),
              InputField(name="agent.blocked_attempts", type="int")]
    return table.model_copy(update={"input": [*table.input, *fields]}), ids


def fold_witness(witness: Mapping[str, Any], ids: Mapping[str, str]) -> dict[str, Any]:
    """A witness with the state fields as its `agent` part: the agent's `id` (one in the
    witness's group), `group`, `cumulative_risk` and `blocked_attempts`."""
    agent = {name.split(".", 1)[1]: value for name, value in witness.items()
             if name in STATE_NAMES}
    agent.setdefault("group", next(iter(ids)))
    agent.setdefault("cumulative_risk", 0)
    agent.setdefault("blocked_attempts", 0)
    rest = {name: value for name, value in witness.items() if name not in STATE_NAMES}
    return {**rest, "agent": {"id": ids[agent["group"]], **agent}}
