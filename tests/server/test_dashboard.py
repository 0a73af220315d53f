"""The dashboard in headless Chromium: it loads and shows agents and events from the server.

``--dump-dom`` waits for open requests, so the page is loaded with ``?live=0`` (no event stream);
the stream itself is tested over HTTP in test_native.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.server.conftest import Server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_dashboard_shows_agents_and_events(own_server: Server, tmp_path: Path) -> None:
    for _ in range(3):
        own_server.act("rogue-agent", "CHANGE_PERMISSION")
    own_server.act("calm-agent", "DELETE_RECORD")
    result = subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=5000", "--dump-dom", own_server.url + "/dashboard?live=0"],
        check=False, capture_output=True, text=True, timeout=60)
    dom = result.stdout
    assert 'data-agent="rogue-agent"' in dom, result.stderr[-2000:]
    assert 'class="shut-down' in dom and 'data-agent="calm-agent"' in dom
    assert 'id="count-shutdown">1<' in dom and 'id="count-events">4<' in dom
    assert "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS" in dom
