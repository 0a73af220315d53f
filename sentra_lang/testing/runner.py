"""The scenario runner: discover suites, compile each policy once, run every test on fresh
in-memory state, compare each step with its expectations, and collect coverage."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sentra_runtime import Decision, Engine, Policy, VerifyResult, review, verify_records
from sentra_runtime.audit import Annotations
from sentra_runtime.decider import assignment, with_assignment
from sentra_runtime.stores import FRESH, AgentState, Decide, RawState

from sentra_lang.checker import duration_seconds
from sentra_lang.cli.extras import MissingExtra
from sentra_lang.diagnostics import Diagnostic, diagnostic, has_errors, sort_diagnostics
from sentra_lang.files import find_files, real_path
from sentra_lang.keywords import FIXED_TIME
from sentra_lang.loader import FileUnreadable
from sentra_lang.parser import read_source
from sentra_lang.source import Span
from sentra_lang.testing import SUFFIX, NothingToCheck
from sentra_lang.testing import suite_ast as s
from sentra_lang.testing.coverage import PolicyCoverage
from sentra_lang.testing.policies import PolicyCache, PolicyRefused, PolicyUnderTest
from sentra_lang.testing.suite_checker import check_suite
from sentra_lang.testing.suite_parser import parse_suite

OPERATOR = "sentra-lang test"
_DECISION_WORD = {outcome: word for word, outcome in s.DECISIONS.items()}
_ATTRIBUTE = {"rule": "rule_id", "reason": "reason", "reason_contains": "reason",
              "threat": "threat", "risk": "attempted_risk", "applied": "applied_risk",
              "projected": "projected_risk", "cumulative": "cumulative_risk",
              "strikes": "blocked_attempts", "decayed": "decayed", "status": "status",
              "group": "group"}
_STATE = {"cumulative": "cumulative_risk", "strikes": "blocked_attempts", "status": "status"}


class SelectionError(ValueError):
    """A bad `-k` expression."""


# ----------------------------------------------------------------------------- state store

class ScenarioStore:
    """The smallest store: a dict of agent states and one of review tickets, no audit log,
    cleared between tests."""

    def __init__(self) -> None:
        self.states: dict[str, RawState] = {}
        self.held: dict[str, review.Ticket] = {}

    def clear(self) -> None:
        self.states = {}
        self.held = {}

    def apply(self, decide: Decide, agent_id: str, action: str, fields: Any, code: int,
              payload: Any, now: float | None = None, *,
              annotations: Annotations | None = None) -> Decision:
        # no audit log, so annotations (which only go into audit records) are dropped
        now = 0.0 if now is None else now
        decision, self.states[agent_id] = decide(self.states.get(agent_id, FRESH), agent_id,
                                                 action, fields, code, payload, None, now)
        if decision.ticket is not None:
            self.held[decision.ticket] = review.held(decision, now, None)
        return decision

    def reset(self, agent_id: str | None, operator: str, policy_hash: str | None, *,
              now: float | None = None) -> list[str]:
        agents = sorted(self.states) if agent_id is None else [agent_id]
        for agent in agents:
            self.states[agent] = with_assignment(FRESH, assignment(self.states.get(agent, FRESH)))
        for ticket in self.tickets(review.PENDING, agent_id):
            self.held[ticket.ticket] = review.cancellation(ticket, now or 0.0, operator).ticket
        return agents

    def assign_group(self, agent_id: str, group: str | None, operator: str,
                     policy_hash: str | None, *, now: float | None = None) -> None:
        self.states[agent_id] = with_assignment(self.states.get(agent_id, FRESH), group)

    def ticket(self, ticket_id: str) -> review.Ticket | None:
        return self.held.get(ticket_id)

    def tickets(self, status: str | None = None,
                agent_id: str | None = None) -> list[review.Ticket]:
        return [ticket for ticket in self.held.values()
                if status in (None, ticket.status) and agent_id in (None, ticket.agent_id)]

    def settle(self, ticket_id: str, step: review.Step,
               now: float) -> tuple[review.Ticket, Decision | None]:
        ticket = self.held[ticket_id]
        settlement = step(ticket, self.states.get(ticket.agent_id, FRESH), None)
        if settlement is None:
            return ticket, None
        self.held[ticket_id] = settlement.ticket
        if settlement.state is not None:
            self.states[ticket.agent_id] = settlement.state  # type: ignore[assignment]
        return settlement.ticket, settlement.decision

    def state(self, agent_id: str) -> AgentState:
        return AgentState.from_raw(self.states.get(agent_id, FRESH))

    def raw_state(self, agent_id: str) -> RawState:
        return self.states.get(agent_id, FRESH)

    def agents(self) -> list[str]:
        return sorted(self.states)

    def record_policy_load(self, policy: Policy, *, now: float | None = None) -> None:
        pass

    def audit_records(self) -> Iterator[dict[str, Any]]:
        return iter(())

    def read_records(self, after_seq: int = 0, limit: int = 100, *, agent: str | None = None,
                     label: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        return []

    def last_seq(self) -> int:
        return 0

    def verify_audit(self, *, expected_head: str | None = None) -> VerifyResult:
        return verify_records((), expected_head=expected_head)

    def export_audit(self, out: IO[str]) -> int:
        return 0

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------------------- model

@dataclass
class LoadedSuite:
    path: Path
    display: str
    suite: s.Suite | None
    policy: PolicyUnderTest | None
    runnable: bool


@dataclass
class TestItem:
    name: str
    kind: str  # scenario | case | property
    tags: tuple[str, ...]
    span: Span
    loaded: LoadedSuite
    node: Any
    row: int = 0

    @property
    def file(self) -> str:
        return self.loaded.display

    @property
    def line(self) -> int:
        return self.span.line

    @property
    def nodeid(self) -> str:
        return f"{self.file}::{self.name}"


@dataclass
class Mismatch:
    kind: str
    expected: Any
    actual: Any
    span: Span


@dataclass
class Failure:
    message: str
    span: Span
    """The step (or property) that failed."""
    step: int | None = None
    mismatches: list[Mismatch] = field(default_factory=list)
    decision: Any = None
    details: list[str] = field(default_factory=list)


@dataclass
class Result:
    item: TestItem
    outcome: str  # passed | failed | error
    duration: float
    steps: int
    failure: Failure | None = None
    method: str | None = None
    """For a property: `proved` (checked on every cell) or `sampled`."""


@dataclass
class RunResult:
    suites: list[LoadedSuite]
    diagnostics: list[Diagnostic]
    results: list[Result]
    coverage: list[PolicyCoverage]
    collected: int
    deselected: int
    duration: float
    min_coverage: float | None = None

    @property
    def passed(self) -> int:
        return sum(1 for r in self.results if r.outcome == "passed")

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results if r.outcome != "passed")

    @property
    def collection_errors(self) -> bool:
        return has_errors(self.diagnostics)

    @property
    def coverage_ok(self) -> bool:
        if self.min_coverage is None:
            return True
        return all(cov.percent + 1e-9 >= self.min_coverage for cov in self.coverage)

    @property
    def exit_code(self) -> int:
        if self.collection_errors:
            return 2
        if not self.results:
            return 5
        if self.failed or not self.coverage_ok:
            return 1
        return 0


# ------------------------------------------------------------------------------ discovery

def discover(paths: Iterable[str | Path]) -> list[Path]:
    """Suite files: files as given, folders searched recursively for `*.sentra-test`."""
    return find_files(paths, SUFFIX)


def load_suite(path: Path, cache: PolicyCache) -> tuple[LoadedSuite, list[Diagnostic]]:
    """Read, parse and check a suite file, and compile its policy (cached).

    Raises FileUnreadable when the suite file cannot be read at all.
    """
    try:
        source, diagnostics = read_source(path)
    except OSError as error:
        raise FileUnreadable(f"cannot read `{path}`: {error.strerror or error}") from error
    if diagnostics:
        return LoadedSuite(path, str(path), None, None, False), diagnostics
    return collect_suite(source.text, path, cache.get)


def collect_suite(text: str, path: Path, policy_of: Callable[[Path], PolicyUnderTest],
                  display: str | None = None) -> tuple[LoadedSuite, list[Diagnostic]]:
    """Parse and check the text of the suite file `path` (as read, or as an editor holds it),
    with its policy from `policy_of` (which raises FileUnreadable): what `sentra-lang test`
    reports when it collects the suite. `display` names the file in diagnostics."""
    display = str(path) if display is None else display
    suite, diagnostics = parse_suite(text, display)
    loaded = LoadedSuite(path, display, suite, None, False)
    if suite is None or has_errors(diagnostics):
        return loaded, diagnostics
    policy_path = path.parent / suite.policy
    try:
        put = policy_of(policy_path)
    except PolicyRefused as refused:
        diagnostics.append(diagnostic("SL501", f"policy `{suite.policy}` refused: {refused}",
                                      suite.policy_span,
                                      help="a suite names the `.sentra` file of its policy"))
        return loaded, diagnostics
    except FileUnreadable:
        diagnostics.append(diagnostic("SL501", f"cannot read policy `{suite.policy}`",
                                      suite.policy_span,
                                      help=f"the path is relative to the suite: {policy_path}"))
        return loaded, diagnostics
    if not put.ok:
        diagnostics.append(diagnostic("SL501", f"policy `{suite.policy}` has errors",
                                      suite.policy_span))
        diagnostics.extend(d for d in put.compilation.diagnostics if d.severity.value == "error")
        return loaded, diagnostics
    loaded.policy = put
    diagnostics.extend(check_suite(suite, put))
    loaded.runnable = not has_errors(diagnostics)
    return loaded, diagnostics


def items_of(loaded: LoadedSuite) -> list[TestItem]:
    suite = loaded.suite
    assert suite is not None
    items: list[TestItem] = []
    for node in suite.items:
        if isinstance(node, s.Scenario):
            items.append(TestItem(node.name, "scenario", node.tags, node.name_span, loaded, node))
        elif isinstance(node, s.Cases):
            for index, row in enumerate(node.rows, 1):
                items.append(TestItem(f"{node.name}[{index}]", "case", node.tags, row.span,
                                      loaded, node, index))
        else:
            items.append(TestItem(node.name, "property", node.tags, node.name_span, loaded,
                                  node))
    return items


# ------------------------------------------------------------------------------ selection

_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")
MAX_KEYWORD_NESTING = 100
"""The deepest `-k` nests `not` and parentheses."""


def keyword_matcher(expression: str) -> Callable[[TestItem], bool]:
    """`-k`: words match (case-insensitively) as substrings of the test name, its file name
    or a tag; combine with `and`, `or`, `not` and parentheses, as in pytest."""
    tokens = [m.group(1) for m in _TOKEN.finditer(expression)]
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        if position >= len(tokens):
            raise SelectionError(f"-k {expression!r}: unexpected end of expression")
        position += 1
        return tokens[position - 1]

    def parse_or(depth: int) -> Callable[[str], bool]:
        parts = [parse_and(depth)]
        while peek() == "or":
            take()
            parts.append(parse_and(depth))
        return parts[0] if len(parts) == 1 else lambda text: any(p(text) for p in parts)

    def parse_and(depth: int) -> Callable[[str], bool]:
        parts = [parse_not(depth)]
        while peek() == "and":
            take()
            parts.append(parse_not(depth))
        return parts[0] if len(parts) == 1 else lambda text: all(p(text) for p in parts)

    def parse_not(depth: int) -> Callable[[str], bool]:
        if depth > MAX_KEYWORD_NESTING:
            raise SelectionError(f"-k: nested more than {MAX_KEYWORD_NESTING} levels deep")
        if peek() == "not":
            take()
            inner = parse_not(depth + 1)
            return lambda text: not inner(text)
        token = take()
        if token == "(":
            inner = parse_or(depth + 1)
            if take() != ")":
                raise SelectionError(f"-k {expression!r}: expected `)`")
            return inner
        if token in (")", "and", "or"):
            raise SelectionError(f"-k {expression!r}: unexpected `{token}`")
        word = token.lower()
        return lambda text: word in text

    if not tokens:
        return lambda item: True
    predicate = parse_or(0)
    if position != len(tokens):
        raise SelectionError(f"-k {expression!r}: unexpected `{tokens[position]}`")

    def matches(item: TestItem) -> bool:
        text = "\n".join([item.name, Path(item.file).name, *item.tags]).lower()
        return predicate(text)

    return matches


# -------------------------------------------------------------------------------- running

SUITE_START = FIXED_TIME
"""Where every scenario's clock starts: the tools' fixed time (2024-01-01T00:00:00Z). It moves
only with `after`, so a suite decides the same whenever it runs."""


class SuiteClock:
    """A scenario's clock: :data:`SUITE_START`, moved by `after` steps."""

    def __init__(self) -> None:
        self.now = SUITE_START

    def __call__(self) -> float:
        return self.now


class _PolicyRun:
    def __init__(self, put: PolicyUnderTest) -> None:
        assert put.policy is not None
        self.store = ScenarioStore()
        self.clock = SuiteClock()
        self.engine = Engine(put.policy, self.store, clock=self.clock)
        self.coverage = PolicyCoverage(put, self.engine.matcher)


def _merge(*maps: Iterable[s.FieldValue]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for values in maps:
        for fv in values:
            if fv.value.omitted:
                fields.pop(fv.path, None)
            else:
                fields[fv.path] = fv.value.value
    return fields


def compare(expect: s.Expectation, actual: Any, attributes: dict[str, str]) -> list[Mismatch]:
    mismatches = []
    for clause in expect.clauses:
        if clause.kind == "ticket":   # `as NAME` names the ticket; nothing to compare
            continue
        if clause.kind == "decision":
            got = _DECISION_WORD[actual.outcome]
            if got != clause.value:
                mismatches.append(Mismatch("decision", clause.value, got, clause.span))
            continue
        value = getattr(actual, attributes[clause.kind])
        ok = clause.value in value if clause.kind == "reason_contains" else value == clause.value
        if not ok:
            mismatches.append(Mismatch(clause.kind, clause.value, value, clause.span))
    return mismatches


class Runner:
    def __init__(self, *, keyword: str | None = None, tags: Iterable[str] = (),
                 exitfirst: bool = False, examples: int | None = None,
                 progress: Callable[[int, int, TestItem], None] | None = None,
                 root: Path | None = None) -> None:
        self.select = keyword_matcher(keyword) if keyword else (lambda item: True)
        self.tags = set(tags)
        self.exitfirst = exitfirst
        self.examples = examples
        self.progress = progress
        self.cache = PolicyCache(root)
        self._runs: dict[Path, _PolicyRun] = {}

    def collect(self, files: list[Path]) -> tuple[list[LoadedSuite], list[Diagnostic],
                                                  list[TestItem], int]:
        suites, diagnostics, items = [], [], []
        collected = 0
        for path in files:
            loaded, found = load_suite(path, self.cache)
            suites.append(loaded)
            diagnostics.extend(found)
            if loaded.runnable:
                for item in items_of(loaded):
                    collected += 1
                    if self.select(item) and (not self.tags or self.tags & set(item.tags)):
                        items.append(item)
        return suites, sort_diagnostics(diagnostics), items, collected

    def run_paths(self, paths: Iterable[str | Path], *,
                  min_coverage: float | None = None) -> RunResult:
        start = time.perf_counter()
        suites, diagnostics, items, collected = self.collect(discover(paths))
        results = []
        for index, item in enumerate(items):
            if self.progress is not None:
                self.progress(index, len(items), item)
            result = self.run_item(item)
            results.append(result)
            if self.exitfirst and result.outcome != "passed":
                break
        coverage = [run.coverage.finish() for run in self._runs.values()]
        return RunResult(suites, diagnostics, results, coverage, collected,
                         collected - len(items), time.perf_counter() - start, min_coverage)

    def policy_run(self, put: PolicyUnderTest) -> _PolicyRun:
        key = real_path(put.path)
        run = self._runs.get(key)
        if run is None:
            run = self._runs[key] = _PolicyRun(put)
        return run

    def run_item(self, item: TestItem) -> Result:
        assert item.loaded.policy is not None
        run = self.policy_run(item.loaded.policy)
        run.store.clear()
        run.clock.now = SUITE_START
        start = time.perf_counter()
        method = None
        try:
            if item.kind == "property":
                steps, failure, method = self._property(item, run)
            else:
                steps, failure = self._steps(item, run)
            outcome = "passed" if failure is None else "failed"
        except (MissingExtra, NothingToCheck) as error:
            steps, outcome = 0, "error"
            failure = Failure(str(error), item.span)
        except Exception as error:  # a crash in the engine or the runner: report, keep going
            steps, outcome = 0, "error"
            failure = Failure(f"{type(error).__name__}: {error}", item.span)
        return Result(item, outcome, time.perf_counter() - start, steps, failure, method)

    def _plan(self, item: TestItem) -> list[tuple[s.Step, dict[str, Any] | None]]:
        plan = getattr(item, "_plan", None)
        if plan is not None:
            return plan  # type: ignore[no-any-return]
        suite = item.loaded.suite
        assert suite is not None
        node = item.node
        if isinstance(node, s.Cases):
            row = node.rows[item.row - 1]
            fields = _merge(suite.defaults, node.defaults)
            for (column, _), value in zip(node.columns, row.values):
                if value.omitted:
                    fields.pop(column, None)
                else:
                    fields[column] = value.value
            step = s.ActionStep(node.agent, node.action, node.action_span, node.action_quoted,
                                (), row.expect, row.span)
            plan = [(step, fields)]
        else:
            base = (suite.defaults, node.defaults)
            plan = [(step, _merge(*base, step.fields) if isinstance(step, s.ActionStep)
                     else None) for step in node.steps]
        item._plan = plan  # type: ignore[attr-defined]
        return plan

    def _steps(self, item: TestItem, run: _PolicyRun) -> tuple[int, Failure | None]:
        engine = run.engine
        record = run.coverage.record
        name = item.name
        tickets = _Tickets()
        for number, (step, fields) in enumerate(self._plan(item), 1):
            if isinstance(step, s.ActionStep):
                decision = engine.evaluate(step.agent, step.action, fields)
                record(decision, name)
                tickets.made(step, decision)
                mismatches = compare(step.expect, decision, _ATTRIBUTE)
                if mismatches:
                    return number, Failure(f"step {number}: " + _summary(mismatches),
                                           step.span, number, mismatches, decision)
            elif isinstance(step, s.ResetStep):
                engine.reset(step.agent, operator=OPERATOR)
            elif isinstance(step, s.AfterStep):
                run.clock.now += duration_seconds(step.duration)   # checked: the suite runs
            elif isinstance(step, s.GroupStep):
                engine.assign_group(step.agent, step.group, operator=OPERATOR)
            elif isinstance(step, (s.VerdictStep, s.TicketStep)):
                failure = _ticket_step(engine, step, tickets.find(step.ticket), number,
                                       run.coverage)
                if failure is not None:
                    return number, failure
            else:
                state = engine.state(step.agent)
                mismatches = compare(step.expect, state, _STATE)
                if mismatches:
                    return number, Failure(f"step {number}: " + _summary(mismatches),
                                           step.span, number, mismatches)
        return len(self._plan(item)), None

    def _property(self, item: TestItem, run: _PolicyRun) -> tuple[int, Failure | None, str]:
        put = item.loaded.policy
        assert put is not None
        prop: s.Property = item.node
        record = run.coverage.record
        engine = run.engine
        name = item.name

        def evaluate(agent: str, action: str, fields: dict[str, Any]) -> Any:
            decision = engine.evaluate(agent, action, fields)
            record(decision, name)
            return decision

        def agent_record(agent: str) -> Hashable:
            state = engine.state(agent)
            return (state.cumulative_risk, state.blocked_attempts, state.status,
                    tuple(limit["count"] for limit in engine.limits(agent)))

        # the analysis, on first use
        from sentra_lang.testing.properties import Agents, run_property

        def fresh(agent: str) -> None:
            engine.reset(agent, operator=OPERATOR)

        def assign(agent: str, group: str) -> None:
            engine.assign_group(agent, group, operator=OPERATOR)

        agents = Agents(evaluate, fresh, assign, agent_record)
        outcome = run_property(prop, put, agents, examples=self.examples)
        falsified = outcome.falsified
        if falsified is None:
            return outcome.examples, None, outcome.method
        decision = falsified.decision
        word = _DECISION_WORD[decision.outcome]
        target = prop.target.value if prop.target.kind == "decision" else \
            f"rule {prop.target.value}"
        message = (f"{prop.quantifier} {target}: falsified after {len(falsified.steps)} "
                   f"step{'s' if len(falsified.steps) != 1 else ''} ({word}, "
                   f"{decision.rule_id})")
        details = ["falsifying example (shrunk):" if outcome.method == "sampled"
                   else "counterexample (found checking every cell):"]
        if falsified.agent is not None and put.table.get("groups"):
            details.append(f"  {falsified.agent.describe()}")
        for action, fields in falsified.steps:
            rendered = ", ".join(f"{k}: {_render(v)}" for k, v in sorted(fields.items()))
            details.append(f"  {action} {{{rendered}}}")
        mismatch = Mismatch(prop.target.kind if prop.target.kind == "rule" else "decision",
                            f"{prop.quantifier} {prop.target.value}",
                            decision.rule_id if prop.target.kind == "rule" else word,
                            prop.target.span)
        return (outcome.examples, Failure(message, prop.span, None, [mismatch], decision, details),
                outcome.method)


class _Tickets:
    """The review tickets a scenario made: each agent's newest, and those named `as NAME`."""

    def __init__(self) -> None:
        self.last: dict[str, str] = {}
        self.named: dict[str, str] = {}

    def made(self, step: s.ActionStep, decision: Decision) -> None:
        if decision.ticket is None:
            return
        self.last[step.agent] = decision.ticket
        capture = step.expect.get("ticket")
        if capture is not None:
            self.named[capture.value] = decision.ticket

    def find(self, ref: s.TicketRef) -> str | None:
        if ref.name is not None:
            return self.named.get(ref.name)
        return self.last.get(ref.agent or "")


def _ticket_step(engine: Engine, step: s.VerdictStep | s.TicketStep, ticket: str | None,
                 number: int, coverage: PolicyCoverage) -> Failure | None:
    """Run a verdict or check a ticket's status; the failure, if the step does not hold. A
    verdict's decision counts in the coverage of limits (its review rule was covered when
    it held the action)."""
    if ticket is None:
        return Failure(f"step {number}: no review ticket: {step.ticket} (no `review` decision "
                       "made one before this step)", step.span, number)
    if isinstance(step, s.TicketStep):
        status = engine.ticket(ticket).status
        if status == step.status:
            return None
        mismatch = Mismatch("ticket", step.status, status, step.status_span)
        return Failure(f"step {number}: " + _summary([mismatch]), step.span, number, [mismatch])
    try:
        decision = engine.review(ticket, step.approve, operator=step.operator, note=step.note)
    except review.TicketClosed as closed:
        return Failure(f"step {number}: {step.ticket} is {closed.ticket.status}, not pending",
                       step.span, number)
    if coverage.limits:
        coverage.record_limits(decision)
    if step.expect is None:
        return None
    mismatches = compare(step.expect, decision, _ATTRIBUTE)
    if mismatches:
        return Failure(f"step {number}: " + _summary(mismatches), step.span, number, mismatches,
                       decision)
    return None


def _render(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


def _summary(mismatches: list[Mismatch]) -> str:
    return "; ".join(f"expected {m.kind} {_render(m.expected)}, got {_render(m.actual)}"
                     for m in mismatches)
