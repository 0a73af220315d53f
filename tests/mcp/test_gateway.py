"""The MCP gateway end to end: a real MCP client (the `mcp` SDK's ClientSession) talks to a real
`sentra-lang mcp-proxy` process wrapping a real MCP server (FastMCP); the server's own log says
which calls reached it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sentra_runtime import SQLiteStore

from tests.mcp.conftest import FAKE_SERVER, ROOT, Served, Setup, session, text_of

pytestmark = pytest.mark.slow


def refusal(result: Any) -> tuple[bool, str, str]:
    """(isError, the text, the decision's rule id from `_meta`)."""
    meta = (result.meta or {}).get("sentra/decision", {})
    return result.isError, text_of(result), meta.get("rule_id", "")


def test_allowed_calls_reach_the_server_blocked_ones_never(setup: Setup) -> None:
    async def scenario() -> list[Any]:
        async with session(setup.proxy("--db", str(setup.db))) as client:
            return [await client.call_tool("read_file", {"path": "/home/me/notes.md"}),
                    await client.call_tool("read_file", {"path": "/etc/shadow"}),
                    await client.call_tool("change_permission", {"user": "eve", "role": "admin"}),
                    await client.call_tool("change_permission", {"user": "eve", "role": "root"}),
                    await client.call_tool("read_file", {"path": "/home/me/notes.md"})]

    allowed, system, first, third, after = asyncio.run(scenario())
    assert (allowed.isError, text_of(allowed)) == (False, "contents of /home/me/notes.md")
    assert refusal(system) == (True, "Blocked: Reading /etc/shadow is not allowed. "
                                     "(rule BLOCK_SYSTEM_FILES)", "BLOCK_SYSTEM_FILES")
    assert refusal(first) == (True, "Blocked: Giving eve the role admin needs a human. "
                                    "(rule BLOCK_PERMISSION_CHANGE)", "BLOCK_PERMISSION_CHANGE")
    assert refusal(third) == (True, "Agent Shut Down: Agent shut down after 3 blocked attempts. "
                                    "Cumulative risk remains 0/100. (rule "
                                    "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS)",
                              "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS")
    assert refusal(after)[1] == "Agent Shut Down: Agent is already shut down. (rule " \
                                "AGENT_ALREADY_SHUT_DOWN)"
    assert setup.calls() == [("read_file", {"path": "/home/me/notes.md"})]
    store = SQLiteStore(setup.db)   # audited: every decision, in order, with its input
    decisions = [(record["action"], record["decision"]["label"], record["input"].get("path"))
                 for record in store.audit_records() if record["kind"] == "decision"]
    assert decisions == [("READ_FILE", "Allowed", "/home/me/notes.md"),
                         ("READ_FILE", "Blocked", "/etc/shadow"),
                         ("CHANGE_PERMISSION", "Blocked", None),
                         ("CHANGE_PERMISSION", "Agent Shut Down", None),
                         ("READ_FILE", "Agent Shut Down", "/home/me/notes.md")]
    assert store.verify_audit().ok
    assert tuple(store.state("agent")) == (0, 3, "shut_down")
    store.close()


def test_a_shutdown_rule_stops_the_agent_at_once(setup: Setup) -> None:
    async def scenario() -> list[Any]:
        async with session(setup.proxy()) as client:
            return [await client.call_tool("delete_repository", {"name": "prod"}),
                    await client.call_tool("summarize", {"text": "x"})]

    deleted, later = asyncio.run(scenario())
    assert refusal(deleted) == (True, "Agent Shut Down: Deleting prod is never allowed; the "
                                      "agent is stopped. (rule SHUTDOWN_ON_DELETE)",
                                "SHUTDOWN_ON_DELETE")
    assert refusal(later)[2] == "AGENT_ALREADY_SHUT_DOWN" and setup.calls() == []


def test_unknown_tools_follow_otherwise(setup: Setup, tmp_path: Path) -> None:
    blocking = tmp_path / "strict.sentra"
    blocking.write_text((ROOT / "tests" / "mcp" / "tools.sentra").read_text().replace(
        'otherwise allow risk 20 as RISKY_UNLISTED_TOOL threat "Unknown Behavior"',
        'otherwise block as BLOCK_UNLISTED_TOOL threat "Unknown Behavior"'))

    async def scenario(policy: Path) -> Any:
        async with session(setup.proxy("--db", str(setup.db), policy=policy)) as client:
            return await client.call_tool("summarize", {"text": "a long text"})

    allowed = asyncio.run(scenario(ROOT / "tests" / "mcp" / "tools.sentra"))
    assert (allowed.isError, text_of(allowed)) == (False, "a long text")
    store = SQLiteStore(setup.db)
    assert tuple(store.state("agent")) == (20, 0, "active")   # the otherwise rule's risk
    store.close()
    setup.agent = "strict-agent"
    refused = asyncio.run(scenario(blocking))
    assert refusal(refused)[2] == "BLOCK_UNLISTED_TOOL"
    assert setup.calls() == [("summarize", {"text": "a long text"})]


def test_other_traffic_passes_through_unchanged(setup: Setup) -> None:
    """Tools, resources, prompts, ping, progress and log notifications: the same through the
    gateway as from the server itself."""
    async def everything(params: Any) -> list[Any]:
        progress: list[float] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            progress.append(done)

        async with session(params) as client:
            return [(await client.list_tools()).model_dump(),
                    (await client.list_resources()).model_dump(),
                    (await client.read_resource("notes://today")).model_dump(),  # type: ignore[arg-type]
                    (await client.list_prompts()).model_dump(),
                    (await client.get_prompt("review", {"code": "x = 1"})).model_dump(),
                    (await client.send_ping()).model_dump(),
                    (await client.call_tool("count", {"n": 3},
                                            progress_callback=on_progress)).model_dump(),
                    progress]

    direct = asyncio.run(everything(setup.direct()))
    gated = asyncio.run(everything(setup.proxy()))
    assert gated == direct
    assert direct[-1] == [1.0, 2.0, 3.0]
    assert [call[0] for call in setup.calls()] == ["count", "count"]


def test_tools_the_policy_never_allows_can_be_hidden(setup: Setup) -> None:
    async def names(*options: str) -> list[str]:
        async with session(setup.proxy(*options)) as client:
            return [tool.name for tool in (await client.list_tools()).tools]

    every = ["read_file", "change_permission", "delete_repository", "summarize", "echo", "count"]
    assert asyncio.run(names()) == every
    assert asyncio.run(names("--hide-never-allowed")) == [
        "read_file", "summarize", "echo", "count"]


def test_with_a_decision_server(setup: Setup, served: Served) -> None:
    """`--server`: the real `sentra-lang serve` decides and audits; nothing is kept here."""
    async def scenario() -> list[Any]:
        async with session(setup.proxy("--server", served.url)) as client:
            return [await client.call_tool("read_file", {"path": "/srv/app.py"}),
                    await client.call_tool("change_permission", {"user": "eve", "role": "x"}),
                    await client.call_tool("read_file", {"path": "/etc/passwd"}),
                    await client.call_tool("delete_repository", {"name": "prod"}),
                    await client.call_tool("summarize", {"text": "t"})]

    results = asyncio.run(scenario())
    assert [refusal(result)[2] for result in results] == [
        "", "BLOCK_PERMISSION_CHANGE", "BLOCK_SYSTEM_FILES", "SHUTDOWN_ON_DELETE",
        "AGENT_ALREADY_SHUT_DOWN"]
    assert setup.calls() == [("read_file", {"path": "/srv/app.py"})]
    with urllib.request.urlopen(served.url + "/v1/events?agent=agent&kind=decision") as answer:
        events = json.load(answer)["events"]
    assert [(event["action"], event["decision"]["label"]) for event in events] == [
        ("READ_FILE", "Allowed"), ("CHANGE_PERMISSION", "Blocked"), ("READ_FILE", "Blocked"),
        ("DELETE_REPOSITORY", "Agent Shut Down"), ("SUMMARIZE", "Agent Shut Down")]
    assert not setup.db.exists()


def test_an_unreachable_decision_server_refuses_every_call(setup: Setup) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]

    async def scenario() -> Any:
        async with session(setup.proxy("--server", f"http://127.0.0.1:{closed}",
                                       "--timeout", "1")) as client:
            return await client.call_tool("read_file", {"path": "/home/me/notes.md"})

    result = asyncio.run(scenario())
    error, text, rule = refusal(result)
    assert error and rule == "FAIL_CLOSED" and setup.calls() == []
    assert text.startswith("Blocked: Fail closed: the decision server at http://127.0.0.1:")
    assert "is unreachable (connection refused)" in text


def run_proxy(*args: str, stdin: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sentra_lang", "mcp-proxy", *args],
                          input=stdin, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_usage_errors(tmp_path: Path) -> None:
    policy = str(ROOT / "tests" / "mcp" / "tools.sentra")
    missing = run_proxy(policy)
    assert missing.returncode == 2 and "give the MCP server to run after `--`" in missing.stderr
    no_dashes = run_proxy(policy, "--agent-id", "x")
    assert no_dashes.returncode == 2 and "`--agent-id` is not a command" in no_dashes.stderr
    absent = run_proxy(policy, "--", "/no/such/server")
    assert absent.returncode == 2
    assert "sentra-lang mcp-proxy: error: cannot run `/no/such/server`" in absent.stderr
    both = run_proxy(policy, "--db", "x.db", "--server", "http://127.0.0.1:1", "--", "true")
    assert both.returncode == 2 and "--db and --server exclude each other" in both.stderr
    broken = tmp_path / "broken.sentra"
    broken.write_text("policy x {\n  nonsense\n}\n")
    assert run_proxy(str(broken), "--", "true").returncode == 1
    gone = run_proxy(str(tmp_path / "gone.sentra"), "--", "true")
    assert gone.returncode == 2 and "gone.sentra" in gone.stderr
    options_after = run_proxy(policy, "--timeout", "0", "--", "true")
    assert options_after.returncode == 2 and "--timeout must be between" in options_after.stderr


def test_the_missing_extra_is_named() -> None:
    code = ("import sys; sys.modules['mcp'] = None; from sentra_lang.cli import main; "
            f"sys.exit(main(['mcp-proxy', {str(FAKE_SERVER)!r}, '--', 'true']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == ("sentra-lang mcp-proxy: error: this command needs the "
                                     "`mcp` extra: pip install 'sentra-lang[mcp]'")


def test_the_gateway_ends_when_the_wrapped_server_does() -> None:
    """Standard input stays open (the client is still there): the gateway still exits."""
    policy = str(ROOT / "tests" / "mcp" / "tools.sentra")
    process = subprocess.Popen(
        [sys.executable, "-m", "sentra_lang", "mcp-proxy", policy, "--", sys.executable, "-c",
         "import sys; sys.exit(3)"], cwd=ROOT, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.wait(timeout=30) == 1
        assert process.stderr is not None
        assert "the wrapped server ended the session" in process.stderr.read()
    finally:
        process.kill()
        if process.stdin:
            process.stdin.close()


def test_the_wrapped_server_gets_the_environment_but_not_the_tokens(tmp_path: Path) -> None:
    seen = tmp_path / "environment.json"
    record = ("import json, os, sys; json.dump({key: os.environ.get(key) for key in "
              "('SENTRA_OPERATOR_TOKEN', 'SENTRA_READ_TOKEN', 'TOOL_API_KEY')}, "
              f"open({str(seen)!r}, 'w'))")
    process = subprocess.Popen(   # standard input stays open: the "server" ends the session
        [sys.executable, "-m", "sentra_lang", "mcp-proxy", str(ROOT / "tests" / "mcp" /
                                                                "tools.sentra"),
         "--", sys.executable, "-c", record], cwd=ROOT, stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "SENTRA_OPERATOR_TOKEN": "op", "SENTRA_READ_TOKEN": "read",
             "TOOL_API_KEY": "the server's own"})
    try:
        assert process.wait(timeout=60) == 1
    finally:
        process.kill()
        if process.stdin:
            process.stdin.close()
    assert json.loads(seen.read_text()) == {"SENTRA_OPERATOR_TOKEN": None,
                                            "SENTRA_READ_TOKEN": None,
                                            "TOOL_API_KEY": "the server's own"}


def test_a_server_that_serves_another_policy_is_named_at_start(served: Served) -> None:
    other = ROOT / "tests" / "sdk" / "refund.sentra"
    started = run_proxy(str(other), "--server", served.url, "--", "true")
    assert "sentra-lang mcp-proxy: warning: the server serves policy sha256:" in started.stderr
    assert f"not {other}" in started.stderr
    same = run_proxy(str(ROOT / "tests" / "mcp" / "tools.sentra"), "--server", served.url,
                     "--", "true")
    assert "warning" not in same.stderr
