"""The server never falls over: hostile documents and edits get diagnostics, every request
gets an answer, no handler raises (a guarded handler logs "... failed", which fails the test),
and the process still exits 0 at the end. Seeded and bounded."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from lsprotocol import types

from tests.editors.lsp_client import LspSession

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SEEDS = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "policies").rglob("*"))
         if p.suffix in (".sentra", ".sentra-test")]
PALETTE = ['"', "{", "}", "(", ")", "[", "]", ",", ".", ":", "#", "\\", "\n", "\r", "\r\n", "\t",
           " ", "->", "==", "é", "💸", "\u2028", "\x00", "\ud800", "when ", "allow ", "as ",
           "import ", '"lib/workspace.sentra"', "context.", "{amount}", "rule ", "agent ",
           "scenario ", "policy ", "input {", "let X = ", "-1", "9" * 30, "1e999"]
OPERATIONS = 250


def mutate(text: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 6)):
        start = rng.randint(0, len(text))
        end = min(len(text), start + rng.choice([0, 0, 1, 5, 50]))
        text = text[:start] + "".join(rng.choices(PALETTE, k=rng.randint(0, 4))) + text[end:]
    return text


def random_position(text: str, rng: random.Random) -> tuple[int, int]:
    lines = text.count("\n") + 1
    return rng.randint(0, lines + 2), rng.choice([0, 1, 5, 40, 10_000, rng.randint(0, 120)])


def test_hostile_documents_and_edits_never_break_the_server(tmp_path: Path) -> None:
    rng = random.Random(16)
    session = LspSession(options={"diagnosticsDelay": 0})
    try:
        texts: dict[str, str] = {}
        for step in range(OPERATIONS):
            action = rng.random()
            if action < 0.15 or not texts:
                suffix = rng.choice([".sentra", ".sentra-test"])
                path = ROOT / "policies" / f"fuzz_{step}{suffix}"    # never written to disk
                text = mutate(rng.choice(SEEDS), rng)
                address = session.open(path, text)
                texts[address] = text
                assert isinstance(session.diagnostics(address, version=1), list)
                continue
            address = rng.choice(sorted(texts))
            text = texts[address]
            if action < 0.45:
                start, end = random_position(text, rng), random_position(text, rng)
                session.change(address, "".join(rng.choices(PALETTE, k=rng.randint(0, 3))),
                               start=min(start, end), end=max(start, end))
            elif action < 0.6:
                session.hover(address, *random_position(text, rng))
            elif action < 0.75:
                session.completion(address, *random_position(text, rng))
            elif action < 0.9:
                session.definition(address, *random_position(text, rng))
            else:
                session.formatting(address)
        session.pump(0.3)
        for address in texts:
            session.close_document(address)
        assert not [log for log in session.logs if "failed" in log], session.logs[:5]
    finally:
        assert session.close() == 0
    assert "Traceback" not in "".join(session.stderr), "".join(session.stderr)[-2000:]


def test_a_file_over_the_size_limit_is_a_diagnostic(tmp_path: Path) -> None:
    session = LspSession()
    try:
        text = 'policy p version "1" {}\n' + "# " + "x" * (9 * 1024 * 1024) + "\n"
        address = session.open(tmp_path / "big.sentra", text)
        [diag] = session.diagnostics(address, version=1)
        assert diag.code == "SL006" and diag.severity == types.DiagnosticSeverity.Error
        assert session.hover(address, 0, 3) is None
    finally:
        assert session.close() == 0


def test_requests_for_documents_never_opened_answer_null(tmp_path: Path) -> None:
    session = LspSession()
    try:
        address = (tmp_path / "never.sentra").as_uri()
        assert session.hover(address, 0, 0) is None
        assert session.definition(address, 0, 0) is None
        assert session.completion(address, 0, 0) == []
        assert session.formatting(address) is None
        session.versions[address] = 1
        session.change(address, "x")        # a change to a document never opened is ignored
        session.pump(0.1)
        assert not session.published
        assert not session.logs
    finally:
        assert session.close() == 0


def test_text_no_file_could_hold_gets_the_loaders_diagnostics(tmp_path: Path) -> None:
    """A lone surrogate (JSON carries one; UTF-8 cannot) and a NUL are "not UTF-8 text", as in a
    file; a character no suite token starts with is a syntax error, not a parser crash."""
    session = LspSession()
    try:
        policy = 'policy p version "1" {}\notherwise allow as A "caf\ud800"\n'
        [diag] = session.diagnostics(session.open(tmp_path / "p.sentra", policy), version=1)
        assert diag.code == "SL005" and "not UTF-8 text (byte 49)" in diag.message   # 24 + 25
        assert (diag.range.start.line, diag.range.start.character) == (1, 25)
        binary = session.open(tmp_path / "b.sentra", 'policy p version "1" {}\n\x00')
        [diag] = session.diagnostics(binary, version=1)
        assert diag.code == "SL005" and "(byte 24)" in diag.message
        suite = 'suite "s" for "p.sentra"\n@\n'
        [diag] = session.diagnostics(session.open(tmp_path / "s.sentra-test", suite), version=1)
        assert diag.code == "SL002" and diag.range.start.line == 1
        assert not session.logs
    finally:
        assert session.close() == 0
