"""What a hostile policy or suite file holds is shown, never acted on: control characters,
zero-width characters and bidirectional overrides in diagnostics are escapes, in every output a
terminal or a CI log reads, with the carets under them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sentra_lang.diagnostics import visible

HOSTILE = ["\x1b[31m", "\x07", "\u202e", "\u200b", "\x9b", "\ufeff", "\xad", "\U000e0041"]
RAW = {"\x1b", "\x07", "\u202e", "\u200b", "\x9b", "\ufeff", "\r", "\xad", "\U000e0041"}


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


@pytest.mark.parametrize(("hidden", "escape"), [("\x1b", "\\x1b"),
                                                 ("\U000e0041", "\\udb40\\udc41")])
def test_the_carets_stay_under_the_escaped_character(tmp_path: Path, hidden: str,
                                                     escape: str) -> None:
    """Under its whole escape, a surrogate pair's for a character above U+FFFF."""
    path = tmp_path / "p.sentra"
    path.write_text(f'policy p version "1" {{}}\notherwise allow {hidden} as O\n',
                    encoding="utf-8")
    lines = check(path).stdout.splitlines()
    source = next(line for line in lines if line.startswith("2 | "))
    carets = lines[lines.index(source) + 1]
    start = carets.index("^")
    assert source[start:start + len(escape)] == escape, lines
    assert carets[start:].rstrip() == "^" * len(escape), lines


def test_visible_escapes_only_what_a_terminal_acts_on() -> None:
    assert visible("amount > 5\t`é` ✓") == "amount > 5\t`é` ✓"
    assert visible("a\x1b[2Jb\u202ec\n") == "a\\x1b[2Jb\\u202ec\\x0a"


DRAWN_AS_NOTHING = {
    "\xad": "soft hyphen", "\u034f": "combining grapheme joiner", "\u115f": "Hangul filler",
    "\u180e": "Mongolian vowel separator", "\u2062": "invisible times",
    "\u3164": "Hangul filler", "\ufe0f": "variation selector 16", "\ufff9": "annotation anchor",
    "\U000e0001": "language tag", "\U000e0041": "tag A (ASCII smuggling)",
    "\U000e0100": "variation selector 17 (smuggling bytes after an emoji)",
    "\U0001d173": "musical begin beam",
}
"""Characters a screen draws as nothing, each used to hide text in what a person reads: tag
characters spell out ASCII no one sees; variation selectors carry bytes after a visible
character; fillers make a name look empty."""


@pytest.mark.parametrize("hidden", DRAWN_AS_NOTHING, ids=DRAWN_AS_NOTHING.values())
def test_every_character_drawn_as_nothing_is_shown_escaped(hidden: str) -> None:
    """Before, only zero-width spaces and bidi controls were: `admin` followed by tag characters
    read `admin` on a terminal, a CI log and the dashboard, and `fmt` kept them raw."""
    from sentra_lang.diagnostics import json_escape, visible_json
    from sentra_lang.formatter import format_string

    shown = visible(f"admin{hidden}")
    assert hidden not in shown and shown.startswith("admin\\"), repr(shown)
    escape = json_escape(hidden)
    assert visible_json({"agent": f"admin{hidden}"}) == f'{{"agent": "admin{escape}"}}'
    assert format_string(f"admin{hidden}") == f'"admin{escape}"'


def test_a_character_above_the_basic_plane_is_escaped_as_a_surrogate_pair() -> None:
    """As JSON and the language write it, so that the escape reads back as the character."""
    import json

    from sentra_lang.diagnostics import json_escape, visible_json

    assert json_escape("\U000e0041") == "\\udb40\\udc41"
    assert json_escape("\u202e") == "\\u202e"
    assert visible("a\U000e0041") == "a\\udb40\\udc41"
    text = "x\U000e0041\U000e0100\u202e\n✓"
    assert json.loads(visible_json(text)) == text
