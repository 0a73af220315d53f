"""Shared test fixtures: golden files, regenerated with `pytest --update-goldens`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# In CI every run explores the same examples, so a red build is reproducible; locally each
# run draws new ones and keeps finding what CI has not tried yet.
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

pytest_plugins = ("tests.playwright_fixtures",   # the browser tests' Chromium (Playwright)
                  "tests.pg_fixtures")          # PostgreSQL: the session's server, schemas, stores

GOLDEN_DIR = Path(__file__).parent / "golden"
ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true",
                     help="rewrite golden files from the current output instead of comparing")


class Golden:
    """Compare text with a file under tests/golden/, or rewrite it with --update-goldens."""

    def __init__(self, update: bool) -> None:
        self.update = update

    def check(self, relative: str, actual: str) -> None:
        path = GOLDEN_DIR / relative
        if self.update or not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(actual, encoding="utf-8")
            if not self.update:
                pytest.fail(f"golden file {relative} did not exist; it was written, review it")
            return
        expected = path.read_text(encoding="utf-8")
        assert actual == expected, f"output differs from golden {relative} (--update-goldens)"


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Golden:
    return Golden(request.config.getoption("--update-goldens"))
