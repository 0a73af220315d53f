"""The Sentra reference SDK's interface, kept for reference clients of the Sentra-compatible API.

:class:`Sentra` asks a decision server (``POST /agent-action``), :class:`EmbeddedSentra` an
in-process engine; both answer :class:`SentraResult` and fail closed (a Blocked result whose
reason starts with ``Fail closed:``, never an exception from ``evaluate``). Only that API's
fields reach the policy; any policy's fields travel with
:class:`~sentra_runtime.remote.RemoteEngine`. Import these from :mod:`sentra_runtime.client`.
"""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sentra_runtime.engine import Engine
from sentra_runtime.guard import Asker, guard_with
from sentra_runtime.inputs import REFUSE
from sentra_runtime.policy import Policy
from sentra_runtime.remote import (
    SentraError,
    ServerClient,
    Unsendable,
    agent_segment,
    fail_closed_reason,
    jsonable,
    log_fail_closed,
    logger,
)
from sentra_runtime.stores import Store
from sentra_runtime.transport import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_RESPONSE_BYTES,
    TransportError,
    printable,
)

F = TypeVar("F", bound=Callable[..., Any])
ALLOWED = "Allowed"
BLOCKED = "Blocked"
SENTRA_FIELDS = frozenset({"target", "amount", "notification_type", "data_classification",
                           "destination_type", "context"})
"""The fields of a Sentra-compatible request, which that API's ``guard`` reads from arguments."""
REQUEST_KEYS = frozenset({"agent_id", "action_type", "policy_context"})
"""The Sentra-compatible request's own keys, which no field may replace."""
REQUEST_FIELDS = ("target", "amount", "notification_type", "data_classification",
                  "destination_type")
"""The request's top-level fields beside its own keys and ``policy_context``."""
REFERENCE_DEFAULTS = {"data_classification": "internal", "destination_type": "internal"}
"""The reference server's defaults for request fields a client leaves out."""
EXTRA_CONTEXT = "\0context"
"""Where a top-level ``context`` key a client sent goes in the policy's input: never a declared
name, so a policy that refuses undeclared fields refuses it (the server names it
``body.context``)."""


def policy_input(policy: Policy, sent: Mapping[str, Any], context: dict[str, Any],
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The fields a policy gets from a Sentra-compatible request (the server's
    ``POST /agent-action`` and :class:`EmbeddedSentra`, one definition).

    ``sent`` holds the request fields (:data:`REQUEST_FIELDS`) the client gave: the policy gets
    those it declares (itself or a field under it) that are not null, and the reference's
    defaults for those it declares and the client left out; the others are the API's, not the
    policy's, so a policy that refuses undeclared fields is not refused them. ``context`` (the
    request's ``policy_context``) goes whole as ``context``: its keys are the policy's to judge;
    an empty one is left out for a policy that declares no ``context`` field (it holds nothing,
    and a policy that refuses undeclared fields would refuse the empty object).
    ``extra`` holds the client's other top-level keys (a policy's own fields such as
    ``order_id``, or a typo such as ``amout``): the policy gets those it declares; a policy
    that refuses undeclared fields gets the rest too, and so refuses them; otherwise they are
    ignored, as the reference ignores them."""
    declared = _top_level(policy)
    fields = {name: value for name, value in sent.items()
              if value is not None and name in declared}
    for name, default in REFERENCE_DEFAULTS.items():
        if name not in sent and name in declared:
            fields[name] = default
    refuse = policy.undeclared_fields == REFUSE
    for name, value in (extra or {}).items():
        if name == "context":
            if refuse:
                fields[EXTRA_CONTEXT] = value
        elif name in declared or refuse:
            fields[name] = value
    if context or "context" in declared:
        fields["context"] = context   # (an empty one is no field to a policy without context)
    return fields


_TOP_LEVEL: dict[str, frozenset[str]] = {}


def _top_level(policy: Policy) -> frozenset[str]:
    """The first parts of the policy's declared field names (``amount``, ``context``), cached
    per policy hash."""
    found = _TOP_LEVEL.get(policy.hash)
    if found is None:
        found = frozenset(spec.name.split(".", 1)[0] for spec in policy.inputs)
        _TOP_LEVEL[policy.hash] = found
    return found


@dataclass(frozen=True)
class SentraResult:
    """The answer for one proposed action; ``allowed`` is the only field a caller must check."""

    allowed: bool
    decision: str
    """``Allowed``, ``Blocked`` or ``Agent Shut Down`` (any other label is not allowed)."""
    reason: str
    risk_score: int
    """The risk the action attempted (the event's ``attempted_risk``)."""
    raw: dict[str, Any] = field(default_factory=dict)
    """The server's event object (empty when the server could not be asked)."""


class SentraBlocked(PermissionError):
    """Raised by ``guard`` before the guarded body runs; carries the result."""

    def __init__(self, result: SentraResult, agent_id: str, action: str) -> None:
        super().__init__(f"{result.decision}: {action} by agent {agent_id!r}: {result.reason}")
        self.result = result


def blocked(reason: str) -> SentraResult:
    """The fail-closed result."""
    return SentraResult(False, BLOCKED, fail_closed_reason(reason), 0, {})


def _sentra_refusal(result: SentraResult, agent_id: str, action: str) -> SentraBlocked | None:
    return None if result.allowed else SentraBlocked(result, agent_id, action)


def _sentra_result(event: Any, agent_id: str) -> SentraResult:
    """The result of an ``/agent-action`` event; ``ValueError`` when it is not one."""
    if not isinstance(event, dict):
        raise ValueError("the answer is not a JSON object")
    decision, reason = event.get("decision"), event.get("reason")
    risk = event.get("attempted_risk", 0)
    if not isinstance(decision, str) or not isinstance(reason, str) \
            or not isinstance(risk, int) or isinstance(risk, bool):
        raise ValueError("the event's decision, reason or attempted_risk has the wrong type")
    if event.get("agent_id") != agent_id:
        raise ValueError(f"the event is for agent {printable(repr(event.get('agent_id')))}")
    return SentraResult(decision == ALLOWED, decision, reason, risk, event)


class _SentraInterface:
    """``guard`` on top of the Sentra-shaped ``evaluate``, shared by the remote and the
    embedded client; the arguments are read by :mod:`sentra_runtime.guard`'s rules, the
    request's field names (:data:`SENTRA_FIELDS`) being the names it declares."""

    offload = False

    def evaluate(self, agent_id: str, action: str, context: Mapping[str, Any] | None = None,
                 target: str | None = None, notification_type: str | None = None,
                 **fields: Any) -> SentraResult:
        raise NotImplementedError

    def guard(self, agent_id: str, action: str, context: Mapping[str, Any] | None = None,
              target: str | None = None, notification_type: str | None = None, *,
              from_arguments: bool = True, **fields: Any) -> Callable[[F], F]:
        """Decorate a tool function: each call is evaluated first with the given fields and
        the call's arguments named like request fields (``target``, ``amount``,
        ``notification_type``, ``data_classification``, ``destination_type``, ``context``),
        and unless it is allowed :class:`SentraBlocked` (a ``PermissionError``) is raised
        before the body runs. The last result is in ``wrapper.last_result``."""
        given = {"context": context, "target": target, "notification_type": notification_type,
                 **fields}
        static = {key: value for key, value in given.items() if value is not None}
        asker: Asker[SentraResult] = Asker(
            declared=lambda: SENTRA_FIELDS, decide=self._evaluate_fields,
            refusal=_sentra_refusal, offload=self.offload, attribute="last_result")
        return guard_with(asker, agent_id, action, static, from_arguments)

    def _evaluate_fields(self, agent_id: str, action: str,
                         fields: dict[str, Any]) -> SentraResult:
        rest = dict(fields)
        return self.evaluate(agent_id, action, rest.pop("context", None),
                             rest.pop("target", None), rest.pop("notification_type", None),
                             **rest)


def _bad_context(action: Any, agent_id: Any, context: Any) -> SentraResult | None:
    """The fail-closed result (logged) when ``context`` is neither ``None`` nor a mapping."""
    if context is None or isinstance(context, Mapping):
        return None
    reason = (f"the argument `context` must be a mapping (a JSON object) or None, not "
              f"{type(context).__name__}")
    log_fail_closed(action, agent_id, reason)
    return blocked(reason)


class Sentra(_SentraInterface, ServerClient):
    """A client of a decision server's Sentra-compatible API (``POST /agent-action``), with
    the Sentra reference SDK's interface.

    ``token`` is the operator token, sent only by :meth:`reset`. ``timeout`` (seconds) is the
    whole time one call may take. ``evaluate`` never raises: any failure gives a Blocked result
    whose reason starts with ``Fail closed:``. Only the request's own fields reach the policy
    (``target``, ``amount``, ``notification_type``, ``data_classification``,
    ``destination_type``, and ``context`` as ``policy_context``): for any other field use
    :class:`RemoteEngine`.
    """

    offload = True

    def __init__(self, url: str = "http://127.0.0.1:8000", token: str | None = None,
                 timeout: float = 5.0, *,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
                 max_depth: int = DEFAULT_MAX_DEPTH,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(url, token=token, read_token=None, timeout=timeout,
                         max_response_bytes=max_response_bytes, max_depth=max_depth,
                         ssl_context=ssl_context)

    def evaluate(self, agent_id: str, action: str, context: Mapping[str, Any] | None = None,
                 target: str | None = None, notification_type: str | None = None,
                 **fields: Any) -> SentraResult:
        """Ask the server; a Blocked result with the failure as reason when that fails."""
        try:
            return self._evaluate(agent_id, action, context, target, notification_type, fields)
        except Exception as error:   # the last line: evaluate never raises, it fails closed
            logger.exception("sentra: unexpected failure evaluating %r of agent %r", action,
                             agent_id)
            return blocked(f"the SDK failed ({type(error).__name__}: {printable(str(error))})")

    def _evaluate(self, agent_id: Any, action: Any, context: Any, target: Any,
                  notification_type: Any, fields: dict[str, Any]) -> SentraResult:
        bad = _bad_context(action, agent_id, context)
        if bad is not None:
            return bad
        replaced = sorted(REQUEST_KEYS.intersection(fields))
        if replaced:
            reason = (f"the field `{replaced[0]}` would replace the request's own "
                      f"`{replaced[0]}`")
            log_fail_closed(action, agent_id, reason)
            return blocked(reason)
        body: dict[str, Any] = {"agent_id": agent_id, "action_type": action,
                                "policy_context": dict(context or {})}
        if target is not None:
            body["target"] = target
        if notification_type is not None:
            body["notification_type"] = notification_type
        body.update(fields)
        try:
            sent = jsonable(body, "request")
            answer = self._send("POST", "/agent-action", sent, idempotent=False)
            return _sentra_result(self._json(answer), agent_id)
        except (Unsendable, TransportError, ValueError) as error:
            reason = (f"the action cannot be sent as JSON: {error}"
                      if isinstance(error, Unsendable) else str(error))
        log_fail_closed(action, agent_id, reason)
        return blocked(reason)

    def reset(self, agent_id: str | None = None) -> dict[str, Any]:
        """Reset every agent (``POST /reset``: ``{"message", "risk_threshold"}``) or one
        (``POST /v1/agents/{id}/reset``: ``{"seq", "reset", "agent"}``), with the operator
        token; raises :class:`SentraError` when refused or unreachable."""
        path = "/reset" if agent_id is None else f"/v1/agents/{agent_segment(agent_id)}/reset"
        answer = self._operate(path, "reset refused")
        if not isinstance(answer, dict):
            raise SentraError("reset: the answer is not a JSON object")
        return answer


class EmbeddedSentra(_SentraInterface):
    """The Sentra interface over an in-process :class:`Engine` (no server, no network)."""

    def __init__(self, policy: Engine | Policy | Mapping[str, Any] | str | os.PathLike[str],
                 store: Store | None = None, *, operator: str = "sdk") -> None:
        self.engine = policy if isinstance(policy, Engine) else Engine(policy, store)
        self.operator = operator

    def evaluate(self, agent_id: str, action: str, context: Mapping[str, Any] | None = None,
                 target: str | None = None, notification_type: str | None = None,
                 **fields: Any) -> SentraResult:
        """Decide in process; a Blocked result with the failure as reason, never an exception."""
        bad = _bad_context(action, agent_id, context)
        if bad is not None:
            return bad
        given: dict[str, Any] = {"target": target, "notification_type": notification_type,
                                 **fields}
        sent = {name: given.pop(name) for name in REQUEST_FIELDS if name in given}
        amount = sent.get("amount")
        if isinstance(amount, str):
            with contextlib.suppress(ValueError):
                sent["amount"] = float(amount)
        values = policy_input(self.engine.policy, sent, dict(context or {}), given)
        try:
            decision = self.engine.evaluate(agent_id, action, values)
        except Exception as error:
            logger.exception("sentra: blocking %s of agent %r (fail closed)", action, agent_id)
            return blocked(f"the embedded engine failed: {error}")
        return SentraResult(decision.allowed, decision.label, decision.reason,
                            decision.attempted_risk, decision.to_dict())

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "risk_threshold": self.engine.policy.risk_threshold}

    def reset(self, agent_id: str | None = None) -> dict[str, Any]:
        agents = self.engine.reset(agent_id, operator=self.operator)
        return {"message": "All agents reset." if agent_id is None else "Agent reset.",
                "risk_threshold": self.engine.policy.risk_threshold, "agents": agents}
