"""Adversarial probe of the tools a policy author touches: `check`, `compile`, `fmt`, `diff`,
`explain`, `test`, `docs` and the language server, fed what a careless user or an attacker who
controls a policy file, a suite file or an editor buffer can give them.

Each test pins a claim of the docs (docs/cli.md, docs/language.md, docs/testing.md,
docs/editors.md) that an earlier version broke.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from sentra_lang.docgen import build_site, policy_docs, write_markdown
from sentra_lang.docgen.collect import compile_policies
from tests.edges.probe_helpers import cli
from tests.playwright_fixtures import Pages

# ------------------------------------------------------------------------------- docs (HTML)

HOSTILE_POLICY = """\
policy p version "v {onmouseover=alert(11) style=position:fixed;width:100%;height:100%}" {
  description "see [here](javascript:alert(2)) {onclick=alert(10)} <b>x</b>"
}

input {
  s: string = ""
}

action "a {onfocus=alert(12) autofocus tabindex=1}", "[x](javascript:alert(13))" {
  when s == "x" block as R threat "[t](javascript:alert(6))" "[r](javascript:alert(7))"
    description "<iframe src=javascript:alert(8)>"
  allow as OK
}

otherwise block as O "[x](javascript:alert(9))"
"""


class _ActiveMarkup(HTMLParser):
    """Every event-handler attribute and every `javascript:` URL of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}={value!r}>")
            if (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value!r}>")


def active_markup(html: str) -> list[str]:
    parser = _ActiveMarkup()
    parser.feed(html)
    return parser.found


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("hostile-docs")
    policy = work / "hostile.sentra"
    policy.write_text(HOSTILE_POLICY, "utf-8")
    compilations = compile_policies([policy])
    assert all(c.table is not None for c in compilations)
    config = write_markdown(policy_docs(compilations, None), work / "markdown")
    build_site(config, work / "site")
    return work / "site"


@pytest.mark.parametrize("page", ["policies/p.html", "index.html", "source/p.html"])
def test_docs_policy_text_never_becomes_markup(hostile_site: Path, page: str) -> None:
    """A version, description or action name is text: Markdown's attribute lists (`{onclick=..}`)
    and links (`[x](javascript:..)`) in it are shown, never made into attributes or links."""
    html = (hostile_site / page).read_text("utf-8")
    assert active_markup(html) == []
    if page == "policies/p.html":
        assert "{onmouseover=alert(11)" in html
        assert "[here](javascript:alert(2))" in html


@pytest.mark.slow
def test_docs_hostile_page_runs_no_script_in_a_browser(hostile_site: Path, pages: Pages) -> None:
    """In Chromium: loading, moving over, clicking and tabbing through the page calls no
    `alert`."""
    page = pages.open((hostile_site / "policies" / "p.html").as_uri(), width=1200, height=900)
    page.add_init_script("window.__alerts = []; "
                         "window.alert = (m) => window.__alerts.push(String(m))")
    page.reload()
    for x, y in ((10, 10), (600, 100), (600, 450), (300, 700)):
        page.mouse.move(x, y)
        page.mouse.click(x, y)
    for _ in range(30):
        page.keyboard.press("Tab")
    for heading in page.locator("h1, h2, h3, p").all()[:20]:
        heading.hover()
    assert page.evaluate("window.__alerts") == []
    assert page.evaluate("document.querySelectorAll('[onmouseover], [onclick], [onfocus], "
                         "[href^=javascript], [src^=javascript]').length") == 0
