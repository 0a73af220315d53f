"""Headless Chromium opens the built reference from disk (file://), as a reviewer would.

Chromium's `--dump-dom` gives the DOM after the page's scripts ran, so the checks see what
Material rendered: the decision table, and the search results for `?q=RULE_ID` (which only
appear when the search worker ran offline from disk). The screenshot stays in the test's
temp dir as an artifact.

The interactive tests drive the page over the DevTools protocol (tests/browser.py): the
decision table's box is measured after scrolling it into view, and a rule id typed into
Material's search box finds the policy page, still from disk.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.browser import CHROMIUM as CDP_CHROMIUM
from tests.browser import SKIP_REASON, Chromium
from tests.docgen.conftest import BuiltSite
from tests.docgen.site import read_page

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists()
                                         else None)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt install chromium)"),
]


def chromium(tmp_path: Path, url: str, *mode: str) -> str:
    assert CHROMIUM is not None
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000", "--window-size=1400,1000", *mode, url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_policy_page_shows_the_decision_table(built_site: BuiltSite, tmp_path: Path) -> None:
    page = built_site.site / "policies" / "sentra.html"
    screenshot = tmp_path / "policy.png"
    chromium(tmp_path, page.as_uri(), f"--screenshot={screenshot}")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 20_000, "the screenshot looks blank"
    dom = tmp_path / "policy.html"
    dom.write_text(chromium(tmp_path, page.as_uri(), "--dump-dom"), encoding="utf-8")
    rendered = read_page(dom)
    tables = {t.action: t for t in rendered.tables}
    assert [r.rule for r in tables["CHANGE_PERMISSION"].rows] == ["BLOCK_PERMISSION_CHANGE"]
    text = dom.read_text(encoding="utf-8")
    assert 'class="md-typeset"' in text or "md-content" in text  # Material's layout ran


def test_search_finds_a_rule_id_offline(built_site: BuiltSite, tmp_path: Path) -> None:
    url = (built_site.site / "index.html").as_uri() + "?q=BLOCK_PERMISSION_CHANGE"
    dom = chromium(tmp_path, url, "--dump-dom")
    assert "md-search-result__item" in dom, "no search results rendered"
    assert "source/sentra.html" in dom or "policies/sentra.html" in dom


# ------------------------------------------------------------------- interactive, over CDP

def cdp_browser() -> Chromium:
    return Chromium(width=1400, height=1000, lifetime=60)


@pytest.mark.skipif(CDP_CHROMIUM is None, reason=SKIP_REASON)
def test_decision_table_is_visible_on_the_policy_page(built_site: BuiltSite,
                                                      tmp_path: Path) -> None:
    page_path = built_site.site / "policies" / "sentra.html"
    with cdp_browser() as browser:
        page = browser.new_page()
        page.navigate(page_path.as_uri())
        selector = 'table.sentra-decision[data-action="CHANGE_PERMISSION"]'
        page.wait_for(f"document.querySelector({json.dumps(selector)}) !== null", timeout=5)
        box = page.evaluate(f"""(() => {{
            const table = document.querySelector({json.dumps(selector)});
            table.scrollIntoView({{block: 'center'}});
            const r = table.getBoundingClientRect(), s = getComputedStyle(table);
            return {{x: r.x, y: r.y, width: r.width, height: r.height,
                     vw: innerWidth, vh: innerHeight, visibility: s.visibility,
                     display: s.display, opacity: s.opacity,
                     rules: [...table.querySelectorAll('tr[data-rule]')].map(r => r.dataset.rule),
                     hit: table.contains(document.elementFromPoint(r.x + r.width / 2,
                                                                    r.y + Math.min(r.height, 60) / 2))}};
        }})()""")
        assert box["width"] > 0 and box["height"] > 0, box
        assert box["visibility"] == "visible" and box["display"] != "none" and box["opacity"] == "1"
        assert 0 <= box["x"] and box["x"] + box["width"] <= box["vw"] + 1, box
        assert 0 <= box["y"] and box["y"] + box["height"] <= box["vh"] + 1, box
        assert box["hit"], "something covers the decision table"
        assert box["rules"] == ["BLOCK_PERMISSION_CHANGE"]
        # every action's table on the page is rendered with a size
        sizes = page.evaluate("[...document.querySelectorAll('table.sentra-decision')]"
                              ".map(t => [t.dataset.action, t.getBoundingClientRect().width > 0])")
        assert sizes and all(shown for _, shown in sizes), sizes
        page.screenshot(tmp_path / "policy-table.png")
        assert not page.errors, page.errors
    png = (tmp_path / "policy-table.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


@pytest.mark.skipif(CDP_CHROMIUM is None, reason=SKIP_REASON)
def test_typing_a_rule_id_in_the_search_box_finds_the_policy(built_site: BuiltSite,
                                                             tmp_path: Path) -> None:
    """From disk (file://): the search worker runs in the offline shim's iframe."""
    with cdp_browser() as browser:
        page = browser.new_page()
        page.navigate((built_site.site / "index.html").as_uri())
        page.wait_for("document.querySelector('.md-search__input') !== null", timeout=5)
        page.click(".md-search__input")  # in the header at this width
        page.focus(".md-search__input")
        # the search worker starts on focus; typed text only counts once it is ready
        page.wait_for("!/initializing/i.test(document.querySelector('.md-search-result__meta')"
                      "?.textContent ?? 'initializing')", timeout=10,
                      message="the search index loads from disk")
        page.type_text("BLOCK_PERMISSION_CHANGE")  # Material queries on keyup
        found = page.wait_for(
            """(() => { const policy = new URL('policies/sentra.html', location.href).href;
                        const links = [...document.querySelectorAll('.md-search-result a')]
                          .map(a => a.href);
                        return links.some(h => h.split(/[?#]/)[0] === policy) ? links : null;
                      })()""",
            timeout=10, message="a search result links to the policy page")
        assert any("#action-change_permission" in href for href in found), found
        meta = page.evaluate("document.querySelector('.md-search-result__meta').textContent")
        assert "matching" in meta.lower(), meta
        assert page.evaluate("document.querySelector('.md-search__input').value") == \
            "BLOCK_PERMISSION_CHANGE"
        page.screenshot(tmp_path / "search.png")
        # the result leads to the rule's table on the policy page
        page.click('.md-search-result a[href*="policies/sentra.html"][href*="#action-change"]')
        page.wait_for("location.pathname.endsWith('/policies/sentra.html') && document.readyState"
                      " === 'complete' && document.querySelector('tr[data-rule="
                      "\"BLOCK_PERMISSION_CHANGE\"]') !== null", timeout=10,
                      message="the policy page opens at the rule")
        assert page.evaluate("location.hash") == "#action-change_permission"
        page.screenshot(tmp_path / "search-result-opened.png")
        assert not page.errors, page.errors
    assert (tmp_path / "search.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
