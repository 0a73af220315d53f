"""Headless Chromium opens the built reference from disk (file://), as a reviewer would.

Chromium's `--dump-dom` gives the DOM after the page's scripts ran, so the checks see what
Material rendered: the decision table, and the search results for `?q=RULE_ID` (which only
appear when the search worker ran offline from disk). The screenshot stays in the test's
temp dir as an artifact.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

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
