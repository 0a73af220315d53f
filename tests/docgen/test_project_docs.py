"""The project's own docs site builds strictly, with the generated policy reference."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_mkdocs_build_strict_passes(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    reference = tmp_path / "site" / "reference" / "policies" / "sentra.html"
    assert "BLOCK_PERMISSION_CHANGE" in reference.read_text(encoding="utf-8")
    assert 'class="highlight"' in (tmp_path / "site" / "getting-started.html").read_text()
