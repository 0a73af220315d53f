"""The dashboard's review panel in headless Chromium (docs/server.md, "Dashboard"): pending
tickets appear live, approve and deny ask for the operator token, the operator's name and a
note, and the server's verdict follows (the ticket leaves the list, its step is an event)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.playwright_fixtures import Pages, screenshot
from tests.server.conftest import TOKEN, Serve, Server

if TYPE_CHECKING:
    from playwright.sync_api import Page

POLICY = '''policy refunds version "1" {
  risk_threshold 100
}
input {
  amount: number?
}
action ISSUE_REFUND {
  when amount > 500 review risk 60 as REVIEW_LARGE "Refund of {amount} needs a human."
  allow risk 10 as SMALL "Small refund."
}
otherwise block as OTHER "Not covered."
'''


@pytest.fixture
def reviewing(serve: Serve) -> Server:
    return serve(POLICY, "refunds.sentra")


def hold(server: Server, agent: str, amount: int) -> str:
    answer = server.post("/v1/decide", {"agent_id": agent, "action": "ISSUE_REFUND",
                                        "fields": {"amount": amount}})
    assert answer.status == 200, answer.text
    ticket: str = answer.json()["decision"]["ticket"]
    return ticket


def rows(page: Page) -> list[str]:
    found: list[str] = page.evaluate(
        "[...document.querySelectorAll('#reviews tbody tr')].map(r => r.dataset.ticket)")
    return found


def wait_until(page: Page, check: Any, timeout: float = 15.0) -> None:
    """Wait for ``check`` while the page runs: Playwright's sync API hands dialogs to their
    handler only inside its own calls, so the wait is one (not a sleep)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        page.wait_for_timeout(50)


@pytest.mark.slow
def test_the_review_panel_lists_pending_tickets_and_judges_them(
        reviewing: Server, pages: Pages, tmp_path: Path) -> None:
    server = reviewing
    first = hold(server, "agent-1", 700)
    page = pages.open(server.url + "/dashboard", width=1400, height=1000)
    page.wait_for_function("() => document.getElementById('live').textContent === 'live'",
                           timeout=10_000)
    page.wait_for_function("() => document.querySelectorAll('#reviews tbody tr').length === 1")
    assert rows(page) == [first]
    cells = page.evaluate("[...document.querySelector('#reviews tbody tr').cells]"
                          ".map(c => c.textContent)")
    assert cells[1:6] == ["agent-1", "ISSUE_REFUND", "REVIEW_LARGE", "60", '{"amount":700}']
    assert page.is_hidden("#reviews-empty")
    second = hold(server, "agent-2", 900)                  # arrives live, by the stream
    page.wait_for_function("() => document.querySelectorAll('#reviews tbody tr').length === 2")
    assert rows(page) == [first, second]
    # held actions are decisions, not prevented ones (as the Impact view counts)
    assert page.text_content("#count-events") == "2"
    assert page.text_content("#count-blocked") == "0"
    screenshot(page, tmp_path / "reviews-pending.png")

    answers = iter(["not-the-token", "alice", "looks right"])
    prompts: list[str] = []
    alerts: list[str] = []

    def dialog(box: Any) -> None:
        if box.type == "prompt":
            prompts.append(box.message)
            box.accept(next(answers))
        else:
            alerts.append(box.message)
            box.accept()

    page.on("dialog", dialog)
    page.click(f"#reviews tr[data-ticket='{first}'] button.approve")
    wait_until(page, lambda: bool(alerts))
    assert "Review refused" in alerts[0] and "token" in alerts[0], alerts
    assert prompts == [f"Operator token to approve ticket {first}:",
                       "Your name, recorded as the operator:",
                       "A note for the audit log (optional):"]
    assert server.get(f"/v1/reviews/{first}").json()["status"] == "pending"

    answers = iter([TOKEN, "alice", "looks right"])
    alerts.clear()
    page.click(f"#reviews tr[data-ticket='{first}'] button.approve")
    wait_until(page, lambda: server.get(f"/v1/reviews/{first}").json()["status"] == "approved")
    ticket = server.get(f"/v1/reviews/{first}").json()
    assert (ticket["operator"], ticket["note"]) == ("alice", "looks right")
    page.wait_for_function("() => document.querySelectorAll('#reviews tbody tr').length === 1")
    assert rows(page) == [second]
    page.wait_for_function("() => [...document.querySelectorAll('#events tbody tr')].some(r => "
                           "r.cells[4].textContent === 'review approved by alice')")
    answers = iter([TOKEN, "bob", ""])
    page.click(f"#reviews tr[data-ticket='{second}'] button.deny")
    page.wait_for_function("() => document.querySelectorAll('#reviews tbody tr').length === 0")
    assert page.is_visible("#reviews-empty")
    assert server.get(f"/v1/reviews/{second}").json()["status"] == "denied"
    page.wait_for_function(
        "() => document.querySelector(\"#agents tr[data-agent='agent-2']\").cells[2].textContent "
        "=== '1/3'")
    # the approval and the denial are decisions; the denial is a prevented one
    page.wait_for_function("() => document.getElementById('count-events').textContent === '4'")
    assert page.text_content("#count-blocked") == "1"
    assert alerts == []
    screenshot(page, tmp_path / "reviews-judged.png")
    assert pages.errors(page) == ["console: Failed to load resource: the server responded with a "
                                  "status of 401 (Unauthorized)"]   # the refused approval, only


@pytest.mark.slow
def test_a_policy_without_review_has_no_review_panel(own_server: Server, pages: Pages) -> None:
    page = pages.open(own_server.url + "/dashboard", width=1400, height=1000)
    page.wait_for_function("() => document.getElementById('live').textContent === 'live'",
                           timeout=10_000)
    assert page.is_hidden("#reviews-panel")
    assert not pages.errors(page)
