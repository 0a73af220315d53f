"""One build of the policy reference of `policies/` per session, with a crafted coverage report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from sentra_lang.compiler import Compilation
from sentra_lang.docgen import build_site, load_coverage, policy_docs, write_markdown
from sentra_lang.docgen.collect import compile_policies

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"

# Scenario names per rule of the Sentra policy; every other rule is uncovered.
COVERED = {
    "ALLOW_INTERNAL_WORKFLOW": ["internal workflow is free"],
    "BLOCK_PERMISSION_CHANGE": ["permission change is blocked", "three strikes shut down"],
    "RISKY_UNKNOWN_ACTION": ["unknown action carries risk"],
}


@dataclass
class BuiltSite:
    markdown: Path
    site: Path
    compilations: list[Compilation]

    def policy(self, name: str) -> Compilation:
        return next(c for c in self.compilations if c.table and c.table.policy.name == name)


def coverage_report(compilations: list[Compilation]) -> dict[str, object]:
    """The `coverage` part of a `sentra-lang test --json` report, as docs/testing.md gives it."""
    sentra = next(c.table for c in compilations if c.table and c.table.policy.name == "sentra")
    assert sentra is not None
    rules = {rule.id: {"covered": rule.id in COVERED, "hits": len(COVERED.get(rule.id, [])),
                       "scenarios": COVERED.get(rule.id, [])} for rule in sentra.rules}
    return {"schema_version": 1,
            "coverage": {"rules": rules,
                         "policies": [{"name": "sentra", "hash": sentra.hash, "rules": rules}]}}


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> BuiltSite:
    work = tmp_path_factory.mktemp("docs")
    compilations = compile_policies(sorted(POLICIES.rglob("*.sentra")))
    report = work / "report.json"
    report.write_text(json.dumps(coverage_report(compilations)), encoding="utf-8")
    docs = policy_docs(compilations, load_coverage(report))
    config = write_markdown(docs, work / "markdown")
    build_site(config, work / "site")
    return BuiltSite(work / "markdown", work / "site", compilations)
