"""The suite AST: frozen dataclasses with spans, built from the `.sentra-test` parse tree."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sentra_lang import ast
from sentra_lang.source import Source, Span

DECISIONS = {"allowed": "allow", "blocked": "block", "shutdown": "shutdown", "review": "review"}
"""Suite decision words and the runtime outcome each stands for."""


@dataclass(frozen=True)
class Value:
    """A field value as written; `omitted` is the `none` keyword (the field is not sent)."""

    value: Any
    span: Span
    omitted: bool = False


@dataclass(frozen=True)
class FieldValue:
    path: str
    path_span: Span
    value: Value
    span: Span


@dataclass(frozen=True)
class Clause:
    """One expectation: `decision`, `rule`, `reason`, `reason_contains`, `threat`, `risk`,
    `applied`, `projected`, `cumulative`, `strikes`, `decayed`, `status`, `group`, or `ticket`
    (`as NAME`: the name a `review` decision's ticket is known by in later steps)."""

    kind: str
    value: Any
    span: Span


@dataclass(frozen=True)
class Expectation:
    clauses: tuple[Clause, ...]
    span: Span

    @property
    def decision(self) -> str | None:
        return next((c.value for c in self.clauses if c.kind == "decision"), None)

    def get(self, kind: str) -> Clause | None:
        return next((c for c in self.clauses if c.kind == kind), None)


@dataclass(frozen=True)
class ActionStep:
    agent: str
    action: str
    action_span: Span
    action_quoted: bool
    fields: tuple[FieldValue, ...]
    expect: Expectation
    span: Span


@dataclass(frozen=True)
class ResetStep:
    agent: str | None
    """None resets every agent."""
    span: Span


@dataclass(frozen=True)
class StateStep:
    agent: str
    expect: Expectation
    span: Span


@dataclass(frozen=True)
class AfterStep:
    """`after 30m`: the scenario's clock moves on (the checker reads the duration)."""

    duration: str
    duration_span: Span
    span: Span


@dataclass(frozen=True)
class GroupStep:
    """`assign "agent-7" group "trusted"`: an operator assigns the agent to a group (`none`:
    clears the assignment; the checker reads the group)."""

    agent: str
    group: str | None
    group_span: Span
    span: Span


@dataclass(frozen=True)
class TicketRef:
    """A review ticket of the scenario: an agent's newest (`"a" last ticket`) or one named
    with `as NAME` (`agent` is then ``None``)."""

    agent: str | None
    name: str | None
    span: Span

    def __str__(self) -> str:
        if self.name is not None:
            return f"ticket `{self.name}`"
        return f"the last ticket of agent {self.agent!r}"


@dataclass(frozen=True)
class VerdictStep:
    """`approve REF by "op" [note "..."] [-> EXPECT]` (or `deny ...`): an operator's verdict,
    and what its decision must be."""

    approve: bool
    ticket: TicketRef
    operator: str
    note: str | None
    expect: Expectation | None
    span: Span


@dataclass(frozen=True)
class TicketStep:
    """`ticket REF -> STATUS`: the ticket's status now (after any expiry)."""

    ticket: TicketRef
    status: str
    status_span: Span
    span: Span


Step = ActionStep | ResetStep | StateStep | AfterStep | GroupStep | VerdictStep | TicketStep


@dataclass(frozen=True)
class Scenario:
    name: str
    name_span: Span
    tags: tuple[str, ...]
    defaults: tuple[FieldValue, ...]
    steps: tuple[Step, ...]
    span: Span


@dataclass(frozen=True)
class CaseRow:
    values: tuple[Value, ...]
    expect: Expectation
    span: Span


@dataclass(frozen=True)
class Cases:
    name: str
    name_span: Span
    action: str
    action_span: Span
    action_quoted: bool
    tags: tuple[str, ...]
    agent: str
    defaults: tuple[FieldValue, ...]
    columns: tuple[tuple[str, Span], ...]
    rows: tuple[CaseRow, ...]
    span: Span


@dataclass(frozen=True)
class Property:
    name: str
    name_span: Span
    actions: tuple[tuple[str, Span, bool], ...]
    """(action, span, quoted) for each action the generated inputs use."""
    sequence: bool
    examples: int | None
    where: ast.Condition | None
    quantifier: str  # never | always
    target: Clause
    """A `decision` or `rule` clause."""
    tags: tuple[str, ...]
    span: Span


Item = Scenario | Cases | Property


@dataclass(frozen=True)
class Suite:
    name: str
    policy: str
    policy_span: Span
    defaults: tuple[FieldValue, ...]
    items: tuple[Item, ...]
    source: Source = field(repr=False)
    span: Span
