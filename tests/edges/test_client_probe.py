"""Adversarial probes of the HTTP client SDK, the MCP gateway and the server's request edge.

The SDK is pointed at a real hostile HTTP server (stdlib ``http.server`` on a loopback port:
the adversary, not the thing under test), and the server is a real uvicorn on a free port.
Each test states the documented promise it checks (docs/integrations.md, docs/runtime.md "The
SDK", docs/server.md).
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sentra_runtime import ActionDenied, Engine, ReviewPending
from sentra_runtime.client import RemoteEngine, SentraError
from sentra_runtime.remote import agent_segment

from tests.sdk.conftest import SENTRA_POLICY, table_of

Answer = tuple[int, dict[str, str], bytes]
Respond = Callable[[str, str, bytes], Answer]


class Adversary:
    """A hostile decision server: ``respond(method, path, body)`` gives each answer."""

    def __init__(self, respond: Respond) -> None:
        self.requests: list[tuple[str, str]] = []
        adversary = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                adversary.requests.append((self.command, self.path))
                status, headers, data = respond(self.command, self.path, body)
                self.send_response(status)
                for name, value in {"Content-Type": "application/json",
                                    "Content-Length": str(len(data)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = answer

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def json_answer(value: Any, status: int = 200) -> Answer:
    return status, {}, json.dumps(value).encode()


@pytest.fixture
def adversary() -> Iterator[Callable[[Respond], Adversary]]:
    started: list[Adversary] = []

    def start(respond: Respond) -> Adversary:
        started.append(Adversary(respond))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def allowed() -> dict[str, Any]:
    """A real allowed decision on the wire, as the server sends it."""
    return Engine(table_of(SENTRA_POLICY)).evaluate("a", "FILE_READ").to_dict(explanation=True)


# --- paging: a listing must end ------------------------------------------------------------

@pytest.mark.parametrize(("call", "page"), [
    ("agents", {"agents": [{"agent_id": "x"}], "next_after": "x"}),
    ("agents", {"agents": [], "next_after": "x"}),
    ("tickets", {"tickets": [{"ticket": "rv_x"}], "next_after": "rv_x"}),
    ("tickets", {"tickets": [], "next_after": "rv_x"}),
])
def test_a_listing_whose_pages_do_not_advance_is_an_error_not_a_hang(
        adversary: Callable[[Respond], Adversary], call: str, page: dict[str, Any]) -> None:
    """`agents()` and `tickets()` read every page; a server whose `next_after` names the page
    it just sent (or an empty page) would have them loop forever: a SentraError instead."""
    server = adversary(lambda method, path, body: json_answer(page))
    engine = RemoteEngine(server.url, timeout=2.0)
    result: list[BaseException | None] = []

    def listing() -> None:
        try:
            getattr(engine, call)()
            result.append(None)
        except BaseException as error:   # what the call raised, for the main thread to check
            result.append(error)

    worker = threading.Thread(target=listing, daemon=True)
    worker.start()
    worker.join(5)
    assert not worker.is_alive(), f"{call}() still paging after 5 s"
    assert isinstance(result[0], SentraError) and "page" in str(result[0]), result
    assert len(server.requests) <= 3
    engine.close()


# --- an integer too long to read -----------------------------------------------------------

def test_an_integer_of_thousands_of_digits_fails_closed_in_plain_words(
        adversary: Callable[[Respond], Adversary], allowed: dict[str, Any]) -> None:
    """The reason of a fail-closed decision "names the failure"; an answer holding an integer
    of 5,000 digits gave Python's advice to call `sys.set_int_max_str_digits()` instead."""
    body = (b'{"seq": ' + b"9" * 5000 + b', "decision": ' + json.dumps(allowed).encode() + b"}")
    server = adversary(lambda method, path, sent: (200, {}, body))
    with RemoteEngine(server.url, timeout=2.0) as engine:
        decision = engine.decide("a", "FILE_READ", {})
        assert (decision.allowed, decision.rule_id) == (False, "FAIL_CLOSED")
        assert decision.reason.endswith("sent an unusable answer: the answer holds an integer "
                                        "of 5000 digits, too long to read"), decision.reason
        with pytest.raises(SentraError, match="an integer of 5000 digits, too long to read$"):
            engine.state("a")
        assert engine.health()["error"] == "the answer holds an integer of 5000 digits, too " \
                                           "long to read"


# --- tokens: refused when the engine is made, never echoed -----------------------------------

SECRET = "s3cret-operator-token"


@pytest.mark.parametrize("token", [SECRET + "\n", SECRET + "\r\nX-Evil: 1", " " + SECRET,
                                   SECRET + "\x00", SECRET + "\ud800"])
@pytest.mark.parametrize("client", ["RemoteEngine token", "RemoteEngine read_token",
                                    "Sentra token"])
def test_a_token_no_header_can_carry_is_refused_when_made_and_never_shown(
        adversary: Callable[[Respond], Adversary], client: str, token: str) -> None:
    """A token read from a file with its final line break (`Path(...).read_text()`) could
    never be sent: every reset or read raised `SentraError: ... Invalid header value b'Bearer
    s3cret-operator-token\\n'`, the secret in a message that ends up in logs. Such a token is
    refused when the client is made (ValueError), without showing it."""
    from sentra_runtime.client import Sentra

    server = adversary(lambda method, path, body: json_answer({"reset": [], "seq": 1}))
    kind, _, keyword = client.partition(" ")
    with pytest.raises(ValueError) as refused:
        engine = (RemoteEngine if kind == "RemoteEngine" else Sentra)(server.url,
                                                                      **{keyword: token})
        engine.reset()
    assert SECRET not in str(refused.value) and "token" in str(refused.value)
    assert server.requests == []


def test_a_token_that_is_not_text_is_a_type_error(adversary: Callable[[Respond], Adversary]) -> None:
    server = adversary(lambda method, path, body: json_answer({}))
    with pytest.raises(TypeError, match="read_token must be a string or None, not int"):
        RemoteEngine(server.url, read_token=5)  # type: ignore[arg-type]


# --- values that cannot travel: refused before anything is sent, named -----------------------

@pytest.mark.parametrize(("agent", "fields", "named"), [
    ("a", {"n": 10 ** 5000}, "`fields.n` is an integer of more than 4300 digits"),
    ("a", {"v": ["ok", "\ud800"]}, "`fields.v[1]` is not valid Unicode text (a lone surrogate)"),
    ("a", {"k\udfff": 1}, "`fields` has a key that is not valid Unicode text"),
    ("\ud800", {}, "`agent_id` is not valid Unicode text (a lone surrogate)"),
])
def test_a_value_json_text_cannot_carry_fails_closed_before_sending(
        adversary: Callable[[Respond], Adversary], agent: str, fields: dict[str, Any],
        named: str) -> None:
    """docs/runtime.md: "Before anything is sent, the call fails closed ... when a value cannot
    travel as JSON unchanged: the reason names the field". An integer past Python's 4,300
    digits gave `the request cannot be sent as JSON (Exceeds the limit ...; use
    sys.set_int_max_str_digits() ...)`, naming nothing; a lone surrogate was sent, for the
    server to refuse."""
    server = adversary(lambda method, path, body: json_answer({"detail": "refused"}, 422))
    with RemoteEngine(server.url, timeout=2.0) as engine:
        decision = engine.decide(agent, "FILE_READ", fields)
    assert decision.rule_id == "FAIL_CLOSED" and named in decision.reason, decision.reason
    assert "sys.set_int_max_str_digits" not in decision.reason
    assert server.requests == []


# --- a state is the agent's own ---------------------------------------------------------------

def test_a_state_answered_for_another_agent_is_an_error(
        adversary: Callable[[Respond], Adversary]) -> None:
    """`state(id)` read whatever agent the answer was for: the server's path bug above made
    `state("bob\\n")` return agent `bob`'s state without a word. As a decision must be the
    agent's own, so must a state."""
    answer = {"agent_id": "bob", "cumulative_risk": 0, "blocked_attempts": 0, "status": "active"}
    server = adversary(lambda method, path, body: json_answer(answer))
    with RemoteEngine(server.url, timeout=2.0) as engine:
        assert engine.state("bob").status == "active"
        with pytest.raises(SentraError, match="the server answered for agent 'bob'$"):
            engine.state("bob\n")


# --- a verdict the guard cannot make sense of is no verdict --------------------------------

TICKET = "rv_" + "A" * 22


def held_then(allowed: dict[str, Any], status: str, verdict: dict[str, Any] | None) -> Respond:
    """Decides FILE_READ as held for review (ticket TICKET); the ticket reads as
    ``status`` with ``verdict``."""
    held = {**allowed, "outcome": "review", "label": "Review Required", "allowed": False,
            "ticket": TICKET, "expires_at": time.time() + 3600}

    def respond(method: str, path: str, body: bytes) -> Answer:
        if path == "/v1/decide":
            return json_answer({"seq": 3, "decision": held})
        if path == f"/v1/reviews/{TICKET}":
            return json_answer({"ticket": TICKET, "agent_id": "a", "status": status,
                                "decision": verdict})
        return json_answer({"detail": "Not Found"}, 404)
    return respond


def guarded_call(url: str) -> tuple[str, list[int]]:
    """What a remote guard with ``wait`` does with the held call: ran, or how it refused."""
    engine = RemoteEngine(url, timeout=2.0)
    ran: list[int] = []

    @engine.guard("a", "FILE_READ", from_arguments=False, wait=0.8)
    def body() -> None:
        ran.append(1)

    try:
        body()
        outcome = "ran"
    except ReviewPending as held:
        outcome = f"pending:{held.status}"
    except ActionDenied as denied:
        outcome = f"denied:{denied.decision.rule_id}"
    finally:
        engine.close()
    return outcome, ran


def test_an_approved_verdict_runs_the_body(adversary: Callable[[Respond], Adversary],
                                           allowed: dict[str, Any]) -> None:
    """The known answer the refusals below are measured against."""
    server = adversary(held_then(allowed, "approved", {**allowed, "ticket": TICKET}))
    assert guarded_call(server.url) == ("ran", [1])


@pytest.mark.parametrize(("status", "change"), [
    ("denied", {}),                       # the status says denied, the decision says allowed
    ("pending", {}),
    ("expired", {}),
    ("cancelled", {}),
    ("approved", {"ticket": "rv_" + "B" * 22}),   # another ticket's approval
    ("approved", {"ticket": None}),               # an approval that names no ticket
    ("approved", {"agent_id": "someone-else"}),   # another agent's approval
])
def test_a_verdict_that_contradicts_itself_never_runs_the_body(
        adversary: Callable[[Respond], Adversary], allowed: dict[str, Any], status: str,
        change: dict[str, Any]) -> None:
    """docs/integrations.md: "On approval the body runs once"; a ticket whose status and
    decision disagree, or whose allowed decision is another ticket's or another agent's, is
    not an approval of this call: the guard waits on and raises ReviewPending."""
    verdict = {**allowed, "ticket": TICKET, **change}
    if change.get("ticket", TICKET) is None:
        del verdict["ticket"]
    server = adversary(held_then(allowed, status, verdict))
    outcome, ran = guarded_call(server.url)
    assert ran == [] and outcome.startswith("pending"), outcome


@pytest.mark.parametrize("change", [{"agent_id": "b"}, {"action": "DELETE_ALL"}])
def test_a_consistent_verdict_on_another_call_never_runs_the_body(
        adversary: Callable[[Respond], Adversary], allowed: dict[str, Any],
        change: dict[str, Any]) -> None:
    """A ticket whose answer and decision agree with each other but name another agent (the
    server's answer says so too) or another action than the held call's is no verdict on this
    call: the guard waits on. Before, it compared the decision's agent with the answer's own
    claim only, and ran the body on an approval of agent `b`'s call."""
    verdict = {**allowed, "ticket": TICKET, **change}
    respond = held_then(allowed, "approved", verdict)

    def answered(method: str, path: str, body: bytes) -> Answer:
        if path == f"/v1/reviews/{TICKET}":
            return json_answer({"ticket": TICKET, "agent_id": verdict["agent_id"],
                                "status": "approved", "decision": verdict})
        return respond(method, path, body)

    outcome, ran = guarded_call(adversary(answered).url)
    assert ran == [] and outcome == "pending:pending", outcome


@pytest.mark.slow
def test_a_remote_wait_ends_within_the_wait_plus_one_timeout(
        adversary: Callable[[Respond], Adversary], allowed: dict[str, Any]) -> None:
    """docs/integrations.md: a remote poll the server does not answer lasts up to the engine's
    `timeout`, so a remote guard gives up at most that long after its deadline."""
    answer = held_then(allowed, "pending", None)

    def hanging(method: str, path: str, body: bytes) -> Answer:
        if path.startswith("/v1/reviews/"):
            time.sleep(6)
        return answer(method, path, body)

    server = adversary(hanging)
    engine = RemoteEngine(server.url, timeout=1.5)

    @engine.guard("a", "FILE_READ", from_arguments=False, wait=1.0)
    def body() -> None:
        raise AssertionError("ran without a verdict")

    started = time.monotonic()
    with pytest.raises(ReviewPending):
        body()
    assert 1.0 <= time.monotonic() - started < 1.0 + 1.5 + 1.0
    engine.close()


# --- informational answers --------------------------------------------------------------------

def test_an_early_hints_answer_fails_closed_and_its_connection_is_not_reused(
        allowed: dict[str, Any]) -> None:
    """docs/runtime.md: an informational answer other than `100 Continue` (`103 Early Hints`,
    which some proxies add) fails closed (`answered 103`). Its connection was kept for the
    next call, with the real answer still on its way: the next decision, for another action,
    read the first one's allowed answer as its own and ran. Now such a connection is closed."""
    import socket

    def answer_of(decision: dict[str, Any]) -> bytes:
        body = json.dumps({"seq": 1, "decision": decision}).encode()
        return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                b"\r\n" % len(body)) + body

    blocked = {**allowed, "allowed": False, "outcome": "block", "label": "Blocked",
               "rule_id": "BLOCK_PERMISSION_CHANGE"}
    listener = socket.create_server(("127.0.0.1", 0))

    def requests(connection: socket.socket) -> Iterator[bytes]:
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
            while b"\r\n\r\n" in data:
                head, _, rest = data.partition(b"\r\n\r\n")
                length = int(head.lower().partition(b"content-length:")[2].split(b"\r\n")[0])
                if len(rest) < length:
                    break
                data = rest[length:]
                yield rest[:length]

    def serve(connection: socket.socket) -> None:
        with connection:
            for number, _ in enumerate(requests(connection)):
                if number == 0:   # the first request: 103, then, a moment later, its answer
                    connection.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n")
                    time.sleep(0.3)
                    connection.sendall(answer_of(allowed))
                else:
                    connection.sendall(answer_of(blocked))

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    with RemoteEngine(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=3.0) as engine:
        first = engine.decide("a", "FILE_READ", {})
        assert (first.rule_id, "answered 103" in first.reason) == ("FAIL_CLOSED", True)
        second = engine.decide("a", "CHANGE_PERMISSION", {})
        assert not second.allowed, "the second call ran on the first call's answer"
    listener.close()


# --- the server's path parameters: any agent id can be read, reset and assigned -------------

REFUNDS = Path(__file__).resolve().parents[2] / "policies" / "refunds.sentra"


@pytest.fixture(scope="module")
def refunds_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.server.conftest import TOKEN, Server

    running = Server(REFUNDS, tmp_path_factory.mktemp("edge") / "s.db", TOKEN)
    yield running
    running.stop()


@pytest.mark.parametrize("agent", ["a\nb", "\n", "bob\n", "two\n\nlines"])
def test_an_agent_id_with_a_line_break_is_read_reset_and_assigned(refunds_server: Any,
                                                                  agent: str) -> None:
    """Agents are "keyed by the exact agent id string", and a decision accepts any string as
    an id: an agent whose id holds a line break is shut down like any other, so the operator
    must be able to read, reset and assign it by its id. Before, the path convertor stopped
    at a line break: `GET /v1/agents/bob%0A` answered agent `bob`'s state, and the reset was
    a 404, so that agent stayed shut down until a reset of every agent."""
    from tests.server.conftest import TOKEN

    engine = RemoteEngine(refunds_server.url, token=TOKEN, timeout=5.0)
    try:
        assert engine.decide(agent, "DELETE_CUSTOMER", {}).label == "Agent Shut Down"
        assert engine.state(agent).status == "shut_down"
        if agent.endswith("\n"):
            assert engine.state(agent.rstrip("\n")).status == "active"   # another agent
        assert list(engine.reset(agent)) == [agent]
        assert engine.state(agent).status == "active"
        assert isinstance(engine.assign_group(agent, "trusted", operator="alice"), int)
        assert refunds_server.get(f"/v1/agents/{agent_segment(agent)}").json()["group"] \
            == "trusted"
    finally:
        engine.close()


# --- the MCP gateway answers every request it cannot read --------------------------------

def tool_call_line(request_id: int, arguments: bytes) -> bytes:
    return (b'{"jsonrpc": "2.0", "id": %d, "method": "tools/call", "params": {"name": "echo", '
            b'"arguments": %s}}' % (request_id, arguments))


@pytest.mark.slow
def test_a_tool_call_the_gateway_cannot_read_is_answered_not_left_waiting(tmp_path: Path) -> None:
    """docs/integrations.md: a line that is not JSON-RPC is refused with `-32600` "when it has
    an id", never forwarded. Before, a request whose id was plain but whose arguments held an
    integer of 5,000 digits, nesting 3,000 deep or a byte that is not UTF-8 got no answer at
    all (finding its id failed the same way), so the client waited for its own timeout."""
    pytest.importorskip("mcp")
    from tests.mcp.conftest import RawClient, Setup

    setup = Setup(tmp_path)
    raw = RawClient(setup)
    try:
        lines = {
            1: tool_call_line(1, b'{"text": "x", "n": ' + b"9" * 5000 + b"}"),
            2: tool_call_line(2, b'{"text": ' + b"[" * 3000 + b"]" * 3000 + b"}"),
            3: tool_call_line(3, b'{"text": "caf\xe9"}'),
            4: tool_call_line(4, b'{"text": ' + b'{"a": ' * 3000 + b"1" + b"}" * 3000 + b"}"),
        }
        for request_id, line in lines.items():
            raw.line(line)
            assert raw.answer(request_id, timeout=10)["error"]["code"] == -32600
        assert raw.alive() and setup.calls() == []
    finally:
        raw.close()


def raw_request(port: int, head: bytes, body: bytes = b"") -> bytes:
    """One request written as it is (duplicate headers included); the status line back."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head + b"Content-Length: %d\r\nConnection: close\r\n\r\n"
                           % len(body) + body)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer.partition(b"\r\n")[0]


@pytest.mark.parametrize("hosts", [(b"127.0.0.1", b"evil.example"),
                                   (b"evil.example", b"127.0.0.1"),
                                   (b"127.0.0.1", b"127.0.0.1")])
def test_a_request_with_two_host_headers_is_refused(refunds_server: Any,
                                                    hosts: tuple[bytes, bytes]) -> None:
    """HTTP/1.1 (RFC 9112, section 3.2): a server MUST answer 400 to a request with more than
    one Host header. The edge read the first one only, so `Host: 127.0.0.1` then `Host:
    evil.example` was decided, while a proxy in front that reads the last one would have taken
    it for evil.example's."""
    from tests.server.conftest import TOKEN

    before = refunds_server.head(token=TOKEN)
    head = b"POST /v1/decide HTTP/1.1\r\n" + b"".join(b"Host: %s\r\n" % host for host in hosts) \
        + b"Content-Type: application/json\r\n"
    body = b'{"agent_id": "two-hosts", "action": "LOOKUP_ORDER", "fields": {}}'
    assert raw_request(refunds_server.port, head, body) == b"HTTP/1.1 400 Bad Request"
    assert refunds_server.head(token=TOKEN) == before


@pytest.mark.parametrize("kinds", [(b"application/json", b"text/plain"),
                                   (b"text/plain", b"application/json")])
def test_a_body_with_two_content_types_is_refused(refunds_server: Any,
                                                  kinds: tuple[bytes, bytes]) -> None:
    """A body must be declared as JSON (the defence against cross-site posts); one declared
    both as JSON and as `text/plain` is not, whichever comes first: 415, nothing written."""
    from tests.server.conftest import TOKEN

    before = refunds_server.head(token=TOKEN)
    head = b"POST /v1/decide HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(
        b"Content-Type: %s\r\n" % kind for kind in kinds)
    body = b'{"agent_id": "two-types", "action": "LOOKUP_ORDER", "fields": {}}'
    assert raw_request(refunds_server.port, head, body) \
        == b"HTTP/1.1 415 Unsupported Media Type"
    assert refunds_server.head(token=TOKEN) == before


def test_an_integer_past_a_lowered_digit_limit_fails_closed_naming_the_field(
        adversary: Callable[[Respond], Adversary]) -> None:
    """The check of an integer's digits read Python's default limit (4,300) as fixed: in a
    process that lowered it (`sys.set_int_max_str_digits(1000)`), an integer of 2,000 digits
    passed the check, and `json.dumps` failed with Python's advice, naming no field."""
    import sys

    server = adversary(lambda method, path, body: json_answer({"detail": "refused"}, 422))
    default = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(1000)
    try:
        with RemoteEngine(server.url, timeout=2.0) as engine:
            decision = engine.decide("a", "FILE_READ", {"n": 10 ** 2000})
    finally:
        sys.set_int_max_str_digits(default)
    assert decision.rule_id == "FAIL_CLOSED", decision.reason
    assert "`fields.n` is an integer of more than 1000 digits" in decision.reason, decision.reason
    assert server.requests == []


def test_the_id_of_an_unreadable_request_is_found_under_a_lowered_digit_limit() -> None:
    """The gateway's search for the id of a request it refuses passed over integers longer
    than Python's default limit (4,300 digits) as fixed: in a process that lowered it, a
    request holding an integer of 2,000 digits beside its id had no id, and was never
    answered."""
    import sys

    pytest.importorskip("mcp")
    from sentra_lang.mcp.gateway import _request_id

    line = b'{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "n": ' + b"9" * 2000 + b"}"
    default = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(1000)
    try:
        assert _request_id(line) == 7
    finally:
        sys.set_int_max_str_digits(default)
