"""Colour: `--color auto|always|never`, `NO_COLOR` and `FORCE_COLOR`, with the precedence that
docs/cli.md states (the flag, then NO_COLOR, then FORCE_COLOR, then TERM=dumb, then whether
the stream is a terminal)."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from sentra_lang.cli import main
from sentra_lang.cli.color import use_color
from sentra_lang.compiler import compile_source
from sentra_lang.diagnostics import render_human

ESC = "\x1b["
ERROR = 'policy p version "1" {}\ninput { amount: number }\naction PAY {\n' \
        '  when amont > 1 allow as X\n}\notherwise allow as OTHER\n'
BROKEN_SUITE = 'suite "s" for "p.sentra"\nscenario "x" {\n' \
               '  agent "a" PAY { amont: 1 } -> allowed\n}\n'


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


# (--color, environment, stream is a terminal) -> colour; written from the documented rules
PRECEDENCE = [
    ("auto", {}, True, True),
    ("auto", {}, False, False),
    ("auto", {"NO_COLOR": "1"}, True, False),
    ("auto", {"NO_COLOR": ""}, True, True),           # empty means unset (no-color.org)
    ("auto", {"FORCE_COLOR": "1"}, False, True),
    ("auto", {"FORCE_COLOR": "0"}, False, True),      # any non-empty value (force-color.org)
    ("auto", {"FORCE_COLOR": ""}, False, False),
    ("auto", {"NO_COLOR": "1", "FORCE_COLOR": "1"}, True, False),
    ("auto", {"TERM": "dumb"}, True, False),
    ("auto", {"TERM": "dumb", "FORCE_COLOR": "1"}, False, True),
    ("always", {"NO_COLOR": "1"}, False, True),
    ("always", {}, False, True),
    ("never", {"FORCE_COLOR": "1"}, True, False),
    ("never", {}, True, False),
]


@pytest.mark.parametrize(("choice", "env", "tty", "expected"), PRECEDENCE)
def test_precedence(choice: str, env: dict[str, str], tty: bool, expected: bool) -> None:
    stream = Terminal() if tty else io.StringIO()
    assert use_color(choice, stream, env) is expected


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "p.sentra").write_text(ERROR, encoding="utf-8")
    (tmp_path / "s.sentra-test").write_text(BROKEN_SUITE, encoding="utf-8")
    (tmp_path / "unparsable.sentra").write_text('policy p version "1" {}\nwhen amont >\n',
                                                encoding="utf-8")
    (tmp_path / "log.jsonl").write_text("", encoding="utf-8")
    return tmp_path


COMMANDS = {  # command -> (arguments, the stream its diagnostics go to)
    "check": (["check", "p.sentra"], "out"),
    "compile": (["compile", "p.sentra"], "err"),
    "test": (["test", "s.sentra-test"], "out"),
    "docs": (["docs", "p.sentra", "-o", "site"], "err"),
    "fmt": (["fmt", "unparsable.sentra"], "err"),
    "explain": (["explain", "p.sentra", "X"], "err"),
    "replay": (["replay", "log.jsonl", "--policy", "p.sentra"], "err"),
}


def coloured(capsys: pytest.CaptureFixture[str], command: str, *extra: str) -> bool:
    arguments, stream = COMMANDS[command]
    assert main([*arguments, *extra]) != 0
    out, err = capsys.readouterr()
    text = out if stream == "out" else err
    assert "amont" in text
    return ESC in out + err


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_colouring_command_takes_the_option(
        project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        command: str) -> None:
    assert coloured(capsys, command, "--color", "always")
    assert not coloured(capsys, command, "--color", "never")
    assert not coloured(capsys, command)                    # captured: not a terminal
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert coloured(capsys, command)
    assert not coloured(capsys, command, "--color", "never")
    monkeypatch.setenv("NO_COLOR", "1")
    assert not coloured(capsys, command)
    assert coloured(capsys, command, "--color", "always")


def test_an_unknown_choice_is_a_usage_error(project: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["check", "p.sentra", "--color", "sometimes"])
    assert exit_.value.code == 2
    assert "invalid choice: 'sometimes'" in capsys.readouterr().err


def test_without_pygments_the_snippet_is_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pygments is optional: the header keeps its colour, the source line is printed as is."""
    [diag] = [d for d in compile_source(ERROR, "p.sentra").diagnostics if d.code == "SL101"]
    with_pygments = render_human(diag, color=True).split("\n")
    monkeypatch.setitem(sys.modules, "pygments", None)
    without = render_human(diag, color=True).split("\n")
    plain = render_human(diag).split("\n")
    assert ESC in without[0] and without[2] == plain[2] and ESC in with_pygments[2]


def run_in_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run the real command with its stdout and stderr on a pseudo-terminal."""
    primary, secondary = pty.openpty()
    with subprocess.Popen(args, cwd=cwd, stdout=secondary, stderr=secondary, env=env) as process:
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(timeout=60)
    os.close(primary)
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.slow
def test_a_terminal_is_coloured_unless_no_color(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["TERM"] = "xterm"
    command = [sys.executable, "-m", "sentra_lang", "check", "p.sentra"]
    assert ESC in run_in_terminal(command, project, env)
    assert ESC not in run_in_terminal(command, project, {**env, "NO_COLOR": "1"})
    assert ESC not in run_in_terminal([*command, "--color", "never"], project, env)
