"""The browser tests skip, saying why, when Chromium is missing locally, and fail in CI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.playwright_fixtures import find_chromium, in_ci, unavailable

ROOT = Path(__file__).resolve().parent.parent
A_BROWSER_TEST = "tests/server/test_dashboard.py::test_risk_chart_has_axes_and_labels"


@pytest.mark.parametrize(("value", "ci"), [("true", True), ("1", True), ("yes", True),
                                           ("false", False), ("0", False), ("", False)])
def test_ci_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch, value: str,
                                         ci: bool) -> None:
    monkeypatch.setenv("CI", value)
    assert in_ci() is ci
    outcome = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(outcome, match="chromium is missing"):
        unavailable("chromium is missing")


def test_a_chromium_that_is_not_there_is_not_found(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.setenv("SENTRA_CHROMIUM", str(tmp_path / "chromium"))
    assert find_chromium() is None
    monkeypatch.setenv("SENTRA_CHROMIUM", sys.executable)   # any executable file is taken
    assert find_chromium() == sys.executable


@pytest.mark.slow
@pytest.mark.parametrize("ci", ["", "true"])
def test_without_chromium_a_browser_test_skips_locally_and_fails_in_ci(tmp_path: Path,
                                                                       ci: str) -> None:
    environment = {**os.environ, "CI": ci, "SENTRA_CHROMIUM": str(tmp_path / "no-chromium")}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           A_BROWSER_TEST], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=300, check=False)
    output = done.stdout + done.stderr
    assert "chromium is not installed" in output, output[-2000:]
    if ci:
        assert done.returncode == 1 and "1 error" in output, output[-2000:]  # at setup
        assert "browser tests cannot run in CI" in output
    else:
        assert done.returncode == 0 and "1 skipped" in output, output[-2000:]
