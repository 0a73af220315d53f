"""The SDK: ask a sentra-lang decision server, or an embedded engine, before an action runs.

Standard library only. An agent talks to a :class:`PolicyEngine`: the in-process
:class:`~sentra_runtime.Engine`, or :class:`RemoteEngine`, the same interface over a decision
server's ``/v1`` API, so it switches between the two by one line::

    engine = Engine("policy.json")                          # in process
    engine = RemoteEngine("http://127.0.0.1:8000")          # a decision server

    decision = engine.evaluate("agent-7", "ISSUE_REFUND", {"refund_amount": 20})

    @engine.guard("agent-7", "ISSUE_REFUND")
    def refund(order_id: str, refund_amount: float) -> None: ...

:class:`RemoteEngine` **fails closed and on time**: every failure to get a decision (the server
unreachable, slow, refusing, answering something that is not a decision) gives a *Blocked*
decision whose rule id is ``FAIL_CLOSED`` and whose reason says what went wrong, within the
call's deadline; deciding never raises. :class:`AsyncEngine` gives either engine an asyncio
face. :class:`Sentra` (and its in-process twin :class:`EmbeddedSentra`) keep the Sentra
reference SDK's interface over the Sentra-compatible API, for reference clients.

This module is where to import them from; they live in :mod:`sentra_runtime.remote` and
:mod:`sentra_runtime.sentra_api`, over :mod:`sentra_runtime.transport` (HTTP with a deadline)
and :mod:`sentra_runtime.wire` (decisions read back from the server's answers).
"""

from __future__ import annotations

from sentra_runtime.remote import AsyncEngine, PolicyEngine, RemoteEngine, SentraError
from sentra_runtime.sentra_api import (
    EmbeddedSentra,
    Sentra,
    SentraBlocked,
    SentraResult,
    blocked,
)
from sentra_runtime.wire import FAIL_CLOSED

__all__ = ["FAIL_CLOSED", "AsyncEngine", "PolicyEngine", "EmbeddedSentra", "RemoteEngine", "Sentra",
           "SentraBlocked", "SentraError", "SentraResult", "blocked"]
