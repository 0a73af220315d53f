"""What the reference shows, gathered from compiled policies and an optional test report.

`PolicyDoc` holds one policy's page data in plain, template-friendly form; the templates
never reach into the checker or the table models themselves.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentra_runtime import jsontext

from sentra_lang.checker import LetInfo, Model
from sentra_lang.compiler import Compilation, compile_file
from sentra_lang.diagnostics import Diagnostic, Severity, format_witness
from sentra_lang.table import InputField, Rule, Table

_SEVERITY_WORDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


class CoverageError(ValueError):
    """The coverage report cannot be read or does not have the expected shape."""


@dataclass(frozen=True)
class Coverage:
    """Which scenarios cover each rule, read from `sentra-lang test --json`.

    `rules` maps a rule id to scenario names over every policy the run tested;
    `policies` does the same per policy, keyed by table hash and by policy name. A policy's
    own entry is preferred (hash first, so a report of an older version of a policy is not
    matched by name alone when a hash matches elsewhere); a rule absent from the report is
    uncovered.
    """

    rules: dict[str, list[str]] = field(default_factory=dict)
    policies: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def scenarios(self, table: Table, rule_id: str) -> list[str]:
        rules = self.policies.get(table.hash) or self.policies.get(table.policy.name) or self.rules
        return rules.get(rule_id, [])


def _rule_scenarios(rules: Any, where: str) -> dict[str, list[str]]:
    if not isinstance(rules, dict):
        raise CoverageError(f"{where} is not an object of rule ids")
    found: dict[str, list[str]] = {}
    for rule_id, entry in rules.items():
        scenarios = entry.get("scenarios", []) if isinstance(entry, dict) else None
        if not isinstance(scenarios, list) or not all(isinstance(s, str) for s in scenarios):
            raise CoverageError(f"{where}.{rule_id}.scenarios is not a list of names")
        found[str(rule_id)] = list(dict.fromkeys(scenarios))
    return found


def _per_policy(entries: Any) -> dict[str, dict[str, list[str]]]:
    if not isinstance(entries, list):
        raise CoverageError("coverage.policies is not a list")
    found: dict[str, dict[str, list[str]]] = {}
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise CoverageError(f"coverage.policies[{number}] is not an object")
        rules = _rule_scenarios(entry.get("rules", {}), f"coverage.policies[{number}].rules")
        for key in (entry.get("name"), entry.get("hash")):
            if isinstance(key, str):
                found.setdefault(key, rules)
    return found


def load_coverage(path: str | Path) -> Coverage:
    """Read the `coverage` object of a `sentra-lang test --json` report (docs/testing.md)."""
    try:
        data = jsontext.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, jsontext.JSONTextError) as error:
        raise CoverageError(f"cannot read coverage report {path}: {error}") from None
    coverage = data.get("coverage") if isinstance(data, dict) else None
    if not isinstance(coverage, dict):
        raise CoverageError(f"{path} has no `coverage` object (is it `sentra-lang test --json`?)")
    return Coverage(_rule_scenarios(coverage.get("rules", {}), "coverage.rules"),
                    _per_policy(coverage.get("policies", [])))


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str
    message: str
    line: int | None
    rule: str | None
    witness: str | None


@dataclass(frozen=True)
class NamedDefinition:
    name: str
    kind: str  # "set" | "condition"
    text: str
    file: str
    line: int | None  # in the policy's own file; None when it comes from an import


@dataclass(frozen=True)
class RuleRow:
    """One rule as a decision-table row."""

    rule: Rule
    position: int
    scenarios: list[str] | None  # None: no coverage report

    @property
    def covered(self) -> bool:
        return bool(self.scenarios)


@dataclass(frozen=True)
class ActionDoc:
    names: list[str]
    rows: list[RuleRow]
    falls_through: bool  # inputs can match no rule and reach `otherwise`

    @property
    def anchor(self) -> str:
        return "action-" + slugify(self.names[0])


@dataclass
class PolicyDoc:
    """One policy's page data."""

    slug: str
    path: str
    table: Table
    source: str
    inputs: list[InputField]
    definitions: list[NamedDefinition]
    actions: list[ActionDoc]
    otherwise: RuleRow | None
    findings: list[Finding]
    diagnostics: list[Diagnostic]
    has_coverage: bool

    @property
    def rule_count(self) -> int:
        return len(self.table.rules)

    @property
    def reviews(self) -> bool:
        """Whether a rule holds actions for an operator (`review`)."""
        return any(rule.outcome == "review" for rule in self.table.rules)

    @property
    def action_count(self) -> int:
        return sum(len(action.names) for action in self.actions)

    @property
    def rows(self) -> list[RuleRow]:
        return [row for action in self.actions for row in action.rows] + (
            [self.otherwise] if self.otherwise else [])

    @property
    def uncovered(self) -> list[RuleRow]:
        return [row for row in self.rows if not row.covered] if self.has_coverage else []

    @property
    def status(self) -> str:
        """`clean`, or the counts of warnings and notes."""
        counts = {word: 0 for word in ("warning", "note")}
        for diag in self.diagnostics:
            word = _SEVERITY_WORDS[diag.severity]
            counts[word] = counts.get(word, 0) + 1
        parts = [f"{n} {word}{'s' if n != 1 else ''}" for word, n in counts.items() if n]
        return ", ".join(parts) if parts else "clean"


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9_]+", "-", text.lower()).strip("-")
    return slug or "policy"


def _definitions(model: Model) -> list[NamedDefinition]:
    def one(info: LetInfo) -> NamedDefinition:
        span = info.decl.span
        return NamedDefinition(info.name, "set" if info.is_set else "condition",
                               span.text, span.path, span.line if info.main else None)
    return [one(info) for info in model.lets.values()]


def _finding(diag: Diagnostic, rules_by_line: dict[int, str]) -> Finding:
    line = diag.span.line if diag.span.line > 0 else None
    return Finding(diag.code, _SEVERITY_WORDS[diag.severity], diag.message, line,
                   rules_by_line.get(line or -1),
                   format_witness(diag.witness) if diag.witness is not None else None)


def policy_doc(compilation: Compilation, slug: str, coverage: Coverage | None) -> PolicyDoc:
    """Page data of a compiled policy (the compilation must have a table)."""
    table, model = compilation.table, compilation.model
    if table is None or model is None:
        raise ValueError(f"{compilation.program.main.display} did not compile to a table")
    rules = {rule.id: rule for rule in table.rules}
    position = 0

    def row(rule_id: str) -> RuleRow:
        nonlocal position
        position += 1
        scenarios = coverage.scenarios(table, rule_id) if coverage is not None else None
        return RuleRow(rules[rule_id], position, scenarios)

    actions = []
    for block in (b for b in model.blocks if b.names):
        position = 0
        actions.append(ActionDoc(block.names, [row(rule.id) for rule in block.rules],
                                 falls_through=not block.rules or block.rules[-1].when is not None))
    position = 0
    otherwise = row(table.otherwise) if table.otherwise else None
    rules_by_line = {rule.span.line: rule.id for rule in table.rules}
    diagnostics = compilation.sorted_diagnostics()
    findings = [_finding(d, rules_by_line) for d in diagnostics]
    return PolicyDoc(
        slug=slug, path=_shown_path(compilation.program.main.display), table=table,
        source=compilation.program.main.source.text, inputs=list(table.input),
        definitions=_definitions(model), actions=actions, otherwise=otherwise,
        findings=findings, diagnostics=diagnostics, has_coverage=coverage is not None)


def policy_docs(compilations: Sequence[Compilation], coverage: Coverage | None) -> list[PolicyDoc]:
    """Page data for every policy, each with a unique slug (its name, numbered on a clash)."""
    taken: set[str] = set()
    docs = []
    for compilation in compilations:
        assert compilation.table is not None
        base = slugify(compilation.table.policy.name)
        slug, number = base, 1
        while slug in taken:
            number += 1
            slug = f"{base}-{number}"
        taken.add(slug)
        docs.append(policy_doc(compilation, slug, coverage))
    return docs


def compile_policies(paths: Iterable[str | Path],
                     root: Path | None = None) -> list[Compilation]:
    """Compile each file (imports confined to `root`, by default each file's folder); clean
    libraries (files without a `policy` header) are left out.

    Raises `loader.FileUnreadable` when a file cannot be read.
    """
    compilations = []
    for path in paths:
        compilation = compile_file(path, root=root)
        if compilation.model is None or compilation.model.is_policy or not compilation.ok:
            compilations.append(compilation)
    return compilations


def errors_of(compilations: Iterable[Compilation]) -> list[Diagnostic]:
    return [d for c in compilations for d in c.sorted_diagnostics() if d.severity is Severity.ERROR]


def _shown_path(path: str) -> str:
    """The path relative to the working folder when inside it, so pages do not leak a machine."""
    relative = os.path.relpath(os.path.abspath(path))
    return path if relative.startswith("..") else relative.replace(os.sep, "/")
