"""Decisions as MCP answers, and which tools a policy can never allow (for hiding them).

Standard library and the runtime only, so the command line can use it without the `mcp` extra.
"""

from __future__ import annotations

from typing import Any

from sentra_runtime import Decision, Policy
from sentra_runtime.inputs import normalizer

META_KEY = "sentra/decision"
"""The key of the decision in a refused call's ``_meta``."""


def refusal_text(decision: Decision, wait: float = 0.0, status: str = "pending") -> str:
    """The one line an agent (and whoever reads its transcript) gets for a refused call: the
    decision, its reason and the rule; for a call held for review, its ticket and why the call
    did not run: the gateway did not wait for the verdict (``wait`` 0), none came within its
    ``wait`` seconds, or the ticket ended without one (``status`` ``expired`` or
    ``cancelled``)."""
    ticket = decision.ticket
    text = f"{decision.label}: {decision.reason} (rule {decision.rule_id})"
    if ticket is None:
        return text
    if decision.outcome != "review":
        return f"{text} Ticket: {ticket}."
    ended = TICKET_ENDED.get(status)
    if ended is not None:
        why = f"the ticket {ended} before an operator's verdict"
    elif wait > 0:
        why = (f"no operator's verdict came within the gateway's {wait:g} s wait, and a later "
               "approval will not run it")
    else:
        why = ("this gateway answers without waiting for an operator's verdict (it waits with "
               "--review-wait), so an approval will not run it")
    return f"{text} Ticket: {ticket}. The call did not run: {why}. A new call is decided anew."


TICKET_ENDED = {"expired": "expired", "cancelled": "was cancelled (the agent was reset)"}
"""How a ticket ended without a verdict, by its status."""


def refusal_result(decision: Decision, wait: float = 0.0,
                   status: str = "pending") -> dict[str, Any]:
    """The ``tools/call`` result of a refused call: an MCP tool error (``isError``) whose text
    is :func:`refusal_text`, with the decision itself under ``_meta`` for programs."""
    summary = {key: getattr(decision, key) for key in (
        "label", "outcome", "rule_id", "reason", "threat", "agent_id", "action",
        "cumulative_risk", "blocked_attempts", "status", "policy_hash")}
    ticket = getattr(decision, "ticket", None)
    if ticket is not None:
        summary["ticket"] = ticket
    return {"content": [{"type": "text", "text": refusal_text(decision, wait, status)}],
            "isError": True, "_meta": {META_KEY: {**summary, "seq": decision.seq}}}


def never_allowed(policy: Policy, tool: str) -> bool:
    """Whether no input and no agent state can get ``tool`` (as an action type, after the
    policy's normalisation) allowed.

    Read off the table: the action's rows in order, up to the first row without tests (rows
    after it never run), and the ``otherwise`` rule when some input can pass them all. Only a
    rule that blocks or shuts down never allows; any other can (``allow``: a fresh agent's
    first action, since a rule's risk never exceeds the threshold, `SL302`; an outcome that
    holds the action for someone to approve may let it run later). A row whose tests no input
    can meet still counts as able to allow: the answer errs towards showing a tool.
    """
    action = normalizer(policy.action_normalize)(tool)
    block = next((block for block in policy.actions if action in block.names), None)
    rows = () if block is None else block.rows
    for row in rows:
        if _can_allow(policy, row.rule):
            return False
        if not row.tests:
            return True
    return policy.otherwise is None or not _can_allow(policy, policy.otherwise)


REFUSING = frozenset({"block", "shutdown"})
"""The outcomes that never let an action run."""


def _can_allow(policy: Policy, rule_id: str) -> bool:
    return policy.rule(rule_id).outcome not in REFUSING
