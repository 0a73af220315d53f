"""Rate limits in the language: what compiles to which table, and the checker's diagnostics."""

from __future__ import annotations

from typing import Any

from sentra_lang.compiler import compile_source
from tests.helpers import assert_diagnostic, compile_ok

HEAD = 'policy p version "1" {}\n'
OTHER = "otherwise allow as OTHER\n"


def table(src: str) -> dict[str, Any]:
    compiled = compile_ok(src).table
    assert compiled is not None
    return compiled.model_dump(mode="json")


def test_limits_compile_to_schema_version_4_and_their_places() -> None:
    data = table(HEAD + 'group g {\n  agents "a-*"\n  limit 10 per 1h\n  limit A 2 per 30m\n}\n'
                 'action A {\n  limit 5 per 1d\n  allow as X limit 3 per 90s\n}\n' + OTHER)
    assert data["schema_version"] == 4
    assert data["rules"][0]["limit"] == {"count": 3, "period": 90}
    assert data["actions"][0]["limits"] == [{"count": 5, "period": 86400}]
    assert data["groups"][0]["limits"] == [{"count": 10, "period": 3600},
                                           {"action": "A", "count": 2, "period": 1800}]


def test_a_policy_without_limits_keeps_its_version_and_keys() -> None:
    data = table(HEAD + "action A {\n  allow as X\n}\n" + OTHER)
    assert data["schema_version"] == 2
    assert "limit" not in data["rules"][0] and "limits" not in data["actions"][0]


def test_a_limit_counts_from_1_to_10000() -> None:
    assert_diagnostic(HEAD + "action A {\n  limit 0 per 1h\n  allow as X\n}\n" + OTHER,
                      "SL225", underline="0")
    assert_diagnostic(HEAD + "action A {\n  allow as X limit 10001 per 1h\n}\n" + OTHER,
                      "SL225", underline="10001")
    assert_diagnostic(HEAD + "action A {\n  allow as X limit 2.5 per 1h\n}\n" + OTHER,
                      "SL225", underline="2.5")


def test_a_limit_needs_a_duration() -> None:
    diag = assert_diagnostic(HEAD + "action A {\n  allow as X limit 2 per 1hour\n}\n" + OTHER,
                             "SL224", underline="1hour")
    assert diag.help is not None and "1h" in diag.help


def test_only_an_allow_rule_is_limited() -> None:
    assert_diagnostic(HEAD + "action A {\n  block as X limit 2 per 1h\n}\n" + OTHER, "SL225",
                      underline="limit 2 per 1h", message="a `block` rule is never limited")


def test_two_limits_over_one_period_are_refused() -> None:
    assert_diagnostic(HEAD + "action A {\n  limit 2 per 1h\n  limit 3 per 60m\n  allow as X\n}\n"
                      + OTHER, "SL225", underline="limit 3 per 60m")
    assert_diagnostic(HEAD + "action A {\n  allow as X limit 2 per 1h limit 3 per 1d\n}\n"
                      + OTHER, "SL115")


def test_a_group_limit_names_an_action_a_block_names() -> None:
    diag = assert_diagnostic(HEAD + "action ISSUE_REFUND {\n  allow as X\n}\ngroup g {\n  agents "
                             '"a"\n  limit ISSUE_REFUN 2 per 1h\n}\n' + OTHER, "SL134",
                             underline="ISSUE_REFUN")
    assert diag.help is not None and "ISSUE_REFUND" in diag.help


def test_a_limit_after_the_rules_of_a_block_is_the_last_rule_s_and_says_where_it_goes() -> None:
    diag = assert_diagnostic(HEAD + "action A {\n  allow as X\n  block as Y\n  limit 2 per 1h\n"
                             "}\n" + OTHER, "SL225", underline="limit 2 per 1h")
    assert diag.help is not None and "before the rules of the action block" in diag.help
    result = compile_source(HEAD + "action A {\n  allow as X\n  limit 2 per 1h\n  block as Y\n"
                            "}\n" + OTHER, "t.sentra")
    assert "SL225" not in [d.code for d in result.diagnostics]   # the allow rule's limit


def test_a_group_without_agents_keeps_its_empty_agents_in_the_table() -> None:
    """The policy fuzzer's finding: a group of limits alone compiled to a table without
    `agents`, which the runtime refused (a traceback in `explain`)."""
    from sentra_runtime import Engine

    data = table(HEAD + "group g {\n  limit 2 per 1h\n}\naction A {\n  allow as X\n}\n" + OTHER)
    assert data["groups"][0]["agents"] == []
    assert Engine(data).evaluate("a", "A").allowed
