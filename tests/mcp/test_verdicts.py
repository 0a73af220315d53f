"""Which tools a policy can never allow (the gateway's `--hide-never-allowed`), and the answer a
refused call gets; known answers written from the rules in docs/integrations.md."""

from __future__ import annotations

import pytest
from sentra_runtime import Engine, load_policy

from sentra_lang.mcp.verdicts import META_KEY, never_allowed, refusal_result, refusal_text
from tests.helpers import compile_ok
from tests.mcp.conftest import TOOLS_POLICY


def policy(body: str,
           header: str = "risk_threshold 50\n  action_type normalize trim, upper") -> object:
    source = f'policy p version "1" {{\n  {header}\n}}\ninput {{\n  n: int?\n}}\n{body}'
    table = compile_ok(source, analyse=False).table
    assert table is not None
    return load_policy(table.model_dump(mode="json"))


@pytest.mark.parametrize(("body", "tool", "hidden"), [
    ("action T { block as B }", "t", True),
    ("action T { shutdown as S }", " t ", True),
    ("action T { when n > 1 block as B\n allow as A }", "T", False),
    ("action T { when n > 1 allow as A\n block as B }", "T", False),
    ("action T { block as B\n allow as A }", "T", True),                 # A never runs
    ("action T { when n > 1 block as B }", "T", True),                   # falls to no otherwise
    ("action T { when n > 1 block as B }\notherwise allow as O", "T", False),
    ("action T { when n > 1 block as B }\notherwise block as O", "T", True),
    ("action T { allow risk 50 as A }", "T", False),                     # exactly the threshold
    ("action T { allow as A }", "OTHER", True),                          # no otherwise
    ("action T { allow as A }\notherwise allow risk 20 as O", "other", False),
    ("action T { allow as A }\notherwise shutdown as O", "other", True),
])
def test_never_allowed(body: str, tool: str, hidden: bool) -> None:
    assert never_allowed(policy(body), tool) is hidden  # type: ignore[arg-type]


def test_without_normalisation_names_are_exact() -> None:
    strict = policy("action T { block as B }\notherwise allow as O", header="strikes 3")
    assert never_allowed(strict, "T") is True  # type: ignore[arg-type]
    assert never_allowed(strict, "t") is False  # type: ignore[arg-type]


def test_the_test_policy_hides_what_the_gateway_test_expects() -> None:
    tools = load_policy(compile_ok(TOOLS_POLICY.read_text()).table.model_dump(mode="json"))  # type: ignore[union-attr]
    assert [name for name in ("read_file", "change_permission", "delete_repository",
                              "summarize", "echo", "count") if never_allowed(tools, name)] == [
        "change_permission", "delete_repository"]


def test_a_refusal_carries_the_decision() -> None:
    engine = Engine(compile_ok(TOOLS_POLICY.read_text()).table.model_dump(mode="json"))  # type: ignore[union-attr]
    decision = engine.evaluate("a", "change_permission", {"user": "eve", "role": "admin"})
    assert refusal_text(decision) == ("Blocked: Giving eve the role admin needs a human. "
                                      "(rule BLOCK_PERMISSION_CHANGE)")
    result = refusal_result(decision)
    assert result["isError"] is True and result["content"][0]["text"] == refusal_text(decision)
    assert result["_meta"][META_KEY]["seq"] == decision.seq
    assert result["_meta"][META_KEY]["threat"] == "Privilege Escalation"


@pytest.mark.parametrize(("wait", "status", "why"), [
    (0.0, "pending", "this gateway answers without waiting for an operator's verdict (it waits "
                     "with --review-wait), so an approval will not run it"),
    (2.5, "pending", "no operator's verdict came within the gateway's 2.5 s wait, and a later "
                     "approval will not run it"),
    (30.0, "expired", "the ticket expired before an operator's verdict"),
    (30.0, "cancelled", "the ticket was cancelled (the agent was reset) before an operator's "
                        "verdict"),
])
def test_a_held_call_says_why_it_did_not_run(wait: float, status: str, why: str) -> None:
    source = TOOLS_POLICY.read_text().replace("  block risk 60 as BLOCK_PERMISSION_CHANGE",
                                              "  review risk 60 as BLOCK_PERMISSION_CHANGE")
    engine = Engine(compile_ok(source).table.model_dump(mode="json"))  # type: ignore[union-attr]
    held = engine.evaluate("a", "change_permission", {"user": "eve", "role": "admin"})
    assert refusal_text(held, wait, status) == (
        "Review Required: Giving eve the role admin needs a human. (rule "
        f"BLOCK_PERMISSION_CHANGE) Ticket: {held.ticket}. The call did not run: {why}. A new "
        "call is decided anew.")
    assert refusal_result(held, wait, status)["_meta"][META_KEY]["ticket"] == held.ticket
    denied = engine.review(held.ticket or "", False, operator="alice")
    assert refusal_text(denied, wait, status) == (   # a verdict's decision: wait, status unused
        f"Blocked: Denied by `alice` after review. (rule BLOCK_PERMISSION_CHANGE) Ticket: "
        f"{held.ticket}.")
