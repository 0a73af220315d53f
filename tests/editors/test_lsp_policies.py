"""The language server on the shipped policies and suites, checked against independent answers:
`sentra-lang check --format json` for diagnostics, the compiled decision table for what a rule
id means, and the policy text for where it is declared."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from sentra_runtime.decider import BUILT_IN_BLOCKS, BUILT_IN_SHUTDOWNS

from sentra_lang.compiler import compile_file
from sentra_lang.lsp.hover import RUNTIME_RULES
from tests.editors.lsp_client import LspSession, uri

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
POLICIES = sorted((ROOT / "policies").rglob("*.sentra"))
SUITES = sorted((ROOT / "policies").glob("*.sentra-test"))
RULE_REFERENCE = re.compile(r"\brule\s+([A-Z][A-Z0-9_]*)")
RUNTIME_IDS = BUILT_IN_BLOCKS | BUILT_IN_SHUTDOWNS


def test_hover_knows_every_id_the_runtime_decides_with() -> None:
    assert set(RUNTIME_RULES) == RUNTIME_IDS


def utf16(line_text: str, column: int) -> int:
    """A 1-based code-point column as a 0-based UTF-16 character."""
    return len(line_text[:column - 1].encode("utf-16-le")) // 2


def position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset)
    start = text.rfind("\n", 0, offset) + 1
    return line, len(text[start:offset].encode("utf-16-le")) // 2


def check_json(path: Path) -> list[dict[str, Any]]:
    output = subprocess.run([sys.executable, "-m", "sentra_lang", "check", "--notes", "--format", "json",
                             str(path)], capture_output=True, text=True, cwd=ROOT).stdout
    diagnostics: list[dict[str, Any]] = json.loads(output)["diagnostics"]
    return diagnostics


def table_rules(policy: Path) -> dict[str, Any]:
    table = compile_file(policy, analyse=False).table
    assert table is not None
    return {rule.id: rule for rule in table.rules}


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.name)
def test_diagnostics_are_the_checks(lsp: LspSession, path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    expected = [(d["code"], d["line"] - 1, utf16(lines[d["line"] - 1], d["column"]),
                 d["end_line"] - 1, utf16(lines[d["end_line"] - 1], d["end_column"]),
                 d["message"]) for d in check_json(path)]
    address = lsp.open(path)
    actual = [(d.code, d.range.start.line, d.range.start.character, d.range.end.line,
               d.range.end.character, d.message.split("\n")[0])
              for d in lsp.diagnostics(address, version=1)]
    assert actual == expected
    assert lsp.formatting(address) == []          # the shipped policies are formatted


@pytest.mark.parametrize("path", [p for p in POLICIES if p.parent.name == "policies"],
                         ids=lambda p: p.name)
def test_every_rule_id_hovers_with_the_tables_outcome_risk_and_threat(lsp: LspSession,
                                                                      path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    rules = table_rules(path)
    address = lsp.open(path)
    for match in re.finditer(r"\bas ([A-Z][A-Z0-9_]*)", text):
        rule = rules[match.group(1)]
        hover = lsp.hover(address, *position(text, match.start(1) + 1))
        assert hover is not None and isinstance(hover.contents, types.MarkupContent)
        shown = hover.contents.value
        assert f"**rule** `{rule.id}`: **{rule.outcome}**" in shown
        assert (f"risk {rule.risk}," in shown) == (rule.risk != 0 or rule.outcome == "allow")
        assert (f'threat "{rule.threat}"' in shown) == (rule.threat is not None)


@pytest.mark.parametrize("suite", SUITES, ids=lambda p: p.name)
def test_suites_are_clean_and_their_rule_ids_hover_and_jump_into_the_policy(
        lsp: LspSession, suite: Path) -> None:
    text = suite.read_text(encoding="utf-8")
    policy = suite.with_suffix(".sentra")
    policy_text = policy.read_text(encoding="utf-8")
    rules = table_rules(policy)
    address = lsp.open(suite)
    assert lsp.diagnostics(address, version=1) == []
    references = list(RULE_REFERENCE.finditer(text))
    assert len(references) > 20
    for match in references:
        rule_id = match.group(1)
        where = position(text, match.start(1) + 2)
        hover = lsp.hover(address, *where)
        assert hover is not None and isinstance(hover.contents, types.MarkupContent)
        target = lsp.definition(address, *where)
        if rule_id in RUNTIME_IDS:
            assert f"**runtime rule** `{rule_id}`" in hover.contents.value and target is None
            continue
        assert f"**rule** `{rule_id}`: **{rules[rule_id].outcome}**" in hover.contents.value
        declared = re.search(rf"\bas ({rule_id})\b", policy_text)
        assert declared is not None
        assert isinstance(target, types.Location) and target.uri == uri(policy)
        assert (target.range.start.line, target.range.start.character) == \
            position(policy_text, declared.start(1))


@pytest.mark.parametrize("suite", SUITES, ids=lambda p: p.name)
def test_completion_after_rule_offers_every_rule_of_the_policy(lsp: LspSession,
                                                               suite: Path) -> None:
    text = suite.read_text(encoding="utf-8")
    match = RULE_REFERENCE.search(text)
    assert match is not None
    address = lsp.open(suite)
    items = lsp.completion(address, *position(text, match.start(1)))
    offered = {item.label for item in items}
    assert set(table_rules(suite.with_suffix(".sentra"))) | RUNTIME_IDS == offered
