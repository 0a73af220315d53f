"""`risk_decay N per D` in the policy header: what the checker accepts and how it says what is
wrong (docs/language.md, "Risk decay"; docs/diagnostics.md, SL110, SL210, SL224)."""

from __future__ import annotations

import pytest

from tests.helpers import assert_diagnostic, compile_ok

OTHERWISE = "otherwise allow as X\n"


def header(setting: str) -> str:
    return f'policy p version "1" {{\n  {setting}\n}}\n' + OTHERWISE


@pytest.mark.parametrize(("written", "seconds"), [("10 per 1s", 1), ("10 per 30m", 1800),
                                                  ("1 per 1h", 3600), ("5 per 7d", 604800),
                                                  ("10 per 36500d", 36500 * 86400)])
def test_a_rate_compiles_to_whole_seconds(written: str, seconds: int) -> None:
    table = compile_ok(header(f"risk_decay {written}")).table
    assert table is not None and table.settings.risk_decay is not None
    assert (table.schema_version, table.settings.risk_decay.period) == (3, seconds)


@pytest.mark.parametrize(("written", "underline", "message", "hint"), [
    ("10 per 1hr", "1hr", "unknown duration unit `hr` in `1hr`", "did you mean `1h`?"),
    ("10 per 2hours", "2hours", "unknown duration unit `hours`", "did you mean `2h`?"),
    ("10 per 5x", "5x", "unknown duration unit `x` in `5x`", None),
    ("10 per hour", "hour", "`hour` is not a duration", "did you mean `1h`?"),
    ("10 per 90", "90", "duration `90` has no unit", "did you mean `90s`?"),
    ("10 per 1.5h", "1.5h", "is not a whole number of `h`", "write it in a smaller unit: `90m`"),
    ("10 per 0s", "0s", "duration `0s` is zero", "a duration is at least `1s`"),
    ("10 per -1h", "-1h", "duration `-1h` is negative", "a duration is at least `1s`"),
    ("10 per 36501d", "36501d", "duration `36501d` is too long", "a duration is at most `36500d`"),
    ("10 per " + "9" * 5000 + "h", "9" * 5000 + "h", "duration `99999999999999999999...999999999h` "
     "is too long", "a duration is at most `36500d`"),   # (found by the fuzzer: a traceback)
    ("10 per " + "9" * 5000 + ".5h", "9" * 5000 + ".5h", "is too long", None),
])
def test_a_bad_duration_is_sl224_at_its_place(written: str, underline: str, message: str,
                                              hint: str | None) -> None:
    found = assert_diagnostic(header(f"risk_decay {written}"), "SL224", underline=underline,
                              message=message)
    if hint is not None:
        assert found.help == hint


@pytest.mark.parametrize(("written", "underline", "message"), [
    ("risk_decay 0 per 1h", "0", "the amount of `risk_decay` must be a positive integer"),
    ("risk_decay 2.5 per 1h", "2.5", "the amount of `risk_decay` must be a positive integer"),
    ("risk_decay 10", "10", "`risk_decay` takes `AMOUNT per DURATION`"),
    ("risk_decay fast", "fast", "`risk_decay` takes `AMOUNT per DURATION`"),
    ("strikes 3 per 1h", "3 per 1h", "`strikes` must be"),
])
def test_a_bad_rate_or_a_rate_elsewhere_is_sl210(written: str, underline: str,
                                                 message: str) -> None:
    assert_diagnostic(header(written), "SL210", underline=underline, message=message)


def test_a_misspelt_setting_gets_did_you_mean() -> None:
    found = assert_diagnostic(header("risk_decai 10 per 1h"), "SL110", underline="risk_decai")
    assert found.help == "did you mean `risk_decay`?"

