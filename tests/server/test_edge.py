"""The edge (docs/server.md, "The edge"): hosts, content types, body limits and text, checked on
every endpoint over real HTTP; a refused request writes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentra_lang.server import edge
from tests.server.conftest import (
    POLICY,
    TOKEN,
    Server,
    http_request,
    raw_request,
)

POSTS = ["/agent-action", "/evaluate", "/v1/decide", "/reset", "/v1/reset",
         "/v1/agents/edge-agent/reset", "/v1/policy/reload"]
GETS = ["/", "/health", "/events", "/v1/agents", "/v1/agents/a", "/v1/events", "/v1/events/1",
        "/v1/policy", "/metrics", "/v1/metrics", "/dashboard"]
STRIKE = b'{"agent_id":"victim","action_type":"CHANGE_PERMISSION"}'
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def refused(server: Server, status: int, data: bytes) -> dict[str, Any]:
    """Send ``data`` raw; assert ``status`` with a JSON answer and nothing written."""
    before = server.head()
    answer = raw_request(server.port, data)
    assert answer.status == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert server.head() == before
    return dict(answer.json())


# -- hosts ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.nip.io",
                                  "localhost.evil.example", "[::2]:80", ""])
def test_a_host_not_allowed_is_refused_on_every_route(server: Server, host: str) -> None:
    """DNS rebinding: a page on evil.example whose name now points at 127.0.0.1 sends its own
    name as Host; neither reads nor decisions answer it."""
    for path in GETS:
        answer = refused(server, 400, http_request("GET", path, server.port,
                                                   headers={"Host": host}))
        assert "not allowed" in answer["detail"]
    for path in POSTS:
        refused(server, 400, http_request("POST", path, server.port, body=STRIKE,
                                          headers={"Host": host, **BEARER,
                                                   "Content-Type": "application/json"}))


def test_a_request_without_host_is_refused(server: Server) -> None:
    answer = refused(server, 400, b"GET /health HTTP/1.0\r\n\r\n")
    assert answer["detail"] == "the request has no Host header"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST:1234", "[::1]:8000",
                                  "[::1]"])
def test_the_loopback_names_are_allowed_by_default(server: Server, host: str) -> None:
    answer = raw_request(server.port, http_request("GET", "/health", server.port,
                                                   headers={"Host": host}))
    assert answer.status == 200, answer.text


def test_allowed_hosts_are_configurable(tmp_path: Path) -> None:
    named = Server(POLICY, tmp_path / "a.db", TOKEN, allowed_hosts=["gate.internal"])
    anyone = Server(POLICY, tmp_path / "b.db", TOKEN, allowed_hosts=["*"])
    try:
        def status(running: Server, host: str) -> int:
            return raw_request(running.port, http_request(
                "GET", "/health", running.port, headers={"Host": host})).status

        assert status(named, "gate.internal:8000") == 200
        assert status(named, "GATE.internal") == 200
        assert status(named, "127.0.0.1") == 400
        assert status(named, "other.internal") == 400
        assert status(anyone, "anything.example") == 200
    finally:
        named.stop()
        anyone.stop()


# -- content types --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["text/plain", "text/plain;charset=UTF-8",
                                  "application/x-www-form-urlencoded", "multipart/form-data; "
                                  "boundary=x", "application/json; charset=latin-1",
                                  "application/jsonx", "text/json", None])
def test_a_post_body_that_is_not_json_is_a_415_on_every_route(server: Server,
                                                              kind: str | None) -> None:
    """What a web page can post across sites without a preflight is refused, token or not."""
    headers = BEARER if kind is None else {**BEARER, "Content-Type": kind}
    for path in POSTS:
        answer = refused(server, 415, http_request("POST", path, server.port, body=STRIKE,
                                                   headers=headers))
        assert "must be JSON" in answer["detail"]


def test_a_cross_site_page_cannot_shut_an_agent_down(server: Server, agent: str) -> None:
    """Three "simple" cross-site POSTs (no preflight) used to shut a known agent down."""
    strike = json.dumps({"agent_id": agent, "action_type": "CHANGE_PERMISSION"}).encode()
    for kind in ("text/plain", "application/x-www-form-urlencoded", "text/plain"):
        refused(server, 415, http_request("POST", "/agent-action", server.port, body=strike,
                                          headers={"Content-Type": kind,
                                                   "Origin": "https://evil.example"}))
    assert server.get(f"/v1/agents/{agent}").json()["status"] == "active"


def test_the_server_answers_no_cors(server: Server) -> None:
    """A browser sends a JSON POST across sites only after a preflight the server must approve:
    it approves none, and no answer lets another origin read it."""
    preflight = raw_request(server.port, http_request("OPTIONS", "/agent-action", server.port,
                                                      headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"}))
    assert preflight.status == 405
    for answer in (preflight, raw_request(server.port, http_request(
            "GET", "/v1/events", server.port, headers={"Origin": "https://evil.example"}))):
        assert not [name for name in answer.headers if name.startswith("access-control-")]


def test_json_types_and_a_post_without_a_body_are_accepted(server: Server, agent: str) -> None:
    body = json.dumps({"agent_id": agent, "action_type": "FILE_READ"}).encode()
    for kind in ("application/json", "Application/JSON; charset=utf-8",
                 "application/vnd.sentra+json"):
        answer = raw_request(server.port, http_request("POST", "/agent-action", server.port,
                                                       body=body,
                                                       headers={"Content-Type": kind}))
        assert answer.status == 200, (kind, answer.text)
    reset = raw_request(server.port, http_request("POST", f"/v1/agents/{agent}/reset",
                                                  server.port, headers=BEARER))
    assert reset.status == 200, reset.text


# -- body size ------------------------------------------------------------------------------------

@pytest.mark.parametrize("chunked", [True, False])
def test_an_oversized_body_is_a_413_on_every_route(server: Server, chunked: bool) -> None:
    """Chunked bodies, whose size no header declares, used to get FastAPI's 400."""
    big = json.dumps({"agent_id": "x", "action_type": "FILE_READ",
                      "target": "x" * 70_000}).encode()
    for path in POSTS:
        answer = refused(server, 413, http_request(
            "POST", path, server.port, body=big, chunked=chunked,
            headers={**BEARER, "Content-Type": "application/json"}))
        assert answer["detail"] == "request body larger than 65536 bytes"


def test_a_chunked_body_under_the_limit_is_decided(server: Server, agent: str) -> None:
    body = json.dumps({"agent_id": agent, "action_type": "FILE_READ",
                       "target": "y" * 30_000}).encode()
    answer = raw_request(server.port, http_request("POST", "/agent-action", server.port,
                                                   body=body, chunked=True,
                                                   headers={"Content-Type": "application/json"}))
    assert answer.status == 200 and answer.json()["decision"] == "Allowed"


# -- text that is not UTF-8 -----------------------------------------------------------------------

SURROGATE = "\\ud800"
TEXT_CASES = [
    ("/agent-action", '{"agent_id":"%s","action_type":"FILE_READ"}', ["body", "agent_id"]),
    ("/agent-action", '{"agent_id":"a","action_type":"FILE_%s"}', ["body", "action_type"]),
    ("/agent-action", '{"agent_id":"a","action_type":"FILE_READ","target":"%s"}',
     ["body", "target"]),
    ("/agent-action", '{"agent_id":"a","action_type":"SEND_NOTIFICATION",'
                      '"notification_type":"x%s"}', ["body", "notification_type"]),
    ("/agent-action", '{"agent_id":"a","action_type":"X","policy_context":{"k%s":1}}',
     ["body", "policy_context", "k\\ud800"]),
    ("/agent-action", '{"agent_id":"a","action_type":"X","policy_context":{"k":["%s"]}}',
     ["body", "policy_context", "k", 0]),
    ("/v1/decide", '{"agent_id":"%s","action":"FILE_READ"}', ["body", "agent_id"]),
    ("/v1/decide", '{"agent_id":"a","action":"%s"}', ["body", "action"]),
    ("/v1/decide", '{"agent_id":"a","action":"X","fields":{"context":{"%s":true}}}',
     ["body", "fields", "context", "\\ud800"]),
    ("/evaluate", '{"claim":{"claim_id":"%s"}}', ["body", "claim", "claim_id"]),
    ("/evaluate", '{"proposed_tool_call":{"tool_name":"%s"}}',
     ["body", "proposed_tool_call", "tool_name"]),
    ("/evaluate", '{"proposed_tool_call":{"tool_name":"x","arguments":{"to":"%s"}}}',
     ["body", "proposed_tool_call", "arguments", "to"]),
    ("/reset", '{"note":"%s"}', ["body", "note"]),
    ("/v1/reset", '{"note":"%s"}', ["body", "note"]),
    ("/v1/agents/a/reset", '{"note":"%s"}', ["body", "note"]),
]


@pytest.mark.parametrize(("path", "template", "loc"), TEXT_CASES)
@pytest.mark.parametrize("surrogate", [SURROGATE, "\\uDFFF", "\\ud83d"])
def test_a_lone_surrogate_is_a_422_naming_the_field(server: Server, path: str, template: str,
                                                     loc: list[Any], surrogate: str) -> None:
    """Lone surrogates (valid JSON escapes, not text) used to answer 500."""
    body = (template % surrogate).encode()
    loc = [part.replace(SURROGATE, surrogate.lower()) if isinstance(part, str) else part
           for part in loc]
    answer = refused(server, 422, http_request("POST", path, server.port, body=body, headers={
        **BEARER, "Content-Type": "application/json"}))
    assert loc in [problem["loc"] for problem in answer["detail"]], answer
    assert answer["detail"][0]["type"] == "unicode"


def test_a_surrogate_pair_is_text(server: Server, agent: str) -> None:
    event = server.act(agent + "\ud83d\ude00", "FILE_READ", target="\ud83d\ude00")
    assert event["agent_id"] == agent + "😀" and event["target"] == "😀"


@pytest.mark.parametrize("path", ["/agent-action", "/v1/decide", "/evaluate", "/reset"])
@pytest.mark.parametrize("bad", [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"])
def test_a_body_that_is_not_utf8_is_a_422(server: Server, path: str, bad: bytes) -> None:
    body = b'{"agent_id":"' + bad + b'","action_type":"FILE_READ"}'
    answer = refused(server, 422, http_request("POST", path, server.port, body=body, headers={
        **BEARER, "Content-Type": "application/json"}))
    assert answer["detail"][0]["loc"] == ["body"]
    assert answer["detail"][0]["type"] == "utf8"


@pytest.mark.parametrize("path", ["/v1/agents/%ED%A0%80/reset", "/v1/agents/%FF/reset",
                                  "/v1/agents/%C3"])
def test_a_path_that_is_not_utf8_is_a_422(server: Server, path: str) -> None:
    """It used to reset (or show) the agent named U+FFFD."""
    method = "POST" if path.endswith("/reset") else "GET"
    answer = refused(server, 422, http_request(method, path, server.port, headers=BEARER))
    assert answer["detail"][0]["loc"] == ["path"]


@pytest.mark.parametrize("query", ["agent=%ED%A0%80", "agent=%FF", "%FF=1"])
def test_a_query_that_is_not_utf8_is_a_422(server: Server, query: str) -> None:
    answer = refused(server, 422, http_request("GET", "/v1/events?" + query, server.port))
    assert answer["detail"][0]["loc"][0] == "query"


@pytest.mark.parametrize(("body", "loc"), [
    ('{"agent_id":"a","action_type":"X","policy_context":{"x":NaN}}',
     ["body", "policy_context", "x"]),
    ('{"agent_id":"a","action_type":"X","policy_context":{"x":[1e999]}}',
     ["body", "policy_context", "x", 0]),
    ('{"agent_id":"a","action_type":"X","unknown":-Infinity}', ["body", "unknown"]),
])
def test_a_number_that_is_not_finite_is_a_422_anywhere(server: Server, body: str,
                                                        loc: list[Any]) -> None:
    """JSON has no NaN or Infinity: such a body is refused wherever the number is."""
    answer = refused(server, 422, http_request("POST", "/agent-action", server.port,
                                               body=body.encode(),
                                               headers={"Content-Type": "application/json"}))
    assert [problem["loc"] for problem in answer["detail"]] == [loc]


@pytest.mark.parametrize("path", ["/agent-action", "/v1/decide", "/evaluate"])
def test_deep_nesting_is_a_422(server: Server, path: str) -> None:
    body = b'{"agent_id":"a","action_type":"X","policy_context":' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    answer = refused(server, 422, http_request("POST", path, server.port, body=body, headers={
        "Content-Type": "application/json"}))
    assert answer["detail"][0]["type"] == "json_invalid"


def test_many_problems_are_reported_in_a_bounded_answer(server: Server) -> None:
    context = ",".join(f'"k{index}":"\\ud800"' for index in range(2000))
    body = ('{"agent_id":"a","action_type":"X","policy_context":{' + context + "}}").encode()
    answer = refused(server, 422, http_request("POST", "/agent-action", server.port, body=body,
                                               headers={"Content-Type": "application/json"}))
    assert len(answer["detail"]) == 10
    assert answer["detail"][0]["loc"] == ["body", "policy_context", "k0"]



# -- the shortcut past the walk ----------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text()
    | st.sampled_from(["\ud800", "a\udfffb", "\U0001f600", "é"]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=3) | st.just("\udc00"), inner, max_size=3),
    max_leaves=10)
NUMBER_TEXT = st.sampled_from(["1e999", "-1E400", "1e308", "2.5e-400", "1" + "0" * 310 + ".5",
                               "9" * 320, "NaN", "-Infinity", "0.5", "12"])


@settings(max_examples=400)
@given(JSON_VALUES, st.booleans(), st.lists(NUMBER_TEXT, max_size=3))
def test_the_edge_walks_every_body_that_can_hold_a_problem(value: Any, ascii_only: bool,
                                                           numbers: list[str]) -> None:
    """`parse_body` skips walking text that cannot hold a lone surrogate or a number that is not
    finite; its problems are always the full walk's, for any JSON text: escaped or raw text,
    NaN, infinities, numbers past 1e308 written with exponents or digits."""
    text = json.dumps({"value": value, "numbers": None}, ensure_ascii=ascii_only)
    text = text.replace('"numbers": null', f'"numbers": [{", ".join(numbers)}]')
    try:
        body = text.encode("utf-8")
    except UnicodeEncodeError:   # a raw lone surrogate: the body would not be UTF-8 at all
        return
    parsed, problems = edge.parse_body(body)
    assert problems == list(edge._value_problems(json.loads(text)))[:edge.MAX_REPORTED]
