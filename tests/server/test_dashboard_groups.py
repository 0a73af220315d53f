"""Agents of a group are shown against their group's settings (docs/server.md): the agent
views carry each agent's own threshold and strikes, and the dashboard's risk bars, strike
counts and event lines use them, for agents listed at load and for those that arrive live."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.playwright_fixtures import Pages, screenshot
from tests.server.conftest import TOKEN, Serve, Server

POLICY = '''policy grouped version "1" {
  risk_threshold 100
  strikes 3
}
group trusted {
  agents "ops-*"
  risk_threshold 200
  strikes 5
  limit 10 per 1h
}
action EXPORT {
  allow risk 60 as EXPORT_OK "Export allowed."
}
otherwise block as OTHER "Not covered."
'''


@pytest.fixture
def grouped(serve: Serve) -> Server:
    return serve(POLICY, "grouped.sentra")


def export(server: Server, agent: str) -> None:
    answer = server.post("/v1/decide", {"agent_id": agent, "action": "EXPORT", "fields": {}},
                         token=TOKEN)
    assert answer.status == 200, answer.text


def test_agent_views_carry_their_groups_settings(grouped: Server) -> None:
    for agent in ("ops-1", "web-1"):
        export(grouped, agent)
    page = grouped.get("/v1/agents", token=TOKEN).json()
    assert (page["risk_threshold"], page["strikes"]) == (100, 3)   # the policy's own
    seen = {a["agent_id"]: (a["group"], a["risk_threshold"], a["strikes"]) for a in page["agents"]}
    assert seen == {"ops-1": ("trusted", 200, 5), "web-1": ("", 100, 3)}
    assigned = grouped.request("PUT", "/v1/agents/web-1/group",
                               {"group": "trusted", "operator": "alice"}, token=TOKEN)
    assert assigned.status == 200, assigned.text
    one = grouped.get("/v1/agents/web-1", token=TOKEN).json()
    assert (one["group"], one["risk_threshold"], one["strikes"]) == ("trusted", 200, 5)
    # the page as the server renders it (before any script) says the same
    html = grouped.get("/dashboard", token=TOKEN).text
    assert '<span class="id">ops-1</span> <span class="group">trusted</span>' in html
    assert " 60/200" in html and "0/5" in html and " 60/100" in html
    assert 'title="10 per 1h for all actions in group `trusted`: 1"' in html


@pytest.mark.slow
def test_the_dashboard_shows_each_agent_against_its_groups_threshold(
        grouped: Server, pages: Pages) -> None:
    export(grouped, "ops-1")
    export(grouped, "web-1")
    page = pages.open(grouped.url + "/dashboard", width=1400, height=1000)
    page.wait_for_function("() => document.getElementById('live').textContent === 'live'",
                           timeout=10_000)

    def cells(agent: str) -> list[str]:
        found: list[str] = page.evaluate(
            f"[...document.querySelector(\"#agents tr[data-agent='{agent}']\").cells]"
            ".map(c => c.textContent.trim())")
        return found

    assert cells("ops-1")[:3] == ["ops-1 trusted", "60/200", "0/5"]
    assert cells("web-1")[:3] == ["web-1", "60/100", "0/3"]
    title = page.get_attribute("#agents tr[data-agent='ops-1']", "title")
    assert title == "10 per 1h for all actions in group `trusted`: 1"
    export(grouped, "ops-2")                                 # arrives live, by the stream
    page.wait_for_function("() => document.querySelector(\"#agents tr[data-agent='ops-2']\") !== null")
    assert cells("ops-2")[:3] == ["ops-2 trusted", "60/200", "0/5"]
    page.wait_for_function("() => [...document.querySelectorAll('#events tbody tr')].some(r => "
                           "r.cells[2].textContent === 'ops-2' && "
                           "r.cells[6].textContent === '60 → 60/200')")


def test_metrics_give_each_groups_threshold(grouped: Server) -> None:
    text = grouped.get("/metrics", token=TOKEN).text
    assert "\nsentra_risk_threshold 100\n" in text
    assert '\nsentra_group_risk_threshold{group="trusted"} 200\n' in text


def assign(server: Server, agent: str, group: str | None, operator: str) -> None:
    answer = server.request("PUT", f"/v1/agents/{agent}/group",
                            {"group": group, "operator": operator}, token=TOKEN)
    assert answer.status == 200, answer.text


def test_a_group_assignment_is_an_event_row_of_its_own(grouped: Server) -> None:
    """docs/server.md, "Live": an operator's assignment is a `group` row (agent, `group`, the
    group and the operator), not taken for a policy load."""
    export(grouped, "web-1")
    assign(grouped, "web-1", "trusted", "alice")
    assign(grouped, "web-1", None, "bob")
    html = grouped.get("/dashboard", token=TOKEN).text
    assert ('<td><span class="id">web-1</span></td><td>group</td>'
            '<td>assigned to trusted by alice</td>') in html
    assert ('<td><span class="id">web-1</span></td><td>group</td>'
            '<td>assignment cleared by bob</td>') in html
    assert html.count("<td>policy load</td>") == 1   # the policy loaded at start only


@pytest.mark.slow
def test_the_dashboard_assigns_an_agents_group(grouped: Server, pages: Pages,
                                               tmp_path: Path) -> None:
    """docs/server.md, "Live": the `group` button of an agent's row asks for the group (one the
    policy declares; empty clears the operator's assignment), the operator token and the
    operator's name; the row then follows the live stream's `group` record."""
    export(grouped, "web-1")
    page = pages.open(grouped.url + "/dashboard", width=1400, height=1000)
    page.wait_for_function("() => document.getElementById('live').textContent === 'live'",
                           timeout=10_000)
    prompts: list[str] = []
    alerts: list[str] = []
    answers: list[str] = []

    def answer(dialog: Any) -> None:
        if dialog.type == "prompt":
            prompts.append(dialog.message)
            dialog.accept(answers.pop(0))
        else:
            alerts.append(dialog.message)
            dialog.accept()

    page.on("dialog", answer)
    row = "#agents tr[data-agent='web-1']"

    def cells() -> list[str]:
        found: list[str] = page.evaluate(
            f"[...document.querySelector(\"{row}\").cells].map(c => c.textContent.trim())")
        return found

    def agent() -> dict[str, Any]:
        state: dict[str, Any] = grouped.get("/v1/agents/web-1", token=TOKEN).json()
        return state

    answers[:] = ["trustd", TOKEN, "alice"]          # a typo: refused with "did you mean"
    page.click(f"{row} button.assign-group")
    deadline = time.monotonic() + 5
    while not alerts and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert alerts and "Group assignment refused" in alerts[0] and "trusted" in alerts[0], alerts
    assert prompts[0] == 'Group for agent "web-1" (trusted; empty: the policy decides):'
    assert agent()["assigned_group"] is None

    alerts.clear()
    answers[:] = ["trusted", TOKEN, "alice"]
    page.click(f"{row} button.assign-group")
    page.wait_for_function(f"() => document.querySelector(\"{row}\").cells[0].textContent"
                           " === 'web-1 trusted'")
    assert cells()[:3] == ["web-1 trusted", "60/200", "0/5"]
    page.wait_for_function("() => document.querySelector('#chart .threshold-label').textContent"
                           " === 'threshold 200'")   # the chart's line: the agent's group's
    screenshot(page, tmp_path / "dashboard-group-assigned.png")
    assert (agent()["group"], agent()["assigned_group"]) == ("trusted", "trusted")
    page.wait_for_function("() => [...document.querySelectorAll('#events tbody tr')].some(r => "
                           "r.cells[3].textContent === 'group' && "
                           "r.cells[4].textContent === 'assigned to trusted by alice')")

    answers[:] = ["", TOKEN, "bob"]                   # cleared: the policy's patterns decide
    page.click(f"{row} button.assign-group")
    page.wait_for_function(f"() => document.querySelector(\"{row}\").cells[0].textContent"
                           " === 'web-1'")
    assert cells()[:3] == ["web-1", "60/100", "0/3"]
    assert agent()["assigned_group"] is None
    assert not alerts
    assert [error for error in pages.errors(page) if "status of 422" not in error] == []
