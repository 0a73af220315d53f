"""Coverage of a policy, not of lines: rules and table rows matched, and every row test seen
true and false. Decisions are recorded cheaply during the run and folded at the end."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sentra_runtime.decider import RATE_LIMIT_EXCEEDED, all_limits
from sentra_runtime.explain import describe_test
from sentra_runtime.windows import COUNTED, counting_fields

from sentra_lang.testing.policies import PolicyUnderTest


@dataclass
class TestOutcomes:
    text: str
    seen_true: bool = False
    seen_false: bool = False


@dataclass
class RowCoverage:
    block: int | None
    """Index of the action block; None for the `otherwise` row."""
    index: int
    names: list[str]
    rule: str
    hits: int = 0
    tests: list[TestOutcomes] = field(default_factory=list)


@dataclass
class RuleCoverage:
    id: str
    outcome: str
    file: str
    line: int
    column: int
    hits: int = 0
    tests: set[str] = field(default_factory=set)

    @property
    def covered(self) -> bool:
        return self.hits > 0


@dataclass
class LimitCoverage:
    """A rate limit: how many allowed decisions it counted, how many it blocked."""

    key: str
    limit: str
    """``5 per 1h``."""
    target: str
    """What it counts, as its reason names it (`` `REFUND_OK` ``)."""
    counted: int = 0
    reached: int = 0


class PolicyCoverage:
    """Collects decisions of one policy's engine; `finish()` computes the numbers."""

    def __init__(self, put: PolicyUnderTest, matcher: Any) -> None:
        assert put.policy is not None
        self.put = put
        self.policy = put.policy
        self.matcher = matcher
        self._samples: dict[Any, list[Any]] = {}
        self.rules: dict[str, RuleCoverage] = {}
        self.rows: list[RowCoverage] = []
        self.limits = {key: LimitCoverage(key, str(spec), spec.target)
                       for key, spec in all_limits(self.policy).items()}
        """Every rate limit of the policy, by its window's key, in table order."""
        self._finished = False

    def record(self, decision: Any, test: str) -> None:
        if self.limits:
            self.record_limits(decision)
        trace = decision.trace
        if trace is None or not trace.evaluated:
            return
        values = tuple(trace.values.values())
        key: tuple[Any, ...] = (trace.block, trace.matched_rule, trace.matched_row, values)
        try:
            sample = self._samples.get(key)
        except TypeError:
            key = (trace.block, trace.matched_rule, trace.matched_row, repr(values))
            sample = self._samples.get(key)
        if sample is None:
            self._samples[key] = [1, {test}, trace]
        else:
            sample[0] += 1
            sample[1].add(test)

    def record_limits(self, decision: Any) -> None:
        """An allowed decision (an operator's approval too) counts in the limits it counted
        in, as its audit record lists them; a decision over a limit reached it."""
        if decision.rule_id == RATE_LIMIT_EXCEEDED:
            reached = getattr(decision, "limit_key", None) or self._limit_named(decision)
            if reached is not None:
                self.limits[reached].reached += 1
        for key in counting_fields(decision.__dict__).get(COUNTED, ()):
            self.limits[key].counted += 1

    def _limit_named(self, decision: Any) -> str | None:
        """The key of the limit a decision over a limit names in its `limit` (an operator's
        approval is a plain decision, which carries that and not the key)."""
        over = decision.__dict__.get("limit") or {}
        return next((key for key, limit in self.limits.items()
                     if (limit.limit, limit.target) == (over.get("limit"), over.get("for"))),
                    None)

    @property
    def limits_reached(self) -> int:
        return sum(1 for limit in self.limits.values() if limit.reached)

    def finish(self) -> PolicyCoverage:
        if self._finished:
            return self
        self._finished = True
        folder = self.put.path.parent
        for rule in self.put.rules.values():
            self.rules[rule.id] = RuleCoverage(rule.id, rule.outcome,
                                               str(folder / rule.span.file),
                                               rule.span.line, rule.span.column)
        by_position: dict[tuple[int | None, int], RowCoverage] = {}
        for b, action in enumerate(self.policy.actions):
            for i, row in enumerate(action.rows):
                cov = RowCoverage(b, i, list(action.names), row.rule,
                                  tests=[TestOutcomes(describe_test(t)) for t in row.tests])
                self.rows.append(cov)
                by_position[(b, i)] = cov
        if self.policy.otherwise:
            cov = RowCoverage(None, 0, [], self.policy.otherwise)
            self.rows.append(cov)
            by_position[(None, 0)] = cov
        for count, tests, trace in self._samples.values():
            if trace.matched_rule is not None:
                covered = self.rules[trace.matched_rule]
                covered.hits += count
                covered.tests |= tests
                by_position[(trace.block if trace.matched_row is not None else None,
                             trace.matched_row or 0)].hits += count
                if trace.matched_row is None:
                    continue  # the `otherwise` row: its block's rows are not counted
            for row in trace.rows:
                outcomes = by_position[(trace.block, row.row)].tests
                for condition, seen in zip(row.conditions, outcomes):
                    if condition.holds is True:
                        seen.seen_true = True
                    elif condition.holds is False:   # None: undetermined, neither
                        seen.seen_false = True
        return self

    # -- numbers
    @property
    def rules_total(self) -> int:
        return len(self.rules)

    @property
    def rules_covered(self) -> int:
        return sum(1 for rule in self.rules.values() if rule.covered)

    @property
    def percent(self) -> float:
        return 100.0 * self.rules_covered / self.rules_total if self.rules_total else 100.0

    @property
    def rows_total(self) -> int:
        return len(self.rows)

    @property
    def rows_covered(self) -> int:
        return sum(1 for row in self.rows if row.hits)

    @property
    def conditions_total(self) -> int:
        return 2 * sum(len(row.tests) for row in self.rows)

    @property
    def conditions_covered(self) -> int:
        return sum(t.seen_true + t.seen_false for row in self.rows for t in row.tests)

    def uncovered_rules(self) -> list[RuleCoverage]:
        return [rule for rule in self.rules.values() if not rule.covered]
