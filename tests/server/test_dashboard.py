"""The dashboard in headless Chromium: it loads and shows agents and events from the server.

``--dump-dom`` waits for open requests, so the first test loads the page with ``?live=0`` (no
event stream). The others drive the live page over the DevTools protocol (tests/browser.py):
decisions posted over HTTP appear through the event stream, shut-down agents are highlighted,
and the reset button asks for the operator token. Screenshots stay in each test's tmp_path."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import CHROMIUM as CDP_CHROMIUM
from tests.browser import SKIP_REASON, Chromium, Page
from tests.server.conftest import TOKEN, Server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_dashboard_shows_agents_and_events(own_server: Server, tmp_path: Path) -> None:
    for _ in range(3):
        own_server.act("rogue-agent", "CHANGE_PERMISSION")
    own_server.act("calm-agent", "DELETE_RECORD")
    result = subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=5000", "--dump-dom", own_server.url + "/dashboard?live=0"],
        check=False, capture_output=True, text=True, timeout=60)
    dom = result.stdout
    assert 'data-agent="rogue-agent"' in dom, result.stderr[-2000:]
    assert 'class="shut-down' in dom and 'data-agent="calm-agent"' in dom
    assert 'id="count-shutdown">1<' in dom and 'id="count-events">4<' in dom
    assert "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS" in dom


# --------------------------------------------------------------------------- live, over CDP

def agent_row(agent: str) -> str:
    return f"document.querySelector('#agents tr[data-agent={json.dumps(agent)}]')"


def server_agent(server: Server, agent: str) -> dict[str, object]:
    response = server.get(f"/v1/agents/{agent}")
    assert response.status == 200, response.text
    return dict(response.json())


@pytest.fixture
def dashboard(own_server: Server, tmp_path: Path) -> Iterator[Page]:
    """The live dashboard (event stream on) of a fresh server, in a browser closed afterwards."""
    own_server.act("calm-agent", "DELETE_RECORD")
    with Chromium(width=1400, height=1000, lifetime=60) as browser:
        page = browser.new_page()
        page.navigate(own_server.url + "/dashboard")
        page.wait_for("document.getElementById('live').textContent === 'live'", timeout=10,
                      message="the event stream connects")
        page.wait_for(agent_row("calm-agent") + " !== null", timeout=5)
        try:
            yield page
        finally:
            with contextlib.suppress(Exception):
                page.screenshot(tmp_path / "dashboard-final.png")


@pytest.mark.slow
@pytest.mark.skipif(CDP_CHROMIUM is None, reason=SKIP_REASON)
def test_dashboard_updates_live_and_highlights_shut_down_agents(
        own_server: Server, dashboard: Page, tmp_path: Path) -> None:
    page = dashboard
    assert page.evaluate("document.getElementById('count-events').textContent") == "1"
    before = page.evaluate("document.querySelectorAll('#events tbody tr').length")

    event = own_server.act("fresh-agent", "CHANGE_PERMISSION")  # posted by the test, over HTTP
    assert event["decision"] == "Blocked"
    page.wait_for(agent_row("fresh-agent") + " !== null", timeout=5,
                  message="the new agent appears without a reload")
    page.wait_for(f"document.querySelectorAll('#events tbody tr').length === {before + 1}",
                  timeout=5, message="the new event appears")
    newest = page.evaluate("[...document.querySelectorAll('#events tbody tr')[0].cells]"
                           ".map(c => c.textContent)")
    assert newest[2:5] == ["fresh-agent", "CHANGE_PERMISSION", "Blocked"]
    assert newest[5] == "BLOCK_PERMISSION_CHANGE"
    page.wait_for("document.getElementById('count-events').textContent === '2'", timeout=5)
    assert page.evaluate(agent_row("fresh-agent") + ".cells[2].textContent") == "1/3"
    page.screenshot(tmp_path / "dashboard-live.png")

    normal = page.evaluate(f"getComputedStyle({agent_row('calm-agent')}.cells[0]).backgroundColor")
    for _ in range(2):
        own_server.act("fresh-agent", "CHANGE_PERMISSION")
    assert server_agent(own_server, "fresh-agent")["status"] == "shut_down"
    page.wait_for(agent_row("fresh-agent") + ".classList.contains('shut-down')", timeout=5,
                  message="the shut-down agent is highlighted")
    row = agent_row("fresh-agent")
    assert page.evaluate(f"{row}.querySelector('.status').textContent") == "shut down"
    highlighted = page.evaluate(f"getComputedStyle({row}.cells[0]).backgroundColor")
    assert highlighted != normal, "the shut-down row looks like any other"
    # shut-down agents are listed first, and counted
    assert page.evaluate("document.querySelector('#agents tbody tr').dataset.agent") == "fresh-agent"
    page.wait_for("document.getElementById('count-shutdown').textContent === '1'", timeout=5)
    assert page.evaluate("document.getElementById('count-active').textContent") == "1"
    page.screenshot(tmp_path / "dashboard-shutdown.png")
    png = (tmp_path / "dashboard-shutdown.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert not page.errors, page.errors


STUB_DIALOGS = """(() => {
  window.__prompts = []; window.__alerts = [];
  window.prompt = (message, value) => { window.__prompts.push(message); return %s; };
  window.alert = (message) => { window.__alerts.push(String(message)); };
  return true;
})()"""


@pytest.mark.slow
@pytest.mark.skipif(CDP_CHROMIUM is None, reason=SKIP_REASON)
def test_dashboard_reset_button_asks_for_the_operator_token(
        own_server: Server, dashboard: Page, tmp_path: Path) -> None:
    page = dashboard
    for agent in ("rogue-agent", "other-agent"):
        for _ in range(3):
            own_server.act(agent, "CHANGE_PERMISSION")
    for agent in ("rogue-agent", "other-agent"):
        page.wait_for(agent_row(agent) + "?.classList.contains('shut-down')", timeout=5)
    head = own_server.head()

    # a wrong token: the page says the reset was refused, and nothing is reset
    page.evaluate(STUB_DIALOGS % json.dumps("not-the-token"))
    page.click("#agents tr[data-agent='rogue-agent'] button")
    alert = page.wait_for("window.__alerts[0]", timeout=5, message="an error is shown")
    assert "Reset refused" in alert and "token" in alert
    assert page.evaluate("window.__prompts") == ['Operator token to reset agent "rogue-agent":']
    assert server_agent(own_server, "rogue-agent")["status"] == "shut_down"
    assert own_server.head() == head, "a refused reset wrote a record"
    assert page.evaluate(agent_row("rogue-agent") + ".classList.contains('shut-down')")
    page.screenshot(tmp_path / "dashboard-reset-refused.png")

    # the right token: the agent is reset on the server, and the page follows
    page.evaluate(STUB_DIALOGS % json.dumps(TOKEN))
    page.click("#agents tr[data-agent='rogue-agent'] button")
    page.wait_for("window.__prompts.length === 1", timeout=5)
    state = {}
    for _ in range(50):
        state = server_agent(own_server, "rogue-agent")
        if state["status"] == "active":
            break
        time.sleep(0.1)
    assert state == {"agent_id": "rogue-agent", "cumulative_risk": 0, "blocked_attempts": 0,
                     "status": "active", "known": True}
    page.wait_for(f"!{agent_row('rogue-agent')}.classList.contains('shut-down')", timeout=5,
                  message="the reset agent is no longer highlighted")
    row = agent_row("rogue-agent")
    assert page.evaluate(f"{row}.cells[2].textContent") == "0/3"
    assert page.evaluate(f"{row}.querySelector('.status').textContent") == "active"
    page.wait_for("[...document.querySelectorAll('#events tbody tr')].some(r => "
                  "r.cells[2].textContent === 'rogue-agent' && r.cells[3].textContent === 'reset')",
                  timeout=5, message="the reset event is listed")
    assert page.evaluate("window.__alerts") == []
    # only that agent: the other one is still shut down, on the server and on the page
    assert server_agent(own_server, "other-agent")["status"] == "shut_down"
    assert page.evaluate(agent_row("other-agent") + ".classList.contains('shut-down')")
    page.wait_for("document.getElementById('count-shutdown').textContent === '1'", timeout=5)
    page.screenshot(tmp_path / "dashboard-reset.png")
    assert not page.errors, page.errors
