"""What the docs show is what the tools do: every shell session, program and excerpt of the
docs replayed through the real CLI and runtime.

Mechanical where the page allows it:

- **Sessions**: a `console` block is a shell session; each `$ sentra-lang ...` line runs (in
  process) in a fresh folder holding a copy of `policies/` and the files the page names ("Save
  this as `payments.sentra`:" before a `sentra` block), and must print exactly the lines under
  it and exit 0 (or the code an `exit N` line under it names).
- **Programs**: a `python` block that imports what it uses and names nothing else is a complete
  program; it runs in a folder holding `sentra.json` and `policy.json` (the Sentra-compatible
  policy, compiled), and what it prints must equal the `# ` comment lines right after its last
  `print`.
- **Excerpts**: the table excerpt of docs/table.md is part of the real compiled table; the
  report excerpt of docs/testing.md names the keys the real report has.

The rest (the explanation, the failure report, the diff, the exit codes, messages) are
known-answer tests, one per documented claim. docs/integrations.md and docs/troubleshooting.md
are replayed by tests/sdk/test_docs_examples.py, the `sentra` blocks compiled by
tests/language/test_docs_examples.py and docs/diagnostics.md's examples by its generator's test.
"""

from __future__ import annotations

import ast
import builtins
import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sentra_lang.cli import main
from sentra_lang.policy_file import load_policy_file

ROOT = Path(__file__).resolve().parent.parent
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md", ROOT / "runtime" / "README.md"]
REPLAYED_ELSEWHERE = {"integrations.md", "troubleshooting.md"}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
SAVED_AS = re.compile(r"Save this as `([\w.-]+)`:\s*$")
ELLIPSIS = "..."


def page_name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def fences(page: Path) -> list[tuple[str, str, str]]:
    """(language, text, the prose line before it) of every fenced block of a page."""
    text = page.read_text("utf-8")
    found = []
    for match in FENCE.finditer(text):
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        found.append((match.group(1), match.group(2), before))
    return found


def matches(expected: list[str], actual: list[str]) -> bool:
    """Lines equal, where an expected line `...` stands for any lines (none too) and a line
    ending in ` ...` for any line that starts with what is before it."""
    if not expected:
        return not actual
    head, rest = expected[0], expected[1:]
    if head.strip() == ELLIPSIS:
        return any(matches(rest, actual[skip:]) for skip in range(len(actual) + 1))
    if not actual:
        return False
    if head.endswith(" " + ELLIPSIS):
        fits = actual[0].startswith(head[:-len(ELLIPSIS)].rstrip())
    else:
        fits = head == actual[0]
    return fits and matches(rest, actual[1:])


def assert_lines(expected: str, actual: str) -> None:
    assert matches(expected.splitlines(), actual.splitlines()), (
        f"documented:\n{expected}\nprinted:\n{actual}")


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """One command in process: its exit code and what it printed (stdout, then stderr)."""
    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exit_:   # argparse's usage errors
        code = exit_.code if isinstance(exit_.code, int) else 2
    out, err = capsys.readouterr()
    return code, out + err


# ------------------------------------------------------------------------------- sessions

@dataclass
class Command:
    page: str
    line: str
    output: str
    exit_code: int
    files: dict[str, str]

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def saved_files(page: Path) -> dict[str, str]:
    return {name.group(1): text for language, text, before in fences(page)
            if language == "sentra" and (name := SAVED_AS.search(before))}


def parse_session(text: str) -> Iterator[tuple[str, str, int]]:
    """(command, output, exit code) of each `$ ` line of a session."""
    parts = re.split(r"^\$ (.*)\n", text, flags=re.M)
    assert parts[0] == "", f"a session starts with a `$ ` line: {text!r}"
    for command, output in zip(parts[1::2], parts[2::2], strict=True):
        code = re.search(r"^exit (\d+)\n\Z", output, re.M)
        yield command, output[:code.start()] if code else output, int(code.group(1)) if code else 0


def sessions() -> list[Command]:
    found = []
    for page in PAGES:
        if page.name in REPLAYED_ELSEWHERE:
            continue
        for language, text, _ in fences(page):
            if language == "console":
                found.extend(Command(page_name(page), command, output, code, saved_files(page))
                             for command, output, code in parse_session(text))
    return found


SESSIONS = sessions()
SLOW_COMMANDS = ("sentra-lang docs ",)   # mkdocs builds the site: about 2 s


def test_the_sessions_are_found() -> None:
    pages = {command.page for command in SESSIONS}
    assert {"docs/getting-started.md", "docs/language.md"} <= pages
    assert all(command.line.startswith("sentra-lang ") for command in SESSIONS)


@pytest.mark.parametrize("command", [
    pytest.param(command, marks=[pytest.mark.slow] if command.line.startswith(SLOW_COMMANDS)
                 else []) for command in SESSIONS], ids=lambda command: command.id)
def test_a_documented_command_prints_what_the_page_shows(
        command: Command, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    for name, text in command.files.items():
        (tmp_path / name).write_text(text, "utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    code, printed = run_cli(capsys, *shlex.split(command.line)[1:])
    assert code == command.exit_code, printed
    assert_lines(command.output, printed)
