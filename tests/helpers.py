"""One-line assertion helpers for the language tests."""

from __future__ import annotations

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
