"""One-line assertion helpers for the language tests."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from sentra_lang.compiler import Compilation, compile_source
from sentra_lang.diagnostics import Diagnostic, Severity


def compile_ok(src: str, *, analyse: bool = True) -> Compilation:
    """Compile and fail the test on any error, showing every diagnostic."""
    result = compile_source(src, "t.sentra", analyse=analyse)
    errors = [d for d in result.diagnostics if d.severity is Severity.ERROR]
    assert not errors, "\n".join(f"{d.code} {d.message} at {d.span}" for d in errors)
    return result


def assert_diagnostic(src: str, code: str, *, underline: str | None = None,
                      message: str | None = None) -> Diagnostic:
    """The source produces `code`, with carets under exactly `underline`."""
    result = compile_source(src, "t.sentra")
    found = [d for d in result.sorted_diagnostics() if d.code == code]
    codes = sorted({d.code for d in result.diagnostics})
    assert found, f"expected {code}, got {codes}"
    diag = found[0]
    if underline is not None:
        assert diag.span.text == underline, f"{code} underlines {diag.span.text!r}, not {underline!r}"
    if message is not None:
        assert message in diag.message, f"{message!r} not in {diag.message!r}"
    return diag


def serve_process(arguments: list[str], port: int, **popen: Any) -> subprocess.Popen[Any]:
    """``sentra-lang serve ARGUMENTS --port PORT`` in a process of its own (``popen``: options
    for :class:`subprocess.Popen`), once it answers ``/health`` (within 60 s)."""
    root = Path(__file__).resolve().parents[1]
    popen.setdefault("stdout", subprocess.DEVNULL)
    process = subprocess.Popen([sys.executable, "-m", "sentra_lang", "serve", *arguments,
                                "--port", str(port)], cwd=root, **popen)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the server did not start")
