"""The `review` outcome, its `expires` clause and the `review_timeout` setting: what the checker
accepts and how it says what is wrong (docs/language.md, "Review"; docs/diagnostics.md, SL110,
SL210, SL224, SL310)."""

from __future__ import annotations

import pytest

from tests.helpers import assert_diagnostic, compile_ok

OTHERWISE = "otherwise allow as X\n"


def policy(setting: str = "", rule: str = 'review risk 30 as R "Needs a human."') -> str:
    return f'policy p version "1" {{\n  {setting}\n}}\naction A {{\n  {rule}\n}}\n' + OTHERWISE


@pytest.mark.parametrize(("written", "seconds"), [("1s", 1), ("30m", 1800), ("1h", 3600),
                                                  ("7d", 604800)])
def test_review_timeout_and_expires_compile_to_whole_seconds(written: str, seconds: int) -> None:
    table = compile_ok(policy(f"review_timeout {written}",
                              f'review as R "Needs a human." expires {written}')).table
    assert table is not None
    assert (table.schema_version, table.settings.review_timeout, table.rules[0].expires) == (
        4, seconds, seconds)


def test_a_review_rule_without_settings_has_no_timeout_or_expiry_keys() -> None:
    table = compile_ok(policy()).table
    assert table is not None
    data = table.model_dump(mode="json")
    assert data["schema_version"] == 4
    assert "review_timeout" not in data["settings"]
    assert "expires" not in data["rules"][0]
    assert data["rules"][0]["outcome"] == "review"


def test_review_timeout_alone_makes_version_4() -> None:
    table = compile_ok(policy("review_timeout 1h", 'allow as R "ok"')).table
    assert table is not None and table.schema_version == 4


def test_otherwise_may_review() -> None:
    source = 'policy p version "1" {}\notherwise review risk 5 as ASK "Ask a human."\n'
    table = compile_ok(source).table
    assert table is not None and table.rules[0].outcome == "review"


@pytest.mark.parametrize("outcome", ["allow", "block", "shutdown"])
def test_an_expiry_on_a_rule_that_does_not_review_is_sl310(outcome: str) -> None:
    found = assert_diagnostic(policy(rule=f'{outcome} as R "x" expires 2h'), "SL310",
                              underline="expires 2h",
                              message=f"a `{outcome}` rule has no expiry")
    assert found.help is not None and "make the rule `review`" in found.help


@pytest.mark.parametrize(("written", "underline", "message", "hint"), [
    ("review_timeout 1hr", "1hr", "unknown duration unit `hr` in `1hr`", "did you mean `1h`?"),
    ("review_timeout hour", "hour", "`hour` is not a duration", "did you mean `1h`?"),
    ("review_timeout 0s", "0s", "duration `0s` is zero", "a duration is at least `1s`"),
    ("review_timeout 36501d", "36501d", "is too long", "a duration is at most `36500d`"),
])
def test_a_bad_review_timeout_is_sl224(written: str, underline: str, message: str,
                                       hint: str) -> None:
    found = assert_diagnostic(policy(written), "SL224", underline=underline, message=message)
    assert found.help == hint


@pytest.mark.parametrize(("written", "underline", "hint"), [
    ("review_timeout 90", "90", "did you mean `90s`?"),
    ('review_timeout "1h"', '"1h"', None),
])
def test_a_review_timeout_that_is_no_duration_is_sl210(written: str, underline: str,
                                                       hint: str | None) -> None:
    found = assert_diagnostic(policy(written), "SL210", underline=underline,
                              message="`review_timeout` takes a duration")
    if hint is not None:
        assert found.help == hint


@pytest.mark.parametrize(("written", "underline", "message"), [
    ("expires 90m30s", "90m30s", "unknown duration unit"),
    ("expires soon", "soon", "`soon` is not a duration"),
    ("expires 2hours", "2hours", "unknown duration unit `hours`"),
])
def test_a_bad_expiry_is_sl224(written: str, underline: str, message: str) -> None:
    assert_diagnostic(policy(rule=f'review as R "x" {written}'), "SL224", underline=underline,
                      message=message)


def test_a_misspelt_review_timeout_gets_did_you_mean() -> None:
    found = assert_diagnostic(policy("review_timout 1h"), "SL110", underline="review_timout")
    assert found.help == "did you mean `review_timeout`?"


def test_a_group_may_not_set_review_timeout() -> None:
    source = ('policy p version "1" {}\ngroup g {\n  agents "a"\n  review_timeout 1h\n}\n'
              + OTHERWISE)
    assert_diagnostic(source, "SL110", underline="review_timeout")


def test_expires_twice_is_sl115() -> None:
    assert_diagnostic(policy(rule='review as R "x" expires 1h expires 2h'), "SL115",
                      underline="expires 2h")


def test_a_misspelt_outcome_says_review_is_one() -> None:
    found = assert_diagnostic(policy(rule='reveiw as R "x"'), "SL001", underline="reveiw")
    assert found.help is not None and found.help.startswith("did you mean `review`?")
