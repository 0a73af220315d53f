"""Reports of a run: human text, JUnit XML, JSON (schema in docs/testing.md) and GitHub
annotations. One failure renderer serves the CLI and the pytest plugin."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from sentra_lang import __version__
from sentra_lang import diagnostics as diags
from sentra_lang.diagnostics import (
    Severity,
    escape_github,
    render_github,
    to_dict,
    visible,
    visible_lines,
)
from sentra_lang.files import write_atomically
from sentra_lang.testing.coverage import PolicyCoverage
from sentra_lang.testing.runner import Failure, Result, RunResult

JSON_SCHEMA_VERSION = 1


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def render_failure(result: Result, *, header: bool = True) -> str:
    """The failing step with its source lines and carets, expected against actual, the
    decision and its explanation; first `FAILED nodeid - message`, or (no `header`) the
    message alone, for pytest, which names the test itself. The suite's and the policy's text
    is shown with its invisible characters escaped (`diagnostics.visible`)."""
    failure = result.failure
    assert failure is not None
    item = result.item
    lines = [f"FAILED {item.nodeid} - {failure.message}" if header else failure.message]
    span = failure.span
    lines.append(f"  --> {span}")
    spans = [m.span for m in failure.mismatches] or [span]
    shown = sorted({sp.line for sp in spans} | ({span.line} if failure.step else set()))
    gutter = max(len(str(n)) for n in shown)
    source = span.source
    lines.append(f"{' ' * gutter} |")
    for number in shown:
        text = source.line(number)
        lines.append(f"{number:>{gutter}} | {visible(text)}")
        marks = [" "] * (len(visible(text)) + 1)
        for sp in spans:
            if sp.line == number:
                end = sp.end_column if sp.end_line == number else len(text) + 1
                # the carets under the escaped text: an escape takes the columns it is shown in
                first = len(visible(text[:sp.column - 1]))
                width = max(1, len(visible(text[sp.column - 1:end - 1])))
                for col in range(first, min(first + width, len(marks))):
                    marks[col] = "^"
        if "^" in marks:
            lines.append(f"{' ' * gutter} | {''.join(marks).rstrip()}")
    for mismatch in failure.mismatches:
        label = mismatch.kind.replace("_", " ")
        lines.append(f"  expected {label}: {_value(mismatch.expected)}")
        lines.append(f"    actual {label}: {_value(mismatch.actual)}")
    lines.extend(f"  {line}" for line in failure.details)
    decision = failure.decision
    if decision is not None:
        lines.append(f"  decision: {decision.label} ({decision.rule_id}): {decision.reason}")
        lines.append(f"    attempted risk {decision.attempted_risk}, applied "
                     f"{decision.applied_risk}, cumulative {decision.cumulative_risk}, blocked "
                     f"attempts {decision.blocked_attempts}, status {decision.status}")
        lines.append("  explanation:")
        lines.extend(f"    {step}" for step in decision.explanation.steps)
    return "\n".join(visible(line) for line in lines)


def render_coverage(cov: PolicyCoverage, *, verbose: bool = False) -> str:
    table = cov.put.table
    lines = [f"coverage of policy {table['policy']['name']} ({cov.put.display}): "
             f"rules {cov.rules_covered}/{cov.rules_total} ({cov.percent:.1f}%), "
             f"rows {cov.rows_covered}/{cov.rows_total}, "
             f"condition outcomes {cov.conditions_covered}/{cov.conditions_total}"]
    if cov.limits:
        lines[0] += f", limits reached {cov.limits_reached}/{len(cov.limits)}"
    uncovered = cov.uncovered_rules()
    if uncovered:
        lines.append("  rules no test matched:")
        lines.extend(f"    {rule.id} ({rule.outcome}) at {rule.file}:{rule.line}:{rule.column}"
                     for rule in uncovered)
    unreached = [limit for limit in cov.limits.values() if not limit.reached]
    if unreached:
        lines.append("  limits no test reached:")
        lines.extend(f"    {limit.limit} for {limit.target} (counted {limit.counted})"
                     for limit in unreached)
    if verbose:
        for row in cov.rows:
            for test in row.tests:
                missing = [w for w, seen in (("true", test.seen_true),
                                             ("false", test.seen_false)) if not seen]
                if missing:
                    lines.append(f"    {row.rule} row {row.index}: `{test.text}` never "
                                 f"{' or '.join(missing)}")
    return "\n".join(visible(line) for line in lines)


def render_human(run: RunResult, *, timing: bool = True, color: bool = False,
                 verbose: bool = False) -> str:
    out: list[str] = []
    for diag in run.diagnostics:
        if diag.severity is not Severity.INFO:
            out.append(diags.render_human(diag, color=color))
            out.append("")
    for result in run.results:
        if result.failure is not None:
            out.append(render_failure(result))
            out.append("")
    for cov in run.coverage:
        out.append(render_coverage(cov, verbose=verbose))
    if run.min_coverage is not None and not run.coverage_ok:
        out.append(f"coverage below --min-coverage {run.min_coverage:g}%")
    out.append(summary_line(run, timing=timing))
    return "\n".join(out) + "\n"


def summary_line(run: RunResult, *, timing: bool = True) -> str:
    parts = []
    failed = sum(1 for r in run.results if r.outcome == "failed")
    errors = sum(1 for r in run.results if r.outcome == "error")
    if failed:
        parts.append(f"{failed} failed")
    parts.append(f"{run.passed} passed")
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}")
    if run.deselected:
        parts.append(f"{run.deselected} deselected")
    steps = sum(r.steps for r in run.results)
    parts.append(f"{steps} steps")
    methods = [r.method for r in run.results if r.method is not None]
    if methods:
        parts.append(f"properties: {methods.count('proved')} proved, "
                     f"{methods.count('sampled')} sampled")
    if run.collection_errors:
        parts.append("suite errors")
    text = ", ".join(parts)
    if not run.results and not run.collection_errors:
        text = "no tests ran" + (f" ({run.deselected} deselected)" if run.deselected else "")
    return f"{text} in {run.duration:.2f}s" if timing else text


# ----------------------------------------------------------------------------------- JSON

def _failure_dict(failure: Failure) -> dict[str, Any]:
    decision = failure.decision
    return {
        "message": failure.message,
        "step": failure.step,
        "line": failure.span.line,
        "column": failure.span.column,
        "mismatches": [{"field": m.kind, "expected": m.expected, "actual": m.actual,
                        "line": m.span.line, "column": m.span.column}
                       for m in failure.mismatches],
        "details": list(failure.details),
        "decision": decision.to_dict() if decision is not None else None,
        "explanation": list(decision.explanation.steps) if decision is not None else [],
    }


def coverage_dict(cov: PolicyCoverage) -> dict[str, Any]:
    return {
        "file": cov.put.display,
        "name": cov.put.table["policy"]["name"],
        "hash": cov.put.table["hash"],
        "percent": round(cov.percent, 2),
        "rules_total": cov.rules_total,
        "rules_covered": cov.rules_covered,
        "rows_total": cov.rows_total,
        "rows_covered": cov.rows_covered,
        "conditions_total": cov.conditions_total,
        "conditions_covered": cov.conditions_covered,
        "rules": {rule.id: {"covered": rule.covered, "hits": rule.hits, "outcome": rule.outcome,
                            "scenarios": sorted(rule.tests), "file": rule.file,
                            "line": rule.line, "column": rule.column, "policy": cov.put.display}
                  for rule in cov.rules.values()},
        "rows": [{"actions": row.names, "index": row.index, "rule": row.rule, "hits": row.hits,
                  "otherwise": row.block is None,
                  "tests": [{"test": t.text, "seen_true": t.seen_true,
                             "seen_false": t.seen_false} for t in row.tests]}
                 for row in cov.rows],
        "limits": [{"limit": limit.limit, "for": limit.target, "counted": limit.counted,
                    "reached": limit.reached} for limit in cov.limits.values()],
    }


def to_json(run: RunResult) -> dict[str, Any]:
    policies = [coverage_dict(cov) for cov in run.coverage]
    rules: dict[str, Any] = {}
    for policy in policies:
        for rule_id, entry in policy["rules"].items():
            if rule_id in rules:  # the same id in two policies: merge the test lists
                merged = rules[rule_id]
                merged["scenarios"] = sorted(set(merged["scenarios"]) | set(entry["scenarios"]))
                merged["hits"] += entry["hits"]
                merged["covered"] = merged["covered"] or entry["covered"]
            else:
                rules[rule_id] = dict(entry)
    total = sum(p["rules_total"] for p in policies)
    covered = sum(p["rules_covered"] for p in policies)
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "tool": {"name": "sentra-lang", "version": __version__},
        "exit_code": run.exit_code,
        "summary": {
            "collected": run.collected, "selected": run.collected - run.deselected,
            "deselected": run.deselected, "ran": len(run.results), "passed": run.passed,
            "failed": sum(1 for r in run.results if r.outcome == "failed"),
            "errors": sum(1 for r in run.results if r.outcome == "error"),
            "steps": sum(r.steps for r in run.results), "duration": round(run.duration, 4),
        },
        "suites": [{"file": s.display, "name": s.suite.name if s.suite else None,
                    "policy": s.policy.display if s.policy else None,
                    "policy_hash": s.policy.table["hash"] if s.policy else None,
                    "runnable": s.runnable} for s in run.suites],
        "results": [{"id": r.item.nodeid, "name": r.item.name, "kind": r.item.kind,
                     "tags": list(r.item.tags), "file": r.item.file, "line": r.item.line,
                     "outcome": r.outcome, "steps": r.steps, "duration": round(r.duration, 6),
                     "failure": _failure_dict(r.failure) if r.failure else None}
                    for r in run.results],
        "diagnostics": [to_dict(d) for d in run.diagnostics],
        "coverage": {
            "percent": round(100.0 * covered / total, 2) if total else 100.0,
            "rules_total": total, "rules_covered": covered,
            "min_coverage": run.min_coverage, "ok": run.coverage_ok,
            "rules": rules, "policies": policies,
        },
    }


def json_text(run: RunResult) -> str:
    return json.dumps(to_json(run), indent=2, ensure_ascii=False) + "\n"


def write_json(run: RunResult, path: str | Path) -> None:
    """Write the JSON report, replacing `path` atomically (OSError when it cannot be written)."""
    write_atomically(Path(path), json_text(run))


# ---------------------------------------------------------------------------------- JUnit

def _classname(file: str) -> str:
    stem = file[: -len(".sentra-test")] if file.endswith(".sentra-test") else file
    return stem.replace("\\", "/").strip("./").replace("/", ".")


def to_junit(run: RunResult) -> ET.Element:
    root = ET.Element("testsuites", name="sentra-lang test")
    by_file: dict[str, list[Result]] = {}
    for result in run.results:
        by_file.setdefault(result.item.file, []).append(result)
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for loaded in run.suites:
        results = by_file.get(loaded.display, [])
        failures = sum(1 for r in results if r.outcome == "failed")
        errors = sum(1 for r in results if r.outcome == "error") + (0 if loaded.runnable else 1)
        suite = ET.SubElement(root, "testsuite", {
            "name": loaded.suite.name if loaded.suite else loaded.display,
            "tests": str(len(results)), "failures": str(failures), "errors": str(errors),
            "skipped": "0", "time": f"{sum(r.duration for r in results):.6f}",
            "file": loaded.display})
        totals["tests"] += len(results)
        totals["failures"] += failures
        totals["errors"] += errors
        if not loaded.runnable:
            case = ET.SubElement(suite, "testcase", classname=_classname(loaded.display),
                                 name="(suite)", file=loaded.display, line="1", time="0")
            problems = [d for d in run.diagnostics if d.span.path == loaded.display
                        or d.code == "SL501"]
            error = ET.SubElement(case, "error", message="suite does not compile", type="SuiteError")
            error.text = "\n".join(diags.render_human(d) for d in problems)
        for result in results:
            item = result.item
            case = ET.SubElement(suite, "testcase", {
                "classname": _classname(item.file), "name": item.name, "file": item.file,
                "line": str(item.line), "time": f"{result.duration:.6f}"})
            if result.failure is not None:
                tag = "failure" if result.outcome == "failed" else "error"
                element = ET.SubElement(case, tag, message=result.failure.message,
                                        type="ExpectationMismatch" if tag == "failure"
                                        else "RunnerError")
                element.text = render_failure(result)
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("errors", str(totals["errors"]))
    root.set("time", f"{run.duration:.6f}")
    return root


_NOT_XML = re.compile("[\ufffe\uffff]")
"""What XML 1.0 cannot hold beyond what `visible` escapes (control characters, and the lone
surrogates of a file name that is not UTF-8): the two non-characters."""


def _xml_text(text: str) -> str:
    """`text` as XML 1.0 can hold it: control characters (a tab and line breaks kept) and the
    characters XML forbids written as escapes (`\\x1b`), so that a hostile scenario name or
    reason leaves the report well-formed."""
    return _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", visible_lines(text))


def _xml_safe(root: ET.Element) -> None:
    for element in root.iter():
        for key, value in element.attrib.items():
            element.set(key, _xml_text(value))
        if element.text:
            element.text = _xml_text(element.text)


def junit_text(run: RunResult) -> str:
    root = to_junit(run)
    _xml_safe(root)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f"<?xml version='1.0' encoding='utf-8'?>\n{body}\n"


def write_junit(run: RunResult, path: str | Path) -> None:
    """Write the JUnit XML report, replacing `path` atomically (OSError when it cannot be
    written)."""
    write_atomically(Path(path), junit_text(run))


# --------------------------------------------------------------------------------- GitHub

def render_github_report(run: RunResult) -> str:
    lines = [render_github(d) for d in run.diagnostics if d.severity is not Severity.INFO]
    for result in run.results:
        failure = result.failure
        if failure is None:
            continue
        span = failure.mismatches[0].span if failure.mismatches else failure.span
        title = escape_github(f"sentra-lang test: {result.item.name}", property_value=True)
        file = escape_github(span.path, property_value=True)
        lines.append(f"::error file={file},line={span.line},col={span.column},"
                     f"endLine={span.end_line},endColumn={span.end_column},"
                     f"title={title}::{escape_github(failure.message)}")
    for cov in run.coverage:
        for rule in cov.uncovered_rules():
            file = escape_github(rule.file, property_value=True)
            lines.append(f"::warning file={file},line={rule.line},col={rule.column},"
                         f"title=uncovered rule::{escape_github(rule.id)} is matched by no test")
    lines.append(summary_line(run))
    return "\n".join(lines) + "\n"
