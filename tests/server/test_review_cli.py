"""`sentra-lang review` and the SDK's `RemoteEngine.tickets` / `review` against the real
server (docs/cli.md, "review"; docs/sdk.md): list, show, approve and deny with the tokens from
files or the environment; refusals (an unknown ticket, a second verdict, a missing or wrong
token, no server) are one clear line and exit 1, usage errors exit 2, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sentra_runtime.client import RemoteEngine, SentraError

from sentra_lang.cli import main
from tests.runtime.helpers import Clock
from tests.server.conftest import TOKEN, Serve, Server
from tests.server.test_review import POLICY, READ, held


@pytest.fixture
def server(serve: Serve, monkeypatch: pytest.MonkeyPatch) -> Server:
    running = serve(POLICY, "refunds.sentra", read_token=READ)
    running.app.state.gate.clock = Clock()
    for variable in ("SENTRA_OPERATOR_TOKEN", "SENTRA_READ_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    return running


def review(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["review", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_show_and_approve_from_the_command_line(
        server: Server, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    ticket = held(server, "a")["ticket"]
    server.app.state.gate.clock.now += 60   # b's ticket is the newer
    held(server, "b", 900)
    monkeypatch.setenv("SENTRA_READ_TOKEN", READ)
    code, out, err = review(capsys, "list", "--server", server.url, "--status", "pending")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["TICKET", "STATUS", "AGENT_ID", "ACTION", "RULE_ID", "RISK",
                                "EXPIRES"]
    assert [line.split()[:6] for line in lines[1:]] == [
        [ticket, "pending", "a", "ISSUE_REFUND", "REVIEW_LARGE", "60"],
        [lines[2].split()[0], "pending", "b", "ISSUE_REFUND", "REVIEW_LARGE", "60"]]
    code, out, _ = review(capsys, "list", "--server", server.url, "--agent", "b", "--json")
    assert code == 0 and [json.loads(line)["agent_id"] for line in out.splitlines()] == ["b"]
    code, out, _ = review(capsys, "show", ticket, "--server", server.url)
    assert code == 0 and json.loads(out)["status"] == "pending"

    token_file = tmp_path / "operator.token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    code, out, err = review(capsys, "approve", ticket, "--server", server.url, "--token-file",
                            str(token_file), "--operator", "alice", "--note", "verified")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"{ticket}: Allowed (REVIEW_LARGE): Approved by `alice` after review: verified",
        "agent a: cumulative risk 60, blocked attempts 0, active"]
    code, out, _ = review(capsys, "list", "--server", server.url, "--status", "approved",
                          "--json")
    assert [json.loads(line)["operator"] for line in out.splitlines()] == ["alice"]


def test_deny_is_a_strike_and_a_second_verdict_is_refused(
        server: Server, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    ticket = held(server, "a")["ticket"]
    monkeypatch.setenv("SENTRA_OPERATOR_TOKEN", TOKEN)
    code, out, _ = review(capsys, "deny", ticket, "--server", server.url, "--operator", "bob",
                          "--json")
    answer = json.loads(out)
    assert code == 0 and (answer["decision"]["label"], answer["decision"]["blocked_attempts"]) \
        == ("Blocked", 1)
    code, out, err = review(capsys, "approve", ticket, "--server", server.url,
                            "--operator", "bob")
    assert (code, out) == (1, "")
    assert err.startswith(f"sentra-lang review: approve of review ticket '{ticket}' refused:")
    assert "409" in err and "a verdict is given once" in err and "Traceback" not in err


@pytest.mark.parametrize("args, message", [
    (["show", "rv_" + "x" * 22], "404"),
    (["list"], "401"),
])
def test_refusals_are_one_line_and_exit_1(server: Server, capsys: pytest.CaptureFixture[str],
                                          args: list[str], message: str) -> None:
    code, out, err = review(capsys, *args, "--server", server.url)
    assert (code, out) == (1, "") and message in err and len(err.splitlines()) == 1


def test_usage_errors_exit_2(server: Server, capsys: pytest.CaptureFixture[str],
                             tmp_path: Path) -> None:
    code, _, err = review(capsys, "approve", "rv_x", "--server", server.url, "--operator", "x")
    assert code == 2 and "needs the operator token" in err
    code, _, err = review(capsys, "approve", "rv_x", "--server", server.url, "--operator", "x",
                          "--token-file", str(tmp_path / "missing"))
    assert code == 2 and "cannot read the operator token file" in err
    code, _, err = review(capsys, "list", "--server", "ftp://example.com")
    assert code == 2 and "Traceback" not in err


def test_the_command_offers_the_runtimes_statuses() -> None:
    from sentra_runtime import review as runtime_review

    from sentra_lang.cli import review_cmd

    assert review_cmd.STATUSES == runtime_review.STATUSES


def test_no_server_is_a_clear_refusal(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = review(capsys, "list", "--server", "http://127.0.0.1:9", "--timeout", "2")
    assert (code, out) == (1, "") and err.startswith("sentra-lang review: cannot list")


def test_the_sdk_pages_the_queue_and_gives_verdicts(server: Server) -> None:
    tickets = [held(server, f"agent-{n}")["ticket"] for n in range(3)]
    with RemoteEngine(server.url, token=TOKEN) as engine:
        engine.page_size = 2   # two pages
        assert sorted(t["ticket"] for t in engine.tickets("pending")) == sorted(tickets)
        assert [t["ticket"] for t in engine.tickets(agent_id="agent-1")] == tickets[1:2]
        decision = engine.review(tickets[0], True, operator="alice")
        assert (decision.label, decision.rule_id, decision.applied_risk, decision.ticket) == (
            "Allowed", "REVIEW_LARGE", 60, tickets[0])
        assert decision.seq is not None
        with pytest.raises(SentraError, match="409"):
            engine.review(tickets[0], False, operator="alice")
        with pytest.raises(SentraError, match="operator"):
            engine.review(tickets[1], True, operator="")
    with RemoteEngine(server.url) as anonymous, pytest.raises(SentraError, match="401"):
        anonymous.review(tickets[1], True, operator="mallory")
