"""The built reference in headless Chromium (Playwright), opened from disk (file://) as a reviewer
would: what Material rendered, measured in the real page.

- the decision tables are there, visible, and nothing covers them;
- search works offline from disk (the search worker runs in the offline shim's iframe), both from
  `?q=` and typed into the search box, and its preview of a source page shows the code without
  line numbers glued to it;
- no identifier (rule id, code, field, witness) is broken mid-word, and on a wide window the
  tables use the width instead of wrapping;
- findings show code spans, not Markdown backticks (a reason's backticks are its own text);
- a Settings label never overlaps (or touches) its value, at phone to desktop widths.

Screenshots stay in each test's tmp_path; tests/playwright_fixtures.py launches the browser.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.docgen.conftest import POLICIES, BuiltSite
from tests.docgen.site import read_page
from tests.playwright_fixtures import (
    BROKEN_WORDS,
    OVERLAPS,
    Pages,
    png_region_stats,
    screenshot,
)

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.slow

TABLE_CODE = '.md-typeset table[class^="sentra-"] code'


def policy_url(site: BuiltSite, name: str, fragment: str = "") -> str:
    return (site.site / "policies" / f"{name}.html").as_uri() + fragment


def test_policy_page_shows_the_decision_table(built_site: BuiltSite, pages: Pages,
                                              tmp_path: Path) -> None:
    page = pages.open(policy_url(built_site, "sentra"), width=1400, height=1000)
    png = screenshot(page, tmp_path / "policy.png")
    stats = png_region_stats(pages, png, 0, 0, 1400, 1000)
    assert (stats["width"], stats["height"]) == (1400, 1000)
    assert stats["colours"] > 50, "the screenshot looks blank"
    dom = tmp_path / "policy.html"
    dom.write_text(page.content(), encoding="utf-8")
    tables = {t.action: t for t in read_page(dom).tables}
    assert [r.rule for r in tables["CHANGE_PERMISSION"].rows] == ["BLOCK_PERMISSION_CHANGE"]
    assert page.locator(".md-content .md-typeset").count() == 1  # Material's layout ran
    assert not pages.errors(page)


def test_search_finds_a_rule_id_offline(built_site: BuiltSite, pages: Pages) -> None:
    page = pages.open((built_site.site / "index.html").as_uri() + "?q=BLOCK_PERMISSION_CHANGE")
    page.wait_for_selector(".md-search-result__item", timeout=15_000)
    links = page.eval_on_selector_all(".md-search-result a", "links => links.map(a => a.href)")
    assert any("source/sentra.html" in href or "policies/sentra.html" in href
               for href in links), links


def test_decision_table_is_visible_on_the_policy_page(built_site: BuiltSite, pages: Pages,
                                                      tmp_path: Path) -> None:
    page = pages.open(policy_url(built_site, "sentra"), width=1400, height=1000)
    table = page.locator('table.sentra-decision[data-action="CHANGE_PERMISSION"]')
    table.scroll_into_view_if_needed()
    box = table.evaluate("""(table) => {
        table.scrollIntoView({block: 'center'});
        const r = table.getBoundingClientRect(), s = getComputedStyle(table);
        return {x: r.x, y: r.y, width: r.width, height: r.height, vw: innerWidth, vh: innerHeight,
                visibility: s.visibility, display: s.display, opacity: s.opacity,
                rules: [...table.querySelectorAll('tr[data-rule]')].map(r => r.dataset.rule),
                hit: table.contains(document.elementFromPoint(r.x + r.width / 2,
                                                              r.y + Math.min(r.height, 60) / 2))};
    }""")
    assert box["width"] > 0 and box["height"] > 0, box
    assert box["visibility"] == "visible" and box["display"] != "none" and box["opacity"] == "1"
    assert 0 <= box["x"] and box["x"] + box["width"] <= box["vw"] + 1, box
    assert 0 <= box["y"] and box["y"] + box["height"] <= box["vh"] + 1, box
    assert box["hit"], "something covers the decision table"
    assert box["rules"] == ["BLOCK_PERMISSION_CHANGE"]
    sizes = page.eval_on_selector_all("table.sentra-decision", "tables => tables.map(t => "
                                      "[t.dataset.action, t.getBoundingClientRect().width > 0])")
    assert sizes and all(shown for _, shown in sizes), sizes
    png = screenshot(page, tmp_path / "policy-table.png")
    assert png_region_stats(pages, png, 0, 0, 1400, 1000)["colours"] > 50
    assert not pages.errors(page)


def test_typing_a_rule_id_in_the_search_box_finds_the_policy(built_site: BuiltSite,
                                                             pages: Pages,
                                                             tmp_path: Path) -> None:
    """From disk (file://): the search worker runs in the offline shim's iframe."""
    page = pages.open((built_site.site / "index.html").as_uri(), width=1400, height=1000)
    search = type_search(page, "BLOCK_PERMISSION_CHANGE")
    found = page.wait_for_function(
        """() => { const policy = new URL('policies/sentra.html', location.href).href;
                   const links = [...document.querySelectorAll('.md-search-result a')]
                     .map(a => a.href);
                   return links.some(h => h.split(/[?#]/)[0] === policy) ? links : null; }""",
        timeout=10_000).json_value()
    assert any("#action-change_permission" in href for href in found), found
    meta = page.text_content(".md-search-result__meta") or ""
    assert "matching" in meta.lower(), meta
    assert search.input_value() == "BLOCK_PERMISSION_CHANGE"
    screenshot(page, tmp_path / "search.png")
    # the result leads to the rule's table on the policy page
    page.click('.md-search-result a[href*="policies/sentra.html"][href*="#action-change"]')
    page.wait_for_function("location.pathname.endsWith('/policies/sentra.html') && "
                           "document.readyState === 'complete' && document.querySelector("
                           "'tr[data-rule=\"BLOCK_PERMISSION_CHANGE\"]') !== null")
    assert page.evaluate("location.hash") == "#action-change_permission"
    screenshot(page, tmp_path / "search-result-opened.png")
    assert not pages.errors(page)


def type_search(page: Page, text: str) -> Locator:
    """Type into Material's search box once its worker is ready (it starts on focus)."""
    search = page.locator(".md-search__input")
    search.click()
    page.wait_for_function("!/initializing/i.test(document.querySelector("
                           "'.md-search-result__meta')?.textContent ?? 'initializing')",
                           timeout=15_000)
    page.keyboard.type(text)  # Material queries on keyup
    return search


# ------------------------------------------------------------------------ layout of the pages

@pytest.mark.parametrize("width", [1400, 1920])
@pytest.mark.parametrize("policy", ["sentra", "coding_agent"])
def test_identifiers_are_never_broken_mid_word(built_site: BuiltSite, pages: Pages,
                                               tmp_path: Path, policy: str, width: int) -> None:
    page = pages.open(policy_url(built_site, policy), width=width, height=1000)
    codes = page.locator(TABLE_CODE).count()
    assert codes > 20, codes
    broken = page.evaluate(BROKEN_WORDS, TABLE_CODE + ", table.sentra-findings td:first-child")
    assert broken == [], f"broken mid-word at {width}px: {broken[:10]}"
    # rule ids and finding codes sit on one line each
    split = page.eval_on_selector_all(
        "td.sentra-rule code, table.sentra-findings td:first-child code",
        "codes => codes.filter(c => c.getClientRects().length !== 1).map(c => c.textContent)")
    assert split == []
    findings = page.locator("table.sentra-findings")
    if findings.count():
        screenshot(page, tmp_path / f"{policy}-findings-{width}.png", element=findings)


def test_tables_use_the_width_of_a_wide_window(built_site: BuiltSite, pages: Pages,
                                              tmp_path: Path) -> None:
    page = pages.open(policy_url(built_site, "coding_agent"), width=1920, height=1000)
    fit = page.eval_on_selector_all(".sentra-table", """wraps => wraps.map(w => ({
        table: w.firstElementChild.className + ' ' + (w.firstElementChild.dataset.action ?? ''),
        scroll: w.scrollWidth, client: w.clientWidth}))""")
    assert fit and all(item["scroll"] <= item["client"] + 1 for item in fit), \
        [item for item in fit if item["scroll"] > item["client"] + 1]
    width = page.evaluate("document.querySelector('table.sentra-decision')"
                          ".getBoundingClientRect().width")
    assert width >= 0.6 * 1920, f"the decision table is {width}px wide in a 1920px window"
    screenshot(page, tmp_path / "wide.png", full_page=True)


def test_findings_show_code_not_backticks(built_site: BuiltSite, pages: Pages) -> None:
    page = pages.open(policy_url(built_site, "coding_agent"))
    messages = page.eval_on_selector_all("td.sentra-message", """cells => cells.map(c => ({
        text: c.textContent, codes: [...c.querySelectorAll('code')].map(k => k.textContent)}))""")
    assert messages, "the example policy is expected to have findings"
    for message in messages:
        assert "`" not in message["text"], message
        assert len(message["codes"]) >= 2, message  # two rule ids per overlap finding
        assert all(code.isidentifier() for code in message["codes"]), message


@pytest.mark.parametrize("width", [360, 800, 1400, 1920])
def test_settings_labels_stay_clear_of_their_values(built_site: BuiltSite, pages: Pages,
                                                   tmp_path: Path, width: int) -> None:
    page = pages.open(policy_url(built_site, "coding_agent"), width=width, height=900)
    rows = page.eval_on_selector_all("table.sentra-settings tr", """rows => rows.map(row => {
        const [label, value] = [row.querySelector('th'), row.querySelector('td')];
        const text = (node) => { const range = document.createRange();
                                 range.selectNodeContents(node);
                                 return range.getBoundingClientRect(); };
        const l = text(label), v = text(value);
        return {label: label.textContent, right: l.right, valueLeft: v.left,
                top: l.top, valueTop: v.top};
    })""")
    assert [row["label"] for row in rows] == ["risk threshold", "strikes",
                                              "action type normalisation", "otherwise"]
    for row in rows:
        assert row["right"] + 8 <= row["valueLeft"], (width, row)
        assert abs(row["top"] - row["valueTop"]) < 6, (width, row)  # side by side, aligned
    assert page.evaluate(OVERLAPS, "table.sentra-settings th, table.sentra-settings td") == []
    screenshot(page, tmp_path / f"settings-{width}.png",
               element=page.locator("table.sentra-settings"))


def test_search_preview_shows_source_lines_without_numbers(built_site: BuiltSite, pages: Pages,
                                                           tmp_path: Path) -> None:
    source = (POLICIES / "sentra.sentra").read_text(encoding="utf-8")
    lines = set(source.splitlines())
    page = pages.open((built_site.site / "index.html").as_uri(), width=1400, height=1000)
    type_search(page, "risk_threshold")
    preview = page.locator('.md-search-result__item a[href*="source/sentra.html"] pre code')
    preview.first.wait_for(timeout=10_000)
    shown = preview.first.inner_text().splitlines()
    assert shown[0] == source.splitlines()[0], shown[:3]
    assert [line for line in shown if line.rstrip() and line.rstrip() not in lines] == [], \
        "preview lines that are not lines of the source (a line number glued on?)"
    screenshot(page, tmp_path / "search-preview.png")
    # the source page draws its numbers beside the code, not in its text
    page.goto((built_site.site / "source" / "sentra.html").as_uri() + "#L-7")
    assert page.locator(".sentra-source code").text_content() == source
    gutter = page.evaluate("""() => {
        const line = document.getElementById('L-7'), range = document.createRange();
        range.setStart(line.querySelector('span') ?? line, 0);
        range.setEnd(line.querySelector('span') ?? line, 1);
        return {gap: range.getBoundingClientRect().left - line.getBoundingClientRect().left,
                number: getComputedStyle(line, '::before').content};
    }""")
    assert gutter["gap"] > 15 and "counter" in gutter["number"], gutter
    screenshot(page, tmp_path / "source.png")
    assert not pages.errors(page)


@pytest.mark.parametrize(("message", "html"), [
    ("`A` and `B` overlap", "<code>A</code> and <code>B</code> overlap"),
    ("no spans", "no spans"),
    ("an unmatched `tick", "an unmatched `tick"),
    ("`<b>` & `x`", "<code>&lt;b&gt;</code> &amp; <code>x</code>"),
    ("``", "<code></code>"),
])
def test_finding_messages_become_html_with_code_spans(message: str, html: str) -> None:
    from sentra_lang.docgen.render import _environment

    macros = _environment().get_template("_macros.html.j2").module
    assert str(macros.inline_code(message)) == html  # type: ignore[attr-defined]
