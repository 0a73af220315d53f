"""The SDK: ask a sentra-lang decision server (or an embedded engine) before an action runs.

Standard library only. :class:`Sentra` speaks the Sentra-compatible HTTP API and **fails closed**:
when the server cannot be reached, times out, answers with a non-2xx status or with something
that is not an event, ``evaluate`` returns a *Blocked* result whose reason says what went wrong
(and logs it); it never raises. :class:`EmbeddedSentra` has the same interface over an in-process
:class:`~sentra_runtime.Engine`, so an agent switches between the two by one line::

    sentra = Sentra("http://127.0.0.1:8000", token=None)        # remote
    sentra = EmbeddedSentra("policy.json")                       # in-process

    @sentra.guard("agent-7", "EXPORT_DATA", destination_type="external")
    def export(rows): ...
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sentra_runtime.engine import Engine
from sentra_runtime.policy import Policy
from sentra_runtime.stores import Store

logger = logging.getLogger("sentra_runtime.client")
F = TypeVar("F", bound=Callable[..., Any])
ALLOWED = "Allowed"
BLOCKED = "Blocked"
REQUEST_FIELDS = ("amount", "data_classification", "destination_type")


@dataclass(frozen=True)
class SentraResult:
    """The answer for one proposed action; ``allowed`` is the only field a caller must check."""

    allowed: bool
    decision: str
    """``Allowed``, ``Blocked`` or ``Agent Shut Down``."""
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


class SentraError(Exception):
    """An operator call (``reset``) that the server refused or could not answer."""


def blocked(reason: str) -> SentraResult:
    """The fail-closed result."""
    return SentraResult(False, BLOCKED, reason, 0, {})


def _bad_context(action: Any, agent_id: Any, context: Any) -> SentraResult | None:
    """The fail-closed result (logged) when ``context`` is neither ``None`` nor a mapping."""
    if context is None or isinstance(context, Mapping):
        return None
    reason = (f"Fail closed: the argument `context` must be a mapping (a JSON object) or None, "
              f"not {type(context).__name__}")
    logger.warning("sentra: blocking %s of agent %r: %s", action, agent_id, reason)
    return blocked(reason)


def _result(event: Mapping[str, Any]) -> SentraResult:
    decision = event["decision"]
    reason = event["reason"]
    risk = event.get("attempted_risk", 0)
    if not isinstance(decision, str) or not isinstance(reason, str) \
            or not isinstance(risk, int) or isinstance(risk, bool):
        raise TypeError("the event's decision, reason or attempted_risk has the wrong type")
    return SentraResult(decision == ALLOWED, decision, reason, risk, dict(event))


class _Interface:
    """``guard`` on top of ``evaluate``, shared by the remote and the embedded client."""

    def evaluate(self, agent_id: str, action: str, context: Mapping[str, Any] | None = None,
                 target: str | None = None, notification_type: str | None = None,
                 **fields: Any) -> SentraResult:
        raise NotImplementedError

    def guard(self, agent_id: str, action: str, context: Mapping[str, Any] | None = None,
              target: str | None = None, notification_type: str | None = None,
              **fields: Any) -> Callable[[F], F]:
        """Decorate a tool function: each call is evaluated first, and unless it is allowed
        :class:`SentraBlocked` (a ``PermissionError``) is raised before the body runs. The last
        result is in ``wrapper.last_result``."""

        def decorate(function: F) -> F:
            def check() -> None:
                result = self.evaluate(agent_id, action, context, target, notification_type,
                                       **fields)
                wrapper.last_result = result  # type: ignore[attr-defined]
                if not result.allowed:
                    raise SentraBlocked(result, agent_id, action)

            if inspect.iscoroutinefunction(function):
                @functools.wraps(function)
                async def wrapper(*args: Any, **kwargs: Any) -> Any:
                    check()
                    return await function(*args, **kwargs)
            else:
                @functools.wraps(function)
                def wrapper(*args: Any, **kwargs: Any) -> Any:
                    check()
                    return function(*args, **kwargs)

            wrapper.last_result = None  # type: ignore[attr-defined]
            return wrapper  # type: ignore[return-value]

        return decorate


class Sentra(_Interface):
    """A client of a decision server's Sentra-compatible API (``POST /agent-action``).

    ``token`` is the operator token, sent only by :meth:`reset`. ``timeout`` (seconds) bounds
    every call.
    """

    def __init__(self, url: str = "http://127.0.0.1:8000", token: str | None = None,
                 timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.token = token if token is not None else None
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None,
              headers: Mapping[str, str] | None = None) -> Any:
        data = None if body is None else json.dumps(body, allow_nan=False).encode("utf-8")
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json",
                                                  "Accept": "application/json", **(headers or {})})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read().decode("utf-8"))

    def evaluate(self, agent_id: str, action: str, context: Mapping[str, Any] | None = None,
                 target: str | None = None, notification_type: str | None = None,
                 **fields: Any) -> SentraResult:
        """Ask the server; a Blocked result with the failure as reason when that fails."""
        bad = _bad_context(action, agent_id, context)
        if bad is not None:
            return bad
        body: dict[str, Any] = {"agent_id": agent_id, "action_type": action,
                                "policy_context": dict(context or {})}
        if target is not None:
            body["target"] = target
        if notification_type is not None:
            body["notification_type"] = notification_type
        body.update(fields)
        try:
            json.dumps(body, allow_nan=False)
        except (TypeError, ValueError) as error:
            logger.warning("sentra: blocking %s of agent %r (fail closed): %s", action, agent_id,
                           error)
            return blocked(f"Fail closed: the action cannot be sent as JSON: {error}")
        try:
            event = self._call("POST", "/agent-action", body)
            return _result(event)
        except urllib.error.HTTPError as error:
            reason = f"decision server answered {error.code}: {_detail(error)}"
        except (urllib.error.URLError, OSError) as error:
            reason = f"decision server unreachable at {self.url}: {_cause(error)}"
        except (ValueError, KeyError, TypeError) as error:
            reason = f"decision server gave an unreadable answer ({error})"
        logger.warning("sentra: blocking %s of agent %r (fail closed): %s", action, agent_id,
                       reason)
        return blocked(f"Fail closed: {reason}")

    def health(self) -> dict[str, Any]:
        """The server's ``/health`` answer, or ``{"status": "unreachable", "error": ...}``."""
        try:
            answer = self._call("GET", "/health")
            if isinstance(answer, dict):
                return answer
            return {"status": "unreadable", "error": "the answer is not an object"}
        except urllib.error.HTTPError as error:
            return {"status": "error", "error": f"{error.code}: {_detail(error)}"}
        except (urllib.error.URLError, OSError, ValueError) as error:
            return {"status": "unreachable", "error": _cause(error)}

    def reset(self) -> dict[str, Any]:
        """Reset every agent (``POST /reset`` with the operator token); raises
        :class:`SentraError` when refused or unreachable."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            answer = self._call("POST", "/reset", headers=headers)
        except urllib.error.HTTPError as error:
            raise SentraError(f"reset refused ({error.code}): {_detail(error)}") from error
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise SentraError(f"reset failed: {_cause(error)}") from error
        return dict(answer)


class EmbeddedSentra(_Interface):
    """The same interface over an in-process :class:`Engine` (no server, no network)."""

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
        values: dict[str, Any] = {"target": target, "notification_type": notification_type,
                                  "context": dict(context or {}), **fields}
        for name in REQUEST_FIELDS[1:]:
            values.setdefault(name, "internal")
        amount = values.get("amount")
        if isinstance(amount, str):
            with contextlib.suppress(ValueError):
                values["amount"] = float(amount)
        try:
            decision = self.engine.evaluate(agent_id, action, values)
        except Exception as error:
            logger.exception("sentra: blocking %s of agent %r (fail closed)", action, agent_id)
            return blocked(f"Fail closed: the embedded engine failed: {error}")
        raw = decision.to_dict()
        return SentraResult(decision.allowed, decision.label, decision.reason,
                            decision.attempted_risk, raw)

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "risk_threshold": self.engine.policy.risk_threshold}

    def reset(self) -> dict[str, Any]:
        agents = self.engine.reset(None, operator=self.operator)
        return {"message": "All agents reset.", "risk_threshold":
                self.engine.policy.risk_threshold, "agents": agents}


def _detail(error: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(error.read().decode("utf-8"))
        detail = body.get("detail", body) if isinstance(body, dict) else body
        return detail if isinstance(detail, str) else json.dumps(detail)[:500]
    except (ValueError, OSError):
        return error.reason if isinstance(error.reason, str) else "no readable body"


def _cause(error: BaseException) -> str:
    reason = getattr(error, "reason", None)
    return str(reason if reason is not None else error) or type(error).__name__


__all__ = ["EmbeddedSentra", "Sentra", "SentraBlocked", "SentraError", "SentraResult", "blocked"]
