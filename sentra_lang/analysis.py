"""Exact static analysis of a compiled table, without a solver.

Each action's input space is split into finitely many cells (`sentra_lang.space`), and the
action's rows are evaluated first-match over all cells at once (`sentra_lang.regions`). That
answers exactly, for the runtime's semantics on a fresh agent, which rules never match (SL402),
never decide because earlier rules take every input they match (SL401), match every input
(SL403), decide inputs a later rule with another outcome also matches (SL404), and which
inputs no rule covers (SL405). Every finding carries a witness: a complete input that, given
to the runtime as it is, lands where the finding says. When a space is too large to cover
exactly the action gets SL406 instead of findings. Arithmetic tests are first rewritten as
thresholds where that is exact (`sentra_lang.arithmetic.exact_view`); an action with one left
gets SL408 instead of findings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sentra_lang.agent_state import state_view
from sentra_lang.arithmetic import computed_rule, exact_view
from sentra_lang.checker import BlockInfo, Model, RuleInfo, first_line
from sentra_lang.diagnostics import Diagnostic, Related, diagnostic
from sentra_lang.regions import MAX_PAIRS, Outcome, Row, RowIndex, TooManyPieces, engine_for
from sentra_lang.space import Space, SpaceTooLarge, build_space
from sentra_lang.table import Table

SUMMARY_AFTER = 3
"""A rule that out-decides more later rules than this gets one summary note (SL404)."""
SHOWN_IN_SUMMARY = 3

@dataclass(frozen=True)
class AnalysisOptions:
    """How `check` runs the analysis."""

    all_witnesses: bool = False
    """Every pair of overlapping rules, one SL404 note (with its witness) each, never a summary.
    By default each later rule is paired with one earlier rule it overlaps."""
    progress: Callable[[str], None] | None = None
    """Called now and then with a line saying how far a long analysis has come."""
    progress_after: float = 0.5
    """Seconds an action's analysis runs before it reports progress."""


def analyse(table: Table, model: Model, options: AnalysisOptions | None = None) -> list[Diagnostic]:
    options = options or AnalysisOptions()
    findings: list[Diagnostic] = []
    blocks = [b for b in model.blocks if b.names]
    table, ids = state_view(exact_view(table))
    for number, (info, block) in enumerate(zip(blocks, table.actions), start=1):
        computed = computed_rule(block.rows)
        if computed is not None:
            findings.append(not_exact(", ".join(info.names), computed, info.span))
            continue
        reporter = _progress(options, info, number, len(blocks))
        findings.extend(_analyse_block(table, model, info, block.rows, options, reporter, ids))
    return findings


def _progress(options: AnalysisOptions, info: BlockInfo, number: int,
              blocks: int) -> Callable[[int, int], None] | None:
    if options.progress is None:
        return None
    say = options.progress
    action = ", ".join(info.names)
    started = time.monotonic()

    def report(done: int, total: int) -> None:
        if time.monotonic() - started >= options.progress_after:
            say(f"analysing `{action}` (action {number} of {blocks}): row {done:,} of {total:,}")

    return report


def action_rows(space: Space, rules: Sequence[RuleInfo], rows: Sequence[Any],
                version: int = 0) -> list[Row]:
    """The block's rows as (rule index, box), in order."""
    index = {rule.id: number for number, rule in enumerate(rules)}
    return [(index[row.rule], space.row_box(version, row.tests)) for row in rows]


def _analyse_block(table: Table, model: Model, info: BlockInfo, rows: list[Any],
                   options: AnalysisOptions,
                   progress: Callable[[int, int], None] | None,
                   agent_ids: dict[str, str] | None = None) -> list[Diagnostic]:
    action = ", ".join(info.names)
    tests = [(0, t) for row in rows for t in row.tests]
    try:
        space = build_space([table.input], tests)
        space.agent_ids = agent_ids
        boxes = action_rows(space, info.rules, rows)
        signatures = [(r.outcome, r.risk) if r.when is not None else None for r in info.rules]
        outcome = engine_for(space, boxes).first_match(boxes, signatures, progress,
                                                       all_pairs=options.all_witnesses)
    except (SpaceTooLarge, TooManyPieces) as error:
        reason = str(error) or "its cells split into too many pieces"
        return [diagnostic("SL406", f"analysis of `{action}` skipped: {reason}", info.span,
                           help="split the action, or compare fields with fewer constants")]
    return _Report(space, info, boxes, outcome, model, options).diagnostics(action)


def not_exact(action: str, rule: str, span: Any) -> Diagnostic:
    """SL408: the action compares computed values the analysis cannot rewrite exactly."""
    return diagnostic("SL408", f"analysis of `{action}` is not exact: rule `{rule}` compares "
                      "computed values", span,
                      help="the runtime decides it as written; the analysis rewrites only one "
                           "`int` field with `int` constants and `+ - *` exactly")


class _Report:
    def __init__(self, space: Space, info: BlockInfo, rows: list[Row], outcome: Outcome,
                 model: Model, options: AnalysisOptions) -> None:
        self.space = space
        self.info = info
        self.rows = rows
        self.outcome = outcome
        self.model = model
        self.options = options
        self._index: RowIndex | None = None

    def rule(self, label: int) -> RuleInfo:
        return self.info.rules[label]

    def decider(self, cell: tuple[int, ...]) -> RuleInfo:
        if self._index is None:
            self._index = RowIndex(self.space, self.rows)
        row = self._index.first(cell)
        assert row is not None, "a matched cell is decided by some row"
        return self.rule(self.rows[row][0])

    def diagnostics(self, action: str) -> list[Diagnostic]:
        out: list[Diagnostic] = []
        for label, rule in enumerate(self.info.rules):
            out.extend(self._rule_findings(label, rule))
        out.extend(self._overlaps())
        if self.outcome.pairs_cut:
            out.append(diagnostic(
                "SL407", f"more than {MAX_PAIRS:,} pairs of rules of `{action}` overlap; the "
                "first are listed", self.info.span,
                help="without --all-witnesses every overlapping rule gets one note"))
        gap = self.outcome.gap
        if gap is not None:
            fallback = (f"the `otherwise` rule `{self.model.otherwise.id}`" if self.model.otherwise
                        else "a fail-closed block")
            out.append(diagnostic("SL405", f"some inputs of `{action}` match no rule and fall to "
                                  f"{fallback}", self.info.span, witness=self.space.witness(gap)))
        return out

    def _rule_findings(self, label: int, rule: RuleInfo) -> list[Diagnostic]:
        outcome = self.outcome
        head = first_line(rule.span)
        matched = outcome.matched.get(label)
        if matched is None:
            if rule.when is None:
                return []
            return [diagnostic("SL402", f"rule `{rule.id}` never matches: no input satisfies "
                               "its condition", rule.when.span)]
        found: list[Diagnostic] = []
        if label not in outcome.decided:
            winner = self.decider(matched)
            found.append(diagnostic(
                "SL401", f"rule `{rule.id}` is shadowed: every input it matches is decided "
                "earlier", head, witness=self.space.witness(matched),
                related=[Related(first_line(winner.span), f"`{winner.id}` decides the witness")],
                help="move the rule above the rules that shadow it, or remove it"))
        elif rule.when is not None and label in outcome.always:
            found.append(diagnostic("SL403", f"the condition of `{rule.id}` is always true",
                                    rule.when.span, help="drop the `when`, or fix the condition"))
        return found

    def _overlaps(self) -> list[Diagnostic]:
        by_winner: dict[int, list[tuple[int, Any]]] = {}
        for (first, second), found in self.outcome.pairs.items():
            by_winner.setdefault(first, []).append((second, found))  # found in rule order
        out: list[Diagnostic] = []
        for first in sorted(by_winner):
            others = by_winner[first]
            if self.options.all_witnesses or len(others) <= SUMMARY_AFTER:
                out.extend(self._pair(first, second, cell) for second, cell in others)
            else:
                out.append(self._summary(first, others))
        return out

    def _pair(self, first: int, second: int, found: Any) -> Diagnostic:
        a, b = self.rule(first), self.rule(second)
        return diagnostic(
            "SL404", f"`{a.id}` and `{b.id}` overlap and decide differently; `{a.id}` wins",
            first_line(b.span), witness=self.space.witness(self.outcome.cell(found)),
            related=[Related(first_line(a.span), f"`{a.id}` matches the witness first")])

    def _summary(self, first: int, others: list[tuple[int, Any]]) -> Diagnostic:
        a = self.rule(first)
        shown = [self.rule(second) for second, _ in others[:SHOWN_IN_SUMMARY]]
        names = ", ".join(f"`{rule.id}`" for rule in shown)
        last = self.rule(others[-1][0])
        more = len(others) - len(shown)
        tail = f" … `{last.id}`" if more else ""
        return diagnostic(
            "SL404", f"`{a.id}` decides inputs that {len(others):,} later rules also match and "
            f"decide differently: {names}{tail}",
            first_line(a.span), witness=self.space.witness(self.outcome.cell(others[0][1])),
            related=[Related(first_line(rule.span), f"`{rule.id}` overlaps `{a.id}`")
                     for rule in shown],
            help=f"the witness is for `{shown[0].id}`; `check --notes --all-witnesses` gives one "
                 "note and witness per pair")


__all__ = ["AnalysisOptions", "analyse", "action_rows", "not_exact"]
