"""The dashboard: its server-rendered first snapshot, and the page in headless Chromium.

- the HTML carries the first snapshot (counts, agents, events) from the gate's state, so a plain
  load shows real numbers before the event stream answers; the script renders the same rows;
- decisions posted over HTTP appear live, shut-down agents are highlighted, the reset button
  asks for the operator token;
- layouts at 1280, 1920 and 390 px: no clipped table columns, no overlapping panels, dark
  scrollbars, a risk chart with axes and labels;
- the Impact tab: numbers from the audit log, settings, CSV and JSON downloads.

Screenshots stay in each test's tmp_path; tests/playwright_fixtures.py launches the browser.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from markupsafe import escape

from tests.playwright_fixtures import OVERLAPS, Pages, png_region_stats, screenshot
from tests.server.conftest import TOKEN, Server

if TYPE_CHECKING:
    from playwright.sync_api import Page

LONG_AGENT = "agent-with-a-rather-long-name-0123456789"
HOSTILE_AGENT = "x" * 300
SCRIPT_AGENT = '</script><script>window.__owned = 1</script><img src=x onerror="window.__owned=2">'


def agent_row(agent: str) -> str:
    return f"document.querySelector('#agents tr[data-agent={json.dumps(agent)}]')"


def server_agent(server: Server, agent: str) -> dict[str, Any]:
    response = server.get(f"/v1/agents/{agent}")
    assert response.status == 200, response.text
    return dict(response.json())


def shut_down(server: Server, agent: str) -> None:
    for _ in range(3):
        server.act(agent, "CHANGE_PERMISSION")


def populate(server: Server) -> None:
    """Agents at every risk level, the longest rule ids and agent ids a layout must hold."""
    shut_down(server, "rogue-agent")
    server.act("calm-agent", "DELETE_RECORD")                                   # 30: green
    server.act("exporter", "EXPORT_DATA", destination_type="external",
               data_classification="sensitive")                                 # 80: amber
    server.act("payer", "APPROVE_TRANSACTION", amount=100)
    server.act(LONG_AGENT, "ACCESS_EXTERNAL_SERVICE", data_classification="sensitive")
    server.act(HOSTILE_AGENT, "MODIFY_RECORD", data_classification="sensitive",
               policy_context={"sensitive_record_update_requires_review": True})
    for _ in range(5):
        server.act("full-agent", "FILE_WRITE")
    server.act("full-agent", "DELETE_RECORD")
    server.act("full-agent", "ACCESS_EXTERNAL_SERVICE", data_classification="sensitive")  # 100


def block_stream(page: Page) -> None:
    """Requests to the event stream never get an answer (a slow or blocked proxy)."""
    page.route("**/v1/events/stream*", lambda route: None)


# ------------------------------------------------------------------- the server's first paint

def test_dashboard_html_carries_the_first_snapshot(own_server: Server) -> None:
    shut_down(own_server, "rogue-agent")
    own_server.act("calm-agent", "DELETE_RECORD")
    response = own_server.get("/dashboard")
    assert response.status == 200
    page = response.text
    assert 'data-agent="rogue-agent" class="shut-down"' in page
    assert 'data-agent="calm-agent"' in page
    assert 'id="count-events">4<' in page and 'id="count-shutdown">1<' in page
    assert 'id="count-agents">2<' in page and 'id="count-blocked">3<' in page
    assert "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS" in page
    assert ">snapshot</div>" in page and "connecting" not in page
    config = json.loads(re.search(r'<script id="config" type="application/json">(.*?)</script>',
                                  page, re.S).group(1))  # type: ignore[union-attr]
    snapshot = config["snapshot"]
    assert snapshot["head"] == own_server.head()
    assert [r["seq"] for r in snapshot["events"]] == list(range(1, snapshot["head"] + 1))
    assert snapshot["counts"] == {"events": 4, "agents": 2, "active": 1, "shut_down": 1,
                                  "blocked": 3}


def test_agent_ids_cannot_break_out_of_the_page(own_server: Server) -> None:
    shut_down(own_server, SCRIPT_AGENT)
    page = own_server.get("/dashboard").text
    assert SCRIPT_AGENT not in page
    assert str(escape(SCRIPT_AGENT)) in page            # in the table, as text
    config = page.split('<script id="config" type="application/json">', 1)[1]
    assert "</script>" not in config.split("</script>", 1)[0]        # the JSON stays one script


def test_the_snapshot_starts_at_the_last_reset_of_every_agent(own_server: Server) -> None:
    shut_down(own_server, "before-reset")
    assert own_server.post("/v1/reset", token=TOKEN).status == 200
    own_server.act("after-reset", "FILE_READ")
    page = own_server.get("/dashboard").text
    config = json.loads(page.split('type="application/json">', 1)[1].split("</script>", 1)[0])
    events = config["snapshot"]["events"]
    assert [(r["kind"], r.get("agent")) for r in events] == [("reset", None),
                                                             ("decision", "after-reset")]
    assert config["snapshot"]["counts"]["events"] == 4  # counts cover the whole log
    assert 'data-agent="before-reset">' in page  # known, and reset


# ---------------------------------------------------------------------------- in the browser

@pytest.mark.slow
def test_first_load_shows_the_snapshot_before_the_stream_answers(own_server: Server,
                                                                 pages: Pages,
                                                                 tmp_path: Path) -> None:
    populate(own_server)
    expected = {"count-events": "15", "count-agents": "7", "count-active": "6",
                "count-shutdown": "1", "count-blocked": "3"}
    for javascript in (False, True):
        page = pages.open(width=1400, javascript=javascript)
        block_stream(page)
        page.goto(own_server.url + "/dashboard", wait_until="domcontentloaded")
        counts = {key: page.text_content(f"#{key}") for key in expected}
        assert counts == expected, (javascript, counts)
        assert page.text_content("#live") == "snapshot"
        assert page.locator("#agents tbody tr").count() == 7
        assert page.locator("#events tbody tr").count() == 16   # and the policy load
        assert page.get_attribute("#agents tr[data-agent='rogue-agent']", "class") == "shut-down"
        screenshot(page, tmp_path / f"first-load-js-{javascript}.png")
        assert not pages.errors(page)


ROWS = """(selector) => [...document.querySelectorAll(selector)].map((row) => ({
    attributes: [...row.attributes].map((a) => [a.name, a.value.trim()]).sort(),
    cells: [...row.cells].map((cell) => cell.textContent.trim()),
    levels: [...row.querySelectorAll('.bar i')].map((bar) => [bar.className, bar.style.width])}))"""


@pytest.mark.slow
def test_the_script_renders_the_rows_the_server_rendered(own_server: Server,
                                                         pages: Pages) -> None:
    populate(own_server)
    own_server.post("/v1/agents/calm-agent/reset", token=TOKEN)
    rendered = []
    for javascript in (False, True):
        page = pages.open(width=1400, javascript=javascript)
        block_stream(page)
        page.goto(own_server.url + "/dashboard")   # the script renders before "load"
        rendered.append((page.evaluate(ROWS, "#agents tbody tr"),
                         page.evaluate(ROWS, "#events tbody tr"),
                         page.text_content(".counts")))
    assert rendered[0] == rendered[1]
    levels = {row["cells"][0]: row["levels"][0] for row in rendered[0][0]}
    assert levels["calm-agent"] == ["", "0%"] and levels["exporter"] == ["warn", "80%"]
    assert levels["full-agent"] == ["bad", "100%"] and levels["payer"] == ["", "0%"]


@pytest.fixture
def dashboard(own_server: Server, pages: Pages, tmp_path: Path) -> Iterator[Page]:
    """The live dashboard (event stream on) of a fresh server."""
    own_server.act("calm-agent", "DELETE_RECORD")
    page = pages.open(own_server.url + "/dashboard", width=1400, height=1000)
    page.wait_for_function("() => document.getElementById('live').textContent === 'live'",
                           timeout=10_000)
    page.wait_for_function("() => " + agent_row("calm-agent") + " !== null")
    yield page
    screenshot(page, tmp_path / "dashboard-final.png")


@pytest.mark.slow
def test_dashboard_updates_live_and_highlights_shut_down_agents(
        own_server: Server, dashboard: Page, pages: Pages, tmp_path: Path) -> None:
    page = dashboard
    assert page.text_content("#count-events") == "1"
    before = page.locator("#events tbody tr").count()

    event = own_server.act("fresh-agent", "CHANGE_PERMISSION")  # posted by the test, over HTTP
    assert event["decision"] == "Blocked"
    page.wait_for_function("() => " + agent_row("fresh-agent") + " !== null", timeout=5_000)
    page.wait_for_function(f"() => document.querySelectorAll('#events tbody tr').length === "
                           f"{before + 1}", timeout=5_000)
    newest = page.evaluate("[...document.querySelectorAll('#events tbody tr')[0].cells]"
                           ".map(c => c.textContent)")
    assert newest[2:5] == ["fresh-agent", "CHANGE_PERMISSION", "Blocked"]
    assert newest[5] == "BLOCK_PERMISSION_CHANGE"
    page.wait_for_function("() => document.getElementById('count-events').textContent === '2'")
    assert page.evaluate(agent_row("fresh-agent") + ".cells[2].textContent") == "1/3"
    screenshot(page, tmp_path / "dashboard-live.png")

    normal = page.evaluate(f"getComputedStyle({agent_row('calm-agent')}.cells[0]).backgroundColor")
    for _ in range(2):
        own_server.act("fresh-agent", "CHANGE_PERMISSION")
    assert server_agent(own_server, "fresh-agent")["status"] == "shut_down"
    page.wait_for_function("() => " + agent_row("fresh-agent") + ".classList.contains('shut-down')",
                           timeout=5_000)
    row = agent_row("fresh-agent")
    assert page.evaluate(f"{row}.querySelector('.status').textContent") == "shut down"
    highlighted = page.evaluate(f"getComputedStyle({row}.cells[0]).backgroundColor")
    assert highlighted != normal, "the shut-down row looks like any other"
    # shut-down agents are listed first, and counted
    assert page.evaluate("document.querySelector('#agents tbody tr').dataset.agent") == \
        "fresh-agent"
    page.wait_for_function("() => document.getElementById('count-shutdown').textContent === '1'")
    assert page.text_content("#count-active") == "1"
    assert page.text_content("#count-blocked") == "3"
    png = screenshot(page, tmp_path / "dashboard-shutdown.png")
    assert png_region_stats(pages, png, 0, 0, 1400, 1000)["colours"] > 50
    # the inspector loads the whole record of a clicked event
    page.click("#events tbody tr:first-child")
    page.wait_for_selector("#inspector-trace li")
    inspector = page.text_content("#inspector") or ""
    assert "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS" in inspector
    assert "Tool invoked: CHANGE_PERMISSION" in inspector and "Explanation" in inspector
    assert not pages.errors(page)


@pytest.mark.slow
def test_dashboard_reset_button_asks_for_the_operator_token(
        own_server: Server, dashboard: Page, pages: Pages, tmp_path: Path) -> None:
    page = dashboard
    for agent in ("rogue-agent", "other-agent"):
        shut_down(own_server, agent)
    for agent in ("rogue-agent", "other-agent"):
        page.wait_for_function("() => " + agent_row(agent) + "?.classList.contains('shut-down')")
    head = own_server.head()
    prompts: list[str] = []
    alerts: list[str] = []
    token = ["not-the-token"]

    def answer(dialog: Any) -> None:
        if dialog.type == "prompt":
            prompts.append(dialog.message)
            dialog.accept(token[0])
        else:
            alerts.append(dialog.message)
            dialog.accept()

    page.on("dialog", answer)
    # a wrong token: the page says the reset was refused, and nothing is reset
    page.click("#agents tr[data-agent='rogue-agent'] button")
    deadline = time.monotonic() + 5
    while not alerts and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert alerts and "Reset refused" in alerts[0] and "token" in alerts[0], alerts
    assert prompts == ['Operator token to reset agent "rogue-agent":']
    assert server_agent(own_server, "rogue-agent")["status"] == "shut_down"
    assert own_server.head() == head, "a refused reset wrote a record"
    assert page.evaluate(agent_row("rogue-agent") + ".classList.contains('shut-down')")
    screenshot(page, tmp_path / "dashboard-reset-refused.png")

    # the right token: the agent is reset on the server, and the page follows
    prompts.clear()
    alerts.clear()
    token[0] = TOKEN
    page.click("#agents tr[data-agent='rogue-agent'] button")
    state: dict[str, Any] = {}
    for _ in range(50):
        state = server_agent(own_server, "rogue-agent")
        if state["status"] == "active":
            break
        time.sleep(0.1)
    assert state == {"agent_id": "rogue-agent", "cumulative_risk": 0, "blocked_attempts": 0,
                     "status": "active", "known": True}
    assert prompts == ['Operator token to reset agent "rogue-agent":']
    page.wait_for_function(f"() => !{agent_row('rogue-agent')}.classList.contains('shut-down')")
    row = agent_row("rogue-agent")
    assert page.evaluate(f"{row}.cells[2].textContent") == "0/3"
    assert page.evaluate(f"{row}.querySelector('.status').textContent") == "active"
    page.wait_for_function("() => [...document.querySelectorAll('#events tbody tr')].some(r => "
                           "r.cells[2].textContent === 'rogue-agent' && "
                           "r.cells[3].textContent === 'reset')")
    assert alerts == []
    # only that agent: the other one is still shut down, on the server and on the page
    assert server_agent(own_server, "other-agent")["status"] == "shut_down"
    assert page.evaluate(agent_row("other-agent") + ".classList.contains('shut-down')")
    page.wait_for_function("() => document.getElementById('count-shutdown').textContent === '1'")
    screenshot(page, tmp_path / "dashboard-reset.png")
    assert pages.errors(page) == ["console: Failed to load resource: the server responded with a "
                                  "status of 401 (Unauthorized)"]   # the refused reset, only


# ------------------------------------------------------------------------------------ layout

CLIPPED = """() => [...document.querySelectorAll('.scroll, .panel, main, body')]
  .filter((e) => e.offsetParent !== null || e === document.body)
  .filter((e) => e.scrollWidth > e.clientWidth + 1)
  .map((e) => [e.className || e.id || e.tagName, e.scrollWidth, e.clientWidth])"""
"""Visible containers whose content is wider than they are: a clipped (or scrolled) column."""

BOXES = "header > *, .counts > .count, main:not([hidden]) > section > .panel"

WRAPPED = """(selector) => {
  const wrapped = [];
  for (const cell of document.querySelectorAll(selector)) {
    if (cell.offsetParent === null) continue;
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.textContent.trim() || node.parentElement.closest('.id')) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      const tops = [...range.getClientRects()].filter((r) => r.width > 0).map((r) => r.top);
      if (tops.length && Math.max(...tops) - Math.min(...tops) > 2) wrapped.push(node.textContent);
    }
  }
  return wrapped;
}"""
"""Text in the selected cells laid out on more than one line (agent ids may wrap: they are
whatever clients send)."""


@pytest.mark.slow
@pytest.mark.parametrize("width", [1280, 1920, 390])
def test_layout_holds_at_desktop_and_phone_widths(own_server: Server, pages: Pages,
                                                  tmp_path: Path, width: int) -> None:
    populate(own_server)
    for _ in range(30):
        own_server.act("payer", "APPROVE_TRANSACTION", amount=10)  # a long event table
    page = pages.open(own_server.url + "/dashboard", width=width, height=1000)
    page.wait_for_function("() => document.getElementById('live').textContent === 'live'")
    page.click(f"#agents tr[data-agent='{LONG_AGENT}'] td:first-child")   # the chart too
    for view in ("live", "impact"):
        if view == "impact":
            page.click("#tab-impact")
            page.wait_for_function("() => document.getElementById('impact-status').textContent"
                                   ".startsWith('as of')")
        page.wait_for_timeout(150)
        screenshot(page, tmp_path / f"{view}-{width}.png", full_page=True)
        assert page.evaluate(OVERLAPS, BOXES) == [], (view, width)
        assert page.evaluate("document.documentElement.scrollWidth") <= width, \
            "the page scrolls sideways"
        clipped = page.evaluate(CLIPPED)
        if width >= 1280:
            assert clipped == [], (view, width, clipped)
        else:   # a phone: wide tables scroll inside their panel, never the page
            assert all(name == "scroll" for name, _, _ in clipped), clipped
        wrapped = page.evaluate(WRAPPED, "main:not([hidden]) td")
        assert wrapped == [], f"cell text wrapped onto several lines: {wrapped[:5]}"


@pytest.mark.slow
def test_scrollbars_are_dark(own_server: Server, pages: Pages, tmp_path: Path) -> None:
    for number in range(40):
        own_server.act(f"agent-{number:02d}", "FILE_READ")
    page = pages.open(own_server.url + "/dashboard", width=1280, height=900)
    scroller = page.locator("#events-panel .scroll")
    size = scroller.evaluate("(e) => ({scroll: e.scrollHeight, client: e.clientHeight, "
                             "bar: e.offsetWidth - e.clientWidth, width: e.offsetWidth})")
    assert size["scroll"] > size["client"], "the event table is expected to scroll"
    png = screenshot(page, tmp_path / "events-scroll.png", element=scroller)
    if size["bar"] > 0:   # a classic scrollbar takes room: look at its pixels
        stats = png_region_stats(pages, png, size["width"] - size["bar"], 40, size["bar"], 200)
        assert stats["luma"] < 90, f"a light scrollbar on the dark theme: {stats}"
    assert page.evaluate("getComputedStyle(document.documentElement).colorScheme") == "dark"
    assert scroller.evaluate("(e) => getComputedStyle(e).scrollbarColor") != "auto"


@pytest.mark.slow
def test_risk_chart_has_axes_and_labels(own_server: Server, pages: Pages,
                                        tmp_path: Path) -> None:
    for action in ("DELETE_RECORD", "DELETE_RECORD", "DELETE_RECORD", "DELETE_RECORD"):
        own_server.act("deleter", action)      # 30, 60, 90, then blocked at 120 > 100
    page = pages.open(own_server.url + "/dashboard", width=1280, height=900)
    page.click("#agents tr[data-agent='deleter'] td:first-child")
    page.wait_for_function("() => document.getElementById('chart-agent').textContent === 'deleter'")
    page.wait_for_timeout(100)
    chart = page.evaluate("""() => {
        const svg = document.getElementById('chart'), box = svg.getBoundingClientRect();
        const texts = (cls) => [...svg.querySelectorAll('text.' + cls)].map((t) => t.textContent);
        const outside = [...svg.querySelectorAll('text')].filter((t) => {
          const r = t.getBoundingClientRect();
          return r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.top < box.top - 0.5
            || r.bottom > box.bottom + 0.5; }).map((t) => t.textContent);
        return {y: texts('y-tick'), x: texts('x-tick'), xLabel: texts('x-label'),
                yLabel: texts('y-label'), threshold: texts('threshold-label'), outside,
                points: svg.querySelectorAll('circle').length,
                axes: svg.querySelectorAll('line.axis').length};
    }""")
    assert chart["y"][0] == "0" and "100" in chart["y"], chart
    assert chart["x"][0] == "#2" and chart["x"][-1] == "#5", chart
    assert chart["xLabel"] == ["audit sequence number"] and chart["yLabel"] == ["cumulative risk"]
    assert chart["threshold"] == ["threshold 100"] and chart["points"] == 4
    assert chart["axes"] >= 2 and chart["outside"] == [], chart
    assert page.evaluate(OVERLAPS, "#chart text") == []
    screenshot(page, tmp_path / "chart.png", element=page.locator("#chart-panel"))


# ------------------------------------------------------------------------------------ impact

@pytest.mark.slow
def test_impact_tab_shows_what_was_prevented_and_exports_it(own_server: Server, pages: Pages,
                                                           tmp_path: Path) -> None:
    own_server.act("payer", "APPROVE_TRANSACTION", amount=10)          # allowed: not counted
    for amount in (100, 250.5, 40):
        own_server.act("rogue", "CHANGE_PERMISSION", amount=amount)   # 2 blocked, 1 shutdown
    own_server.act("rogue", "APPROVE_TRANSACTION", amount=1000)       # denied: shut down
    page = pages.open(own_server.url + "/dashboard", width=1400, downloads=True)
    assert page.is_hidden("#view-impact")
    page.click("#tab-impact")
    page.wait_for_function("() => document.getElementById('impact-status').textContent"
                           ".startsWith('as of')")
    assert page.is_visible("#view-impact") and page.is_hidden("#view-live")
    assert page.get_attribute("#tab-impact", "aria-selected") == "true"
    assert page.evaluate("location.hash") == "#impact"
    values = {key: page.get_attribute(f"#impact-{key}", "data-value")
              for key in ("prevented", "blocked", "shut-down", "exposure", "agents")}
    assert values == {"prevented": "4", "blocked": "2", "shut-down": "2",
                      "exposure": "1390.5", "agents": "1"}
    assert page.text_content("#impact-exposure") == "1,390.5"
    threats = page.evaluate("[...document.querySelectorAll('#impact-threats tbody tr')]"
                            ".map(r => [...r.cells].map(c => c.textContent))")
    assert threats == [["Agent Shutdown", "0", "2", "1,040"],
                       ["Privilege Escalation", "2", "0", "350.5"]]
    assert page.text_content("#impact-agents-table tbody tr td") == "rogue"
    bars = page.locator("#impact-chart-actions rect").count()
    assert bars == 2   # one day: a blocked bar and a shut-down bar stacked
    screenshot(page, tmp_path / "impact.png", full_page=True)

    with page.expect_download() as waiting:
        page.click("#view-impact a.csv[data-table='by_rule']")
    download = waiting.value
    assert download.suggested_filename == "sentra-impact-by_rule-day.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(), newline="")))
    assert [(r["rule_id"], r["prevented"], r["exposure_prevented"]) for r in rows] == [
        ("BLOCK_PERMISSION_CHANGE", "2", "350.5"),
        ("AGENT_ALREADY_SHUT_DOWN", "1", "1000"),
        ("AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS", "1", "40")]
    with page.expect_download() as waiting:
        page.click("#impact-json")
    exported = json.loads(Path(waiting.value.path()).read_text())
    assert exported["totals"]["exposure_prevented"] == 1390.5
    assert exported == json.loads(urllib.request.urlopen(
        own_server.url + "/v1/impact?field=amount&bucket=day&format=json").read())

    # settings: another field and bucket; the numbers and the links follow
    page.fill("#impact-field", "context.max_approval_amount")
    page.select_option("#impact-bucket", "hour")
    page.click("#impact-settings button[type=submit]")
    page.wait_for_function("() => document.getElementById('impact-exposure-label').textContent"
                           ".includes('context.max_approval_amount')")
    assert page.get_attribute("#impact-exposure", "data-value") == "0"
    assert "bucket=hour" in (page.get_attribute("#impact-csv", "href") or "")
    # a decision while the tab is open refreshes it
    own_server.act("rogue", "DELETE_RECORD", amount=5)
    page.wait_for_function("() => document.getElementById('impact-prevented').dataset.value === '5'",
                           timeout=10_000)
    # back to the live view
    page.click("#tab-live")
    page.wait_for_selector("#view-live", state="visible")   # the tab switches on hashchange
    assert page.is_hidden("#view-impact")
    assert not pages.errors(page)


@pytest.mark.slow
def test_impact_opens_from_its_address_with_its_settings(own_server: Server,
                                                         pages: Pages) -> None:
    own_server.act("rogue", "CHANGE_PERMISSION", amount=3)
    page = pages.open(own_server.url + "/dashboard?field=amount&bucket=week#impact")
    page.wait_for_function("() => document.getElementById('impact-status').textContent"
                           ".startsWith('as of')")
    assert page.input_value("#impact-bucket") == "week"
    assert page.get_attribute("#impact-exposure", "data-value") == "3"
    assert not pages.errors(page)
