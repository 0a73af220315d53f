"""Fixtures for the editor tests: a `sentra-lang lsp` process shared by a module's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("pygls", reason="the language server needs the `lsp` extra")

from tests.editors.lsp_client import LspSession  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lsp() -> Iterator[LspSession]:
    """One server for the module (each test opens its own documents)."""
    session = LspSession(options={"diagnosticsDelay": 10})
    yield session
    assert session.close() == 0, "the server exits 0 after shutdown and exit"
    assert not [log for log in session.logs if "failed" in log], session.logs
    assert "Traceback" not in "".join(session.stderr), "".join(session.stderr)
