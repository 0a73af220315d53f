"""The built reference of `policies/`: tables, rule order, source links, coverage, offline."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from sentra_lang.diagnostics import format_witness
from tests.docgen.conftest import COVERED, BuiltSite
from tests.docgen.site import Page, read_page

POLICY_NAMES = ["sentra", "coding_agent"]


def policy_page(site: BuiltSite, name: str) -> Page:
    return read_page(site.site / "policies" / f"{name}.html")


def html_pages(site: BuiltSite) -> list[Path]:
    return sorted(site.site.rglob("*.html"))


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_every_action_table_lists_its_rules_in_first_match_order(built_site: BuiltSite,
                                                                 name: str) -> None:
    table = built_site.policy(name).table
    assert table is not None
    page = policy_page(built_site, name)
    by_action = {t.action: t for t in page.tables}
    for block in table.actions:
        expected = list(dict.fromkeys(row.rule for row in block.rows))
        shown = by_action[",".join(block.names)]
        rule_rows = [row.rule for row in shown.rows if "sentra-rule" in row.classes]
        assert rule_rows == expected, block.names
        numbers = [row.cells[0] for row in shown.rows if "sentra-rule" in row.classes]
        assert numbers == [str(n) for n in range(1, len(expected) + 1)]


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_every_rule_shows_its_id_outcome_risk_threat_and_reason(built_site: BuiltSite,
                                                                name: str) -> None:
    table = built_site.policy(name).table
    assert table is not None
    rows = {row.id: row for t in policy_page(built_site, name).tables for row in t.rows if row.id}
    for rule in table.rules:
        row = rows[f"rule-{rule.id}"]
        _number, condition, outcome, risk, rule_id, threat, reason = row.cells[:7]
        assert (outcome, risk, rule_id) == (rule.outcome, str(rule.risk), rule.id)
        assert threat == (rule.threat or "–")
        assert reason.startswith(" ".join(rule.reason.split()))
        assert condition == (" ".join(rule.condition.split()) if rule.condition else "always")


def test_an_action_that_can_fall_through_ends_with_the_otherwise_row(built_site: BuiltSite) -> None:
    page = policy_page(built_site, "sentra")
    tables = {t.action: t for t in page.tables}
    last = tables["SEND_NOTIFICATION"].rows[-1]
    assert "sentra-otherwise" not in last.classes  # ends with an unconditional rule
    other = tables[""].rows
    assert [row.rule for row in other] == ["RISKY_UNKNOWN_ACTION"]


def _resolve(page: Path, href: str, site: Path) -> tuple[Path, str]:
    parts = urlsplit(href)
    target = Path(os.path.normpath(page.parent / parts.path)) if parts.path else page
    assert target.is_relative_to(site), href
    return target, parts.fragment


def test_source_links_point_at_the_rule_line(built_site: BuiltSite) -> None:
    for name in POLICY_NAMES:
        table = built_site.policy(name).table
        assert table is not None
        lines = {rule.id: rule.span.line for rule in table.rules}
        page = policy_page(built_site, name)
        source_links = [href for href, classes in page.links if "sentra-source-link" in classes]
        assert len(source_links) >= len(table.rules)
        for row in (r for t in page.tables for r in t.rows if r.id):
            link = next(href for href in source_links if href.endswith(f"#L-{lines[row.rule]}"))
            target, fragment = _resolve(page.path, link, built_site.site)
            assert fragment in read_page(target).ids


def test_every_internal_link_and_anchor_resolves(built_site: BuiltSite) -> None:
    pages = {path: read_page(path) for path in html_pages(built_site)}
    broken = []
    for path in html_pages(built_site):
        if path.name == "404.html":  # served from the site root by design: absolute links
            continue
        page = pages[path]
        for href, _classes in page.links:
            if urlsplit(href).scheme or href.startswith(("mailto:", "javascript:")):
                continue
            target, fragment = _resolve(path, href, built_site.site)
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{path.name}: {href}")
            elif fragment and target.suffix == ".html" and fragment not in pages[target].ids:
                broken.append(f"{path.name}: {href} (no anchor)")
    assert not broken, broken[:20]


def test_coverage_marks_match_the_report(built_site: BuiltSite) -> None:
    for name in POLICY_NAMES:
        rows = [r for t in policy_page(built_site, name).tables for r in t.rows if r.id]
        for row in rows:
            scenarios = COVERED.get(row.rule, []) if name == "sentra" else []
            coverage_cell = row.cells[7]
            if scenarios:
                assert coverage_cell == ", ".join(scenarios)
                assert "sentra-row-uncovered" not in row.classes
            else:
                assert coverage_cell == "not covered", row.rule
                assert "sentra-row-uncovered" in row.classes, row.rule
    markdown = (built_site.markdown / "docs" / "policies" / "sentra.md").read_text()
    table = built_site.policy("sentra").table
    assert table is not None
    assert f"{len(COVERED)} of {len(table.rules)} rules are covered" in markdown


def test_analysis_findings_are_listed_with_their_witness(built_site: BuiltSite) -> None:
    compilation = built_site.policy("coding_agent")
    with_witness = [d for d in compilation.diagnostics if d.witness is not None]
    assert with_witness, "the example policy is expected to have analysis notes"
    text = (built_site.markdown / "docs" / "policies" / "coding_agent.md").read_text()
    for diag in with_witness:
        assert diag.code in text
        assert format_witness(diag.witness or {}).replace('"', "&#34;") in text


def test_index_lists_each_policy_with_hash_and_counts(built_site: BuiltSite) -> None:
    index = (built_site.site / "index.html").read_text()
    for compilation in built_site.compilations:
        table = compilation.table
        assert table is not None
        assert f'href="policies/{table.policy.name}.html"' in index
        assert table.hash in index
        assert f"<td>{len(table.rules)}</td>" in index


def test_a_page_per_diagnostic_code(built_site: BuiltSite) -> None:
    from sentra_lang.codes import CODES

    for code in CODES:
        assert (built_site.site / "codes" / f"{code}.html").exists(), code


def test_site_fetches_nothing_from_elsewhere(built_site: BuiltSite) -> None:
    for path in html_pages(built_site):
        page = read_page(path)
        remote = [src for src in page.scripts + page.stylesheets if urlsplit(src).scheme]
        assert not remote, (path.name, remote)
        assert "fonts.googleapis" not in path.read_text()


def test_search_index_has_every_rule_id(built_site: BuiltSite) -> None:
    index = (built_site.site / "search" / "search_index.json").read_text()
    assert json.loads(index)["docs"]
    for compilation in built_site.compilations:
        assert compilation.table is not None
        for rule in compilation.table.rules:
            assert rule.id in index
    assert (built_site.site / "search" / "search_index.js").exists()  # offline search
