"""Tokens: the read token guards event, agent, policy and metrics reads; tokens are compared as
UTF-8 bytes; `serve` takes them from a file or the environment, refuses ones that could never
match, and warns about the command line (docs/server.md, "Tokens")."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.server.conftest import POLICY, TOKEN, Server, free_port, http_request, raw_request

READ_TOKEN = "reader-token"
READS = ["/events", "/v1/agents", "/v1/agents/a", "/v1/events", "/v1/events/1", "/v1/policy",
         "/metrics", "/v1/metrics", "/v1/impact", "/v1/impact?format=csv&table=agents",
         "/v1/dashboard/snapshot"]


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(POLICY, tmp_path_factory.mktemp("guarded") / "s.db", TOKEN,
                     read_token=READ_TOKEN)
    running.act("guarded-agent", "FILE_READ")
    yield running
    running.stop()


def test_reads_need_the_read_or_the_operator_token(guarded: Server) -> None:
    for path in READS:
        missing = guarded.get(path)
        assert missing.status == 401, path
        assert missing.headers["www-authenticate"] == "Bearer"
        assert guarded.get(path, token="wrong").status == 401, path
        assert guarded.get(path, token=READ_TOKEN).status == 200, path
        assert guarded.get(path, token=TOKEN).status == 200, path


def test_decisions_and_health_need_no_read_token(guarded: Server, agent: str) -> None:
    assert guarded.get("/health").status == 200
    assert guarded.act(agent, "FILE_READ")["decision"] == "Allowed"
    assert guarded.post("/v1/decide", {"agent_id": agent, "action": "FILE_READ"}).status == 200
    assert guarded.get("/dashboard").status == 200


def test_the_read_token_opens_no_operator_action(guarded: Server) -> None:
    before = guarded.head(token=READ_TOKEN)
    for path in ("/reset", "/v1/reset", "/v1/agents/a/reset", "/v1/policy/reload"):
        assert guarded.post(path, token=READ_TOKEN).status == 401, path
    assert guarded.head(token=READ_TOKEN) == before


def stream_status(server: Server, path: str, headers: dict[str, str] | None = None) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        return connection.getresponse().status
    finally:
        connection.close()


def test_the_stream_takes_the_token_as_a_header_or_a_query(guarded: Server) -> None:
    """A browser's EventSource cannot send headers, so the stream also reads ?access_token=."""
    assert stream_status(guarded, "/v1/events/stream") == 401
    assert stream_status(guarded, "/v1/events/stream?access_token=wrong") == 401
    assert stream_status(guarded, f"/v1/events/stream?access_token={READ_TOKEN}") == 200
    assert stream_status(guarded, "/v1/events/stream",
                         {"Authorization": f"Bearer {READ_TOKEN}"}) == 200
    assert guarded.get(f"/v1/events?access_token={READ_TOKEN}").status == 401


def test_a_token_is_compared_as_utf8_bytes(tmp_path: Path) -> None:
    """The comparison used to decode the header as latin-1 and encode it as UTF-8, so a client
    sending the token's UTF-8 bytes was refused and one sending latin-1 bytes admitted."""
    token = "clé-d’opérateur"
    running = Server(POLICY, tmp_path / "s.db", token)
    try:
        def reset_with(credentials: bytes) -> int:
            request = http_request("POST", "/v1/reset", running.port)
            request = request.replace(b"\r\n\r\n", b"\r\nAuthorization: Bearer " + credentials
                                      + b"\r\n\r\n", 1)
            return raw_request(running.port, request).status

        assert reset_with(token.encode("utf-8")) == 200
        assert reset_with("clé-d".encode("latin-1") + "’opérateur".encode()) == 401
        assert reset_with(token.encode("utf-8") + b"x") == 401
        assert reset_with(b"") == 401
    finally:
        running.stop()


# -- the serve command --------------------------------------------------------------------------

def serve(*options: str, env: dict[str, str] | None = None, policy: Path = POLICY,
          db: Path | None = None, wait: bool = False,
          ) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("SENTRA_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "sentra_lang", "serve", str(policy), "--port", str(port),
         "--db", str(db or Path(os.environ.get("TMPDIR", "/tmp")) / f"serve-{port}.db"),
         *options], env={**environment, **(env or {})}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    if wait:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(process.communicate()[1]) from None
                time.sleep(0.05)
    return process, port


@pytest.fixture
def refused_start(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                  tmp_path: Path) -> Callable[..., tuple[int, str]]:
    """Run `serve` in this process where it must refuse to start: ``(exit code, stderr)``."""
    import uvicorn

    from sentra_lang.cli import main

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the server started")

    monkeypatch.setattr(uvicorn, "run", never)

    def run(*options: str, env: dict[str, str] | None = None,
            policy: Path = POLICY) -> tuple[int, str]:
        for key in [key for key in os.environ if key.startswith("SENTRA_")]:
            monkeypatch.delenv(key)
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        code = main(["serve", str(policy), "--db", str(tmp_path / "refused.db"), *options])
        return code, capsys.readouterr().err

    return run


def stopped(process: subprocess.Popen[str]) -> str:
    process.terminate()
    _, err = process.communicate(timeout=20)
    return err


def reset_status(port: int, token: str) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/reset", method="POST",
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.slow
def test_the_operator_token_from_a_file_or_the_environment(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file\n")
    process, port = serve("--operator-token-file", str(token_file), db=tmp_path / "a.db",
                          wait=True)
    try:
        assert reset_status(port, "from-a-file") == 200
        assert reset_status(port, "from-a-fil") == 401
    finally:
        err = stopped(process)
    assert "warning" not in err and "--operator-token" not in err
    process, port = serve(env={"SENTRA_OPERATOR_TOKEN": "from-the-environment"},
                          db=tmp_path / "b.db", wait=True)
    try:
        assert reset_status(port, "from-the-environment") == 200
    finally:
        assert "warning" not in stopped(process)


@pytest.mark.slow
def test_an_operator_token_on_the_command_line_is_warned_about(tmp_path: Path) -> None:
    process, port = serve("--operator-token", "on-the-command-line", db=tmp_path / "a.db",
                          wait=True)
    try:
        assert reset_status(port, "on-the-command-line") == 200
    finally:
        err = stopped(process)
    assert "sentra-lang serve: warning: --operator-token puts the token on the command line" in err


@pytest.mark.parametrize("token", [" padded", "padded ", "\tpadded", "line\nbreak", "nul\x00"])
def test_a_token_that_could_never_match_is_refused_at_start(
        tmp_path: Path, token: str, refused_start: Callable[..., tuple[int, str]]) -> None:
    """Surrounding white space used to make a token that no request could ever match."""
    token_file = tmp_path / "token"
    token_file.write_text(token)
    for options, env in ((("--operator-token-file", str(token_file)), None),
                         ((), {"SENTRA_OPERATOR_TOKEN": token}),
                         (("--read-token-file", str(token_file)), None)):
        if "\x00" in token and env is not None:
            continue   # the environment cannot hold a NUL
        code, err = refused_start(*options, env=env)
        assert code == 2, err
        assert "sentra-lang serve: error: the token from" in err


def test_an_empty_or_unreadable_token_file_is_a_usage_error(
        tmp_path: Path, refused_start: Callable[..., tuple[int, str]]) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    for path, message in ((empty, "is empty"), (tmp_path / "missing", "cannot read")):
        code, err = refused_start("--operator-token-file", str(path))
        assert code == 2 and message in err, err


def test_a_token_given_twice_is_a_usage_error(
        tmp_path: Path, refused_start: Callable[..., tuple[int, str]]) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("t")
    code, err = refused_start("--operator-token-file", str(token_file), "--operator-token", "t")
    assert code == 2 and "give the operator token once" in err


def test_serving_beyond_loopback_needs_a_read_token(
        refused_start: Callable[..., tuple[int, str]]) -> None:
    code, err = refused_start("--host", "0.0.0.0")
    assert code == 2
    assert "sentra-lang serve: error: serving beyond loopback (0.0.0.0) needs a read token" in err


@pytest.mark.parametrize(("policy", "code", "message"), [
    ("missing.sentra", 2, "sentra-lang serve: error: cannot read `"),
    ("broken.sentra", 1, "error[SL"),
])
def test_a_missing_policy_is_a_usage_error_and_a_broken_one_a_failure(
        tmp_path: Path, policy: str, code: int, message: str,
        refused_start: Callable[..., tuple[int, str]]) -> None:
    """A missing policy file used to exit 1 with no `sentra-lang serve: error:` prefix."""
    (tmp_path / "broken.sentra").write_text("policy broken {")
    exit_code, err = refused_start(policy=tmp_path / policy)
    assert exit_code == code, err
    assert message in err
    assert "Traceback" not in err
