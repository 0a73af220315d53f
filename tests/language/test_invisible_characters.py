"""What a hostile policy or suite file holds is shown, never acted on: control characters,
zero-width characters and bidirectional overrides in diagnostics are escapes, in every output a
terminal or a CI log reads, with the carets under them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sentra_lang.diagnostics import visible

HOSTILE = ["\x1b[31m", "\x07", "\u202e", "\u200b", "\x9b", "\ufeff"]
RAW = {"\x1b", "\x07", "\u202e", "\u200b", "\x9b", "\ufeff", "\r"}


def check(path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sentra_lang", "check", str(path), *options],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("hostile", HOSTILE, ids=[repr(text) for text in HOSTILE])
@pytest.mark.parametrize("output", ["human", "github", "color"])
def test_a_policy_cannot_write_to_the_terminal(tmp_path: Path, hostile: str,
                                               output: str) -> None:
    path = tmp_path / "p.sentra"
    path.write_text(f'policy p version "1" {{}}\notherwise allow {hostile}as O\n',
                    encoding="utf-8")
    options = {"human": [], "github": ["--format", "github"], "color": ["--color", "always"]}
    done = check(path, *options[output])
    assert done.returncode == 1, done.stdout + done.stderr
    printed = done.stdout.replace("\x1b[", "") if output == "color" else done.stdout
    assert not RAW & set(printed), repr(done.stdout)
    assert visible(hostile[0]) in done.stdout


def test_the_carets_stay_under_the_escaped_character(tmp_path: Path) -> None:
    path = tmp_path / "p.sentra"
    path.write_text('policy p version "1" {}\notherwise allow \x1b as O\n', encoding="utf-8")
    lines = check(path).stdout.splitlines()
    source = next(line for line in lines if line.startswith("2 | "))
    carets = lines[lines.index(source) + 1]
    start = carets.index("^")
    assert source[start:start + 4] == "\\x1b" and carets[start:].rstrip() == "^" * 4, lines


def test_visible_escapes_only_what_a_terminal_acts_on() -> None:
    assert visible("amount > 5\t`é` ✓") == "amount > 5\t`é` ✓"
    assert visible("a\x1b[2Jb\u202ec\n") == "a\\x1b[2Jb\\u202ec\\x0a"
