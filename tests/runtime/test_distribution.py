"""`runtime/` builds on its own as a dependency-free distribution of `sentra_runtime`."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[2] / "runtime"


@pytest.mark.slow
def test_runtime_builds_alone_without_dependencies(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(RUNTIME)],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    [wheel] = tmp_path.glob("sentra_runtime-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith("/METADATA"))).decode()
    assert "sentra_runtime/engine.py" in names and "sentra_runtime/py.typed" in names
    assert not any(name.startswith("sentra_lang/") for name in names)
    assert "Requires-Dist" not in metadata
