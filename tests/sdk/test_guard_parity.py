"""The remote guard follows exactly Engine.guard's rules (one implementation serves both): each
case runs on an embedded engine and on a remote one over the same policy, and must decide and
refuse the same way, with the answer the rules give."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sentra_runtime import ActionDenied, Engine
from sentra_runtime.client import PolicyEngine, RemoteEngine

from tests.server.conftest import Server

Observed = list[Any]


def outcome(call: Callable[[], Any]) -> tuple[str, ...]:
    """What a guarded call came to: the body's value, the denial, or the refusal."""
    try:
        return ("ran", repr(call()))
    except ActionDenied as denied:
        return ("denied", denied.decision.rule_id, denied.decision.reason)
    except TypeError as refused:
        return ("refused", str(refused))


def positional_and_defaults(engine: PolicyEngine, agent: str) -> Observed:
    @engine.guard(agent, "EXPORT_DATA")
    def export(destination_type: str, data_classification: str = "sensitive",
               **options: Any) -> str:
        return destination_type

    return [outcome(lambda: export("internal")), export.last_decision.rule_id,
            outcome(lambda: export("external")), export.last_decision.cumulative_risk,
            outcome(lambda: export("external", data_classification="restricted"))]


def static_fields_and_kwargs(engine: PolicyEngine, agent: str) -> Observed:
    @engine.guard(agent, "EXPORT_DATA", {"destination_type": "external"})
    def export(data_classification: str = "sensitive", **options: Any) -> None:
        pass

    return [outcome(export), export.last_decision.rule_id,
            outcome(lambda: export("sensitive", destination_type="internal")),
            export.last_decision.rule_id]


def refusals_at_call(engine: PolicyEngine, agent: str) -> Observed:
    @engine.guard(agent, "SEND_NOTIFICATION")
    def notify(*recipients: str, **fields: Any) -> int:
        return len(recipients)

    @engine.guard(agent, "EXPORT_DATA")
    def export(destination_type: str, data_classification: str, /, **options: Any) -> None:
        pass

    return [outcome(lambda: notify(notification_type="rejection")),
            outcome(lambda: notify("x", notification_type="approval")),
            outcome(lambda: export("external", "restricted", data_classification="internal")),
            outcome(lambda: export("external")),   # does not fit the signature
            notify.last_decision.rule_id, export.last_decision]


def refusals_of_the_guard_itself(engine: PolicyEngine, agent: str) -> Observed:
    """Checks that need the declared names: when decorating on an engine, at the first call on
    a remote one (decorating does not wait for the network); the same refusal either way."""
    def decorated_and_called(fields: dict[str, Any], function: Callable[..., Any]) -> Any:
        return outcome(lambda: engine.guard(agent, "EXPORT_DATA", fields)(function)())

    def export(destination_type: str = "internal") -> None:
        pass

    def send(notification_type: str = "x", **context: Any) -> None:
        pass

    return [decorated_and_called({"destination_type": "external"}, export),
            decorated_and_called({}, send),
            outcome(lambda: engine.guard(agent, "X")(max)),
            outcome(lambda: engine.guard(agent, "X")(lambda: (yield)))]


def partials_and_flat_keys(engine: PolicyEngine, agent: str) -> Observed:
    def export(session: str, destination_type: str = "internal",
               data_classification: str = "internal") -> tuple[str, str]:
        return destination_type, data_classification

    tool = functools.partial(export, "S", "external")
    guarded = engine.guard(agent, "EXPORT_DATA")(functools.partial(
        tool, data_classification="restricted"))

    @engine.guard(f"{agent}-b", "SEND_NOTIFICATION")
    def notify(notification_type: str, **options: Any) -> None:
        pass

    return [outcome(guarded), guarded.last_decision.rule_id,
            outcome(lambda: notify("approval", **{
                "context.approval_requires_verified_eligibility": True}))]


def methods_and_coroutines(engine: PolicyEngine, agent: str) -> Observed:
    class Exporter:
        destination_type = "ignored"

        @engine.guard(agent, "EXPORT_DATA")
        def export(self, destination_type: str, data_classification: str) -> str:
            return destination_type

    @engine.guard(f"{agent}-c", "CHANGE_PERMISSION")
    async def grant(user: str) -> str:
        return user

    @engine.guard(f"{agent}-c", "SEND_NOTIFICATION")
    async def notify(notification_type: str) -> str:
        return notification_type

    return [outcome(lambda: Exporter().export("external", "internal")),
            outcome(lambda: asyncio.run(grant("eve"))),
            outcome(lambda: asyncio.run(notify("rejection"))),
            notify.last_decision.rule_id]


CASES = [positional_and_defaults, static_fields_and_kwargs, refusals_at_call,
         refusals_of_the_guard_itself, partials_and_flat_keys, methods_and_coroutines]
EXPECTED: dict[str, Callable[[Observed], bool]] = {
    "positional_and_defaults": lambda seen: seen[:4] == [
        ("ran", "'internal'"), "ALLOW_INTERNAL_EXPORT", ("ran", "'external'"), 80]
        and seen[4][:2] == ("denied", "RISK_THRESHOLD_EXCEEDED"),
    "static_fields_and_kwargs": lambda seen: seen[1::2] == [
        "RISKY_SENSITIVE_EXTERNAL_EXPORT", "ALLOW_INTERNAL_EXPORT"],
    "refusals_at_call": lambda seen: seen[0] == ("ran", "0") and "*recipients" in seen[1][1]
        and "ambiguous" in seen[2][1] and seen[3][0] == "refused"
        and seen[4:] == ["ALLOW_REJECTION_NOTIFICATION", None],
    "refusals_of_the_guard_itself": lambda seen: "destination_type" in seen[0][1]
        and "declared field" in seen[1][1] and "no signature" in seen[2][1]
        and "generator" in seen[3][1],
    "partials_and_flat_keys": lambda seen: seen[1] == "RISKY_SENSITIVE_EXTERNAL_EXPORT"
        and seen[2][:2] == ("denied", "BLOCK_UNSAFE_APPROVAL_NOTIFICATION"),
    "methods_and_coroutines": lambda seen: seen[0] == ("ran", "'external'")
        and seen[1][:2] == ("denied", "BLOCK_PERMISSION_CHANGE")
        and seen[2:] == [("ran", "'rejection'"), "ALLOW_REJECTION_NOTIFICATION"],
}


@pytest.fixture
def engines(sentra_table: dict[str, Any], sentra_server: Server) -> Iterator[list[PolicyEngine]]:
    remote = RemoteEngine(sentra_server.url)
    yield [Engine(sentra_table), remote]
    remote.close()


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_the_guard_rules_are_the_same_remotely(case: Callable[[PolicyEngine, str], Observed],
                                               engines: list[PolicyEngine], agent: str) -> None:
    embedded, remote = (case(engine, agent) for engine in engines)
    assert embedded == remote
    assert EXPECTED[case.__name__](embedded), embedded
