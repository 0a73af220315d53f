"""The dashboard's reads: guarded by the read token, bounded, and run in the read thread
(docs/server.md, "The dashboard" and "Tokens").

- with a read token the page embeds no snapshot (no agent, record or count), whatever the
  request carries; ``GET /v1/dashboard/snapshot`` gives the token holder what an open page
  embeds, over the same log;
- the snapshot lists at most ``AGENTS`` agents and says where the rest start;
- ``/v1/impact``, the snapshot and the page are read in the one read thread: decisions do not
  wait for them, other reads queue behind them;
- in Chromium: the guarded page asks for the token (again when refused), then shows what the
  open page shows, sends the token on every read (the stream as ``access_token``), pages the
  agents, and its Impact tab and exports work with the token.
"""

from __future__ import annotations

import csv
import io
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from sentra_lang.server import dashboard, native
from sentra_lang.server.impact import Impact, Settings
from tests.playwright_fixtures import OVERLAPS, Pages, screenshot
from tests.server.conftest import POLICY, TOKEN, Response, Server
from tests.server.test_dashboard import LONG_AGENT, ROWS, populate, shut_down

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

READ_TOKEN = "dashboard-read-token"
FIRST_PROMPT = "Read token for this server's events and agents:"
AGAIN_PROMPT = "The server refused that read token. " + FIRST_PROMPT
REFUSED = "console: Failed to load resource: the server responded with a status of 401 " \
          "(Unauthorized)"


@pytest.fixture
def twins(tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    """An open and a guarded server over one SQLite file: one log, seen both ways. Both start
    (each writes its policy load) before a test writes anything."""
    db = tmp_path / "sentra.db"
    opened = Server(POLICY, db, TOKEN)
    guarded = Server(POLICY, db, TOKEN, read_token=READ_TOKEN)
    yield opened, guarded
    guarded.stop()
    opened.stop()


def page_config(html: str) -> dict[str, Any]:
    found = re.search(r'<script id="config" type="application/json">(.*?)</script>', html, re.S)
    assert found is not None
    return dict(json.loads(found.group(1)))


def counts_of(html: str) -> list[str]:
    return re.findall(r'<span id="count-[a-z]+">([^<]*)</span>', html)


def without_time(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in snapshot.items() if key != "rendered_at"}


# ------------------------------------------------------------------------ the page and the API

def test_a_guarded_page_embeds_no_snapshot(twins: tuple[Server, Server]) -> None:
    opened, guarded = twins
    populate(opened)
    assert "rogue-agent" in opened.get("/dashboard").text    # the same log, open
    for headers in ({}, {"Authorization": f"Bearer {READ_TOKEN}"},
                    {"Authorization": f"Bearer {TOKEN}"}):
        for path in ("/dashboard", f"/dashboard?access_token={READ_TOKEN}"):
            response = guarded.get(path, headers=headers)
            assert response.status == 200
            html = response.text
            for leak in ("rogue-agent", "calm-agent", LONG_AGENT, "BLOCK_PERMISSION_CHANGE",
                         "AGENT_SHUTDOWN", "APPROVE_TRANSACTION", "data-agent=", "data-seq="):
                assert leak not in html, (path, headers, leak)
            assert counts_of(html) == ["–"] * 5
            assert ">locked</div>" in html
            config = page_config(html)
            assert config["snapshot"] is None and config["read_token"] is True


def test_the_snapshot_endpoint_gives_what_an_open_page_embeds(
        twins: tuple[Server, Server]) -> None:
    opened, guarded = twins
    populate(opened)
    assert opened.post("/v1/agents/calm-agent/reset", token=TOKEN).status == 200
    embedded = page_config(opened.get("/dashboard").text)["snapshot"]
    assert embedded["counts"] == {"events": 15, "agents": 7, "active": 6, "shut_down": 1,
                                  "blocked": 3}
    assert guarded.get("/v1/dashboard/snapshot").status == 401
    assert guarded.get("/v1/dashboard/snapshot", token="wrong").status == 401
    for token in (READ_TOKEN, TOKEN):
        fetched = guarded.get("/v1/dashboard/snapshot", token=token)
        assert fetched.status == 200
        assert without_time(fetched.json()) == without_time(embedded)
    assert without_time(opened.get("/v1/dashboard/snapshot").json()) == without_time(embedded)


def test_impact_and_the_snapshot_take_no_token_from_the_address(
        twins: tuple[Server, Server]) -> None:
    """Only the stream reads `access_token` (a browser's EventSource cannot send headers)."""
    _, guarded = twins
    for path in ("/v1/impact", "/v1/impact?format=csv", "/v1/dashboard/snapshot"):
        separator = "&" if "?" in path else "?"
        assert guarded.get(f"{path}{separator}access_token={READ_TOKEN}").status == 401, path


def test_the_snapshot_lists_a_bounded_page_of_agents(own_server: Server,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    assert dashboard.AGENTS == native.PAGE_LIMIT == 1000     # docs/server.md says 1,000
    monkeypatch.setattr(dashboard, "AGENTS", 3)
    for name in ("agent-0", "agent-2", "agent-3"):
        own_server.act(name, "FILE_READ")
    for name in ("agent-1", "agent-4"):
        shut_down(own_server, name)
    snapshot = own_server.get("/v1/dashboard/snapshot").json()
    assert [agent["agent_id"] for agent in snapshot["agents"]] == \
        ["agent-1", "agent-0", "agent-2"]      # the first 3 by id, shut-down ones first
    assert snapshot["agents_next_after"] == "agent-2"
    assert snapshot["counts"] == {"events": 9, "agents": 5, "active": None, "shut_down": None,
                                  "blocked": 6}
    rest = own_server.get(f"/v1/agents?after={snapshot['agents_next_after']}").json()
    assert [agent["agent_id"] for agent in rest["agents"]] == ["agent-3", "agent-4"]
    html = own_server.get("/dashboard").text
    assert html.count("<tr data-agent=") == 3
    assert "The first 3 of 5 agents, by id" in html
    assert counts_of(html) == ["9", "5", "–", "–", "6"]

    monkeypatch.setattr(dashboard, "AGENTS", 5)
    complete = own_server.get("/v1/dashboard/snapshot").json()
    assert complete["agents_next_after"] is None and len(complete["agents"]) == 5
    assert complete["counts"] == {"events": 9, "agents": 5, "active": 3, "shut_down": 2,
                                  "blocked": 6}
    html = own_server.get("/dashboard").text
    assert '<p id="agents-more" class="muted" hidden>' in html
    assert counts_of(html) == ["9", "5", "3", "2", "6"]


# ------------------------------------------------------------------------------ the read thread

def in_thread(server: Server, path: str, answers: dict[str, Response]) -> threading.Thread:
    thread = threading.Thread(target=lambda: answers.setdefault(path, server.get(path)),
                              daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("path", ["/v1/impact", "/v1/impact?format=csv&table=by_rule",
                                  "/v1/dashboard/snapshot", "/dashboard"])
def test_dashboard_reads_run_in_the_read_thread(own_server: Server, agent: str, path: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """While the Impact count is held, decisions are answered (so it holds neither the event
    loop nor their threads) and another read waits (so it holds the one read thread)."""
    entered, release = threading.Event(), threading.Event()
    count = Impact.report

    def held(self: Impact, settings: Settings) -> dict[str, Any]:
        entered.set()
        assert release.wait(20)
        return count(self, settings)

    monkeypatch.setattr(Impact, "report", held)
    answers: dict[str, Response] = {}
    reading = in_thread(own_server, path, answers)
    try:
        assert entered.wait(10), "the read never started counting"
        started = time.monotonic()
        assert own_server.act(agent, "FILE_READ")["decision"] == "Allowed"
        assert own_server.post("/v1/decide", {"agent_id": agent, "action": "FILE_READ"}
                               ).status == 200
        assert own_server.get("/health").status == 200
        assert time.monotonic() - started < 5
        queued = in_thread(own_server, "/v1/events?limit=1", answers)
        queued.join(0.5)
        assert queued.is_alive(), "a read ran beside the held one: not in the read thread"
    finally:
        release.set()
    reading.join(20)
    queued.join(20)
    assert answers[path].status == 200 and answers["/v1/events?limit=1"].status == 200


# ---------------------------------------------------------------------------- in the browser

LOADED = ("() => document.getElementById('live').textContent === 'live' && "
          "document.getElementById('agents-more').hidden")


def seen(page: Page) -> tuple[Any, ...]:
    return (page.evaluate(ROWS, "#agents tbody tr"), page.evaluate(ROWS, "#events tbody tr"),
            page.text_content(".counts"))


def answering(page: Page, answers: list[str | None]) -> list[str]:
    """Answer the page's prompts with ``answers`` in turn (``None``: cancel); the prompts'
    texts are collected in the list returned."""
    prompts: list[str] = []

    def answer(dialog: Any) -> None:
        prompts.append(dialog.message)
        given = answers.pop(0)
        if given is None:
            dialog.dismiss()
        else:
            dialog.accept(given)

    page.on("dialog", answer)
    return prompts


@pytest.mark.slow
def test_a_guarded_dashboard_asks_for_the_token_then_shows_what_an_open_one_shows(
        twins: tuple[Server, Server], pages: Pages, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard, "AGENTS", 3)    # the other 4 agents are paged, with the token
    opened, guarded = twins
    populate(opened)
    reference_page = pages.open(opened.url + "/dashboard")
    reference_page.wait_for_function(LOADED)
    reference = seen(reference_page)
    assert len(reference[0]) == 7 and "7" in (reference[2] or "")

    bare = pages.open(guarded.url + "/dashboard", javascript=False)
    assert bare.locator("#agents tbody tr, #events tbody tr").count() == 0
    assert bare.text_content("#live") == "locked"
    assert [bare.text_content(f"#count-{key}") for key in ("events", "agents", "blocked")] == \
        ["–"] * 3

    page = pages.open(downloads=True)
    prompts = answering(page, ["wrong", READ_TOKEN])
    requests: list[tuple[str, str | None]] = []
    page.on("request", lambda request: requests.append(
        (request.url, request.headers.get("authorization"))))
    page.goto(guarded.url + "/dashboard")
    page.wait_for_function(LOADED)
    assert prompts == [FIRST_PROMPT, AGAIN_PROMPT]
    assert seen(page) == reference
    screenshot(page, tmp_path / "guarded-live.png")

    # the inspector reads the whole record with the token
    page.click("#events tbody tr:first-child")
    page.wait_for_selector("#inspector-trace li")
    # the Impact tab and its exports, with the token
    page.click("#tab-impact")
    page.wait_for_function("() => document.getElementById('impact-status').textContent"
                           ".startsWith('as of')")
    totals = guarded.get("/v1/impact", token=READ_TOKEN).json()["totals"]
    assert page.get_attribute("#impact-prevented", "data-value") == str(totals["prevented"])
    assert page.get_attribute("#impact-agents", "data-value") == \
        str(totals["agents_shut_down"])
    with page.expect_download() as waiting:
        page.click("#view-impact a.csv[data-table='by_rule']")
    assert waiting.value.suggested_filename == "sentra-impact-by_rule-day.csv"
    exported = Path(waiting.value.path()).read_bytes().decode("utf-8")
    expected = guarded.get("/v1/impact?field=amount&bucket=day&format=csv&table=by_rule",
                           token=READ_TOKEN).text
    assert exported == expected
    assert list(csv.reader(io.StringIO(exported, newline="")))[0][0] == "rule_id"
    with page.expect_download() as waiting:
        page.click("#impact-json")
    assert json.loads(Path(waiting.value.path()).read_text()) == guarded.get(
        "/v1/impact?field=amount&bucket=day&format=json", token=READ_TOKEN).json()
    screenshot(page, tmp_path / "guarded-impact.png")
    # live, through the stream's access_token: a decision written by the other server arrives
    page.click("#tab-live")
    opened.act("fresh-agent", "CHANGE_PERMISSION")
    page.wait_for_function("() => document.querySelector('#agents tr[data-agent=\"fresh-agent\"]')"
                           " !== null", timeout=10_000)

    reads = [(url, sent) for url, sent in requests if "/v1/" in url]
    assert any("/v1/agents?after=" in url for url, _ in reads), "the agents were not paged"
    for url, sent in reads:
        if "/v1/events/stream" in url:
            assert f"access_token={READ_TOKEN}" in url and sent is None, url
        else:
            assert sent in (f"Bearer {READ_TOKEN}", "Bearer wrong"), (url, sent)
    assert [url for url, sent in reads if sent == "Bearer wrong"] == \
        [guarded.url + "/v1/dashboard/snapshot"]
    assert pages.errors(page) == [REFUSED]         # the wrong token's request, only

    page.reload()                                  # the token is kept for the session
    page.wait_for_function(LOADED)
    assert prompts == [FIRST_PROMPT, AGAIN_PROMPT]
    assert page.locator("#agents tr[data-agent='fresh-agent']").count() == 1


@pytest.mark.slow
def test_a_guarded_dashboard_without_a_token_shows_nothing(twins: tuple[Server, Server],
                                                           pages: Pages) -> None:
    opened, guarded = twins
    populate(opened)
    page = pages.open()
    prompts = answering(page, [None])
    page.goto(guarded.url + "/dashboard")
    page.wait_for_function("() => document.getElementById('live').textContent.startsWith('error')")
    assert prompts == [FIRST_PROMPT]
    assert "no read token given" in (page.text_content("#live") or "")
    assert page.locator("#agents tbody tr, #events tbody tr").count() == 0
    assert "rogue-agent" not in page.content()


@pytest.mark.slow
@pytest.mark.parametrize("width", [390, 1280])
def test_agents_past_the_snapshot_are_paged_in(own_server: Server, pages: Pages, width: int,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Open reads: the page shows the snapshot's first agents (and those of its records) and
    says so, with the agent counts it cannot know yet as `–`; when the pages arrive it lists
    and counts them all."""
    monkeypatch.setattr(dashboard, "AGENTS", 3)
    populate(own_server)
    assert own_server.post("/v1/reset", token=TOKEN).status == 200   # the records start here
    shut_down(own_server, "rogue-agent")      # past the first 3 ids, and in the records
    page = pages.open(width=width)
    held: list[Route] = []
    holding = True
    paging = re.compile(r"/v1/agents\?after=")
    page.route(paging, lambda route: held.append(route) if holding else route.continue_())
    page.goto(own_server.url + "/dashboard")
    page.wait_for_function("() => document.getElementById('agents-more').textContent"
                           ".includes('loading')")
    assert page.text_content("#agents-more") == \
        "The first 3 of 7 agents, by id; loading the rest…"
    rows = page.eval_on_selector_all("#agents tbody tr", "(rows) => rows.map((r) => "
                                     "r.dataset.agent)")
    assert rows == ["rogue-agent", LONG_AGENT, "calm-agent", "exporter"]
    assert [page.text_content(f"#count-{key}") for key in ("agents", "active", "shutdown")] == \
        ["7", "–", "–"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert page.evaluate(OVERLAPS, "header > *, .counts > .count, main > section > .panel") == []
    assert held, "the script did not page the agents"
    holding = False
    for route in held:
        route.continue_()
    page.wait_for_function(LOADED)
    assert page.locator("#agents tbody tr").count() == 7
    assert [page.text_content(f"#count-{key}") for key in ("agents", "active", "shutdown")] == \
        ["7", "6", "1"]
    assert not pages.errors(page)
