"""One-line assertion helpers for the language tests."""

from __future__ import annotations

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


def assert_clean(src: str) -> None:
    """No errors and no warnings."""
    result = compile_source(src, "t.sentra")
    noisy = [d for d in result.diagnostics if d.severity is not Severity.INFO]
    assert not noisy, [f"{d.code} {d.message}" for d in noisy]


def assert_rows(src: str, action: str, expected: list[tuple[str, list[dict[str, Any]]]]) -> None:
    """The action's rows are `[(rule id, [test dicts without null keys])]`, in order."""
    table = compile_ok(src, analyse=False).table
    assert table is not None
    block = next(b for b in table.actions if action in b.names)
    actual = [(row.rule, [t.model_dump(exclude_defaults=True) for t in row.tests])
              for row in block.rows]
    assert actual == expected
