"""The SDK's remote engine: a decision server's ``/v1`` API with the engine's interface.

:class:`RemoteEngine` decides over HTTP what :class:`~sentra_runtime.Engine` decides in process;
both satisfy :class:`PolicyEngine`. Deciding fails closed and on time (a ``FAIL_CLOSED`` Blocked
decision, never an exception); reads and resets raise :class:`SentraError`.
:class:`ServerClient` holds what every HTTP client of the server shares (the transport, the
tokens, reading answers). Import these from :mod:`sentra_runtime.client`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
import sys
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar, runtime_checkable

from sentra_runtime.decision import AgentState, Decision
from sentra_runtime.guard import Asker, PolicyUnavailable, declared_names, denial, guard_with
from sentra_runtime.policy import Policy, PolicyLoadError, load_policy
from sentra_runtime.review import APPROVED, BLOCKED, DENIED
from sentra_runtime.stores import Reset
from sentra_runtime.transport import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_RESPONSE_BYTES,
    Answer,
    Transport,
    TransportError,
    printable,
    read_json,
)
from sentra_runtime.wire import decision_from_wire, fail_closed, state_from_wire

logger = logging.getLogger("sentra_runtime.client")
F = TypeVar("F", bound=Callable[..., Any])
FAIL_CLOSED_PREFIX = "Fail closed: "
MAX_FIELD_DEPTH = 64


@runtime_checkable
class PolicyEngine(Protocol):
    """What an agent asks of a gate, in process (:class:`~sentra_runtime.Engine`) or over HTTP
    (:class:`RemoteEngine`): code written against it runs with either."""

    @property
    def policy(self) -> Policy: ...

    def evaluate(self, agent_id: str, action: str,
                 fields: Mapping[str, Any] | None = None) -> Decision: ...

    def guard(self, agent_id: str, action: str, fields: Mapping[str, Any] | None = None, *,
              from_arguments: bool = True) -> Callable[[F], F]: ...

    def state(self, agent_id: str) -> AgentState: ...


class SentraError(Exception):
    """A read or an operator call (state, agents, policy, reset) that the server refused or
    could not answer; the message says why. Deciding never raises it."""


def fail_closed_reason(reason: str) -> str:
    return reason if reason.startswith(FAIL_CLOSED_PREFIX) else FAIL_CLOSED_PREFIX + reason


def log_fail_closed(action: object, agent_id: object, reason: str) -> None:
    logger.warning("sentra: blocking %s of agent %r (fail closed): %s", action, agent_id, reason)


def is_text(value: str) -> bool:
    """Whether ``value`` is Unicode text UTF-8 can carry (no lone surrogate)."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _writable(value: int) -> bool:
    """Whether Python writes ``value`` as text (``sys.get_int_max_str_digits``, which a
    program may have changed): an integer of at most ``3 * (limit - 1)`` bits has no more digits
    than the limit; only longer ones are tried."""
    limit = sys.get_int_max_str_digits()
    if limit == 0 or value.bit_length() <= 3 * (limit - 1):
        return True
    try:
        str(value)
    except ValueError:
        return False
    return True


class Unsendable(Exception):
    """A value JSON cannot carry as it is (the message names where)."""


def jsonable(value: Any, path: str, depth: int = 0) -> Any:
    """A copy of ``value`` made of JSON types only, so what is sent is what was checked;
    :class:`Unsendable` naming the value's path when JSON cannot carry it unchanged (``NaN``,
    infinities, keys that are not strings, other types)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if not is_text(value):
            raise Unsendable(f"`{path}` is not valid Unicode text (a lone surrogate)")
        return value
    if isinstance(value, int):
        if not _writable(value):
            raise Unsendable(f"`{path}` is an integer of more than "
                             f"{sys.get_int_max_str_digits()} digits, which Python will not "
                             "write as text")
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise Unsendable(f"`{path}` is {value!r}, which JSON cannot carry")
    if depth >= MAX_FIELD_DEPTH:
        raise Unsendable(f"`{path}` is nested deeper than {MAX_FIELD_DEPTH} levels")
    if isinstance(value, Mapping):
        copy: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise Unsendable(f"`{path}` has a key that is not a string ({key!r})")
            if not is_text(key):
                raise Unsendable(f"`{path}` has a key that is not valid Unicode text "
                                 f"({printable(repr(key))}: a lone surrogate)")
            copy[key] = jsonable(item, f"{path}.{key}", depth + 1)
        return copy
    if isinstance(value, (list, tuple)):
        return [jsonable(item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value)]
    raise Unsendable(f"`{path}` has type {type(value).__name__}, which JSON cannot carry")


def token_problem(token: str) -> str | None:
    """Why ``token`` can never be sent in an HTTP header and matched as the server compares
    it (its UTF-8 bytes), or ``None``: the one rule for the server's tokens and the clients'.
    The reason never shows the token (messages end up in logs)."""
    if any(ord(character) < 32 or ord(character) == 127 for character in token):
        return "holds a line break or another control character, which no HTTP header carries"
    if token != token.strip():
        return "has white space at its start or end, which HTTP drops from a header"
    if not is_text(token):
        return "is not valid Unicode text (a lone surrogate)"
    return None


def checked_token(name: str, token: str | None) -> str | None:
    """``token`` when an HTTP header can carry it as the server compares it
    (:func:`token_problem`); else ``TypeError`` or ``ValueError`` at once, naming the problem
    but never showing the token."""
    if token is None:
        return None
    if not isinstance(token, str):
        raise TypeError(f"{name} must be a string or None, not {type(token).__name__}")
    problem = token_problem(token)
    if problem is not None:
        raise ValueError(f"{name} {problem}")
    return token


class ServerClient:
    """What both HTTP clients share: the transport, the tokens, and reading answers."""

    def __init__(self, url: str, *, token: str | None, read_token: str | None, timeout: float,
                 max_response_bytes: int, max_depth: int,
                 ssl_context: ssl.SSLContext | None) -> None:
        import sentra_runtime

        if not (isinstance(timeout, (int, float)) and 0 < timeout <= 3600):
            raise ValueError(f"timeout must be a number of seconds above 0, not {timeout!r}")
        self.transport = Transport(url, max_response_bytes=max_response_bytes,
                                   max_depth=max_depth, ssl_context=ssl_context,
                                   user_agent=f"sentra-runtime/{sentra_runtime.__version__}")
        self.url = self.transport.url
        self.token = checked_token("token", token)
        self.read_token = checked_token("read_token", read_token)
        self.timeout = float(timeout)

    def _authorization(self, *tokens: str | None) -> dict[str, str | bytes]:
        """The first token given, as its UTF-8 bytes (as the server compares it)."""
        for token in tokens:
            if token:
                return {"Authorization": b"Bearer " + token.encode("utf-8")}
        return {}

    def _send(self, method: str, path: str, body: Any = None, *,
              headers: Mapping[str, str | bytes] | None = None, idempotent: bool) -> Answer:
        return self.transport.request(method, path, body=body, headers=headers,
                                      timeout=self.timeout, idempotent=idempotent)

    def _json(self, answer: Answer) -> Any:
        """The answer's JSON value; ``ValueError`` when the status is not 2xx or it is not
        JSON (the message says which)."""
        if not 200 <= answer.status < 300:
            raise ValueError(refused(answer, self.url, self.transport.max_depth))
        try:
            return read_json(answer.body, self.transport.max_depth)
        except ValueError as error:
            raise ValueError(f"the decision server at {self.url} sent an unusable answer: "
                             f"{error}") from None

    def _read(self, path: str, what: str) -> Any:
        """GET ``path`` with the read (or operator) token; :class:`SentraError` on failure."""
        try:
            answer = self._send("GET", path, idempotent=True,
                                headers=self._authorization(self.read_token, self.token))
            return self._json(answer)
        except (TransportError, ValueError) as error:
            raise SentraError(f"{what}: {error}") from None

    def _operate(self, path: str, what: str) -> Any:
        """POST ``path`` with the operator token (never repeated); :class:`SentraError`."""
        try:
            answer = self._send("POST", path, idempotent=False,
                                headers=self._authorization(self.token))
            return self._json(answer)
        except (TransportError, ValueError) as error:
            raise SentraError(f"{what}: {error}") from None

    def health(self) -> dict[str, Any]:
        """The server's ``/health`` answer, or ``{"status": "unreachable" | "error" |
        "unreadable", "error": ...}``; never raises."""
        try:
            answer = self._send("GET", "/health", idempotent=True)
        except TransportError as error:
            return {"status": "unreachable", "error": str(error)}
        if not 200 <= answer.status < 300:
            return {"status": "error", "error": refused(answer, self.url,
                                                        self.transport.max_depth)}
        try:
            value = read_json(answer.body, self.transport.max_depth)
        except ValueError as error:
            return {"status": "unreadable", "error": str(error)}
        if not isinstance(value, dict):
            return {"status": "unreadable", "error": "the answer is not a JSON object"}
        return value

    def close(self) -> None:
        """Close the kept-alive connections."""
        self.transport.close()


def refused(answer: Answer, url: str, max_depth: int = DEFAULT_MAX_DEPTH) -> str:
    """Why a non-2xx answer is not a decision, with the server's own detail (escaped, cut)."""
    where = f"the decision server at {url}"
    if 300 <= answer.status < 400:
        location = printable(answer.headers.get("location", "nowhere"), 200)
        return f"{where} answered {answer.status}, a redirect to {location} (not followed)"
    detail = _detail(answer.body, max_depth)
    if answer.status == 401:
        return f"{where} answered 401: the token is missing or wrong ({detail})"
    if answer.status == 403:
        return f"{where} answered 403: the token does not allow this ({detail})"
    return f"{where} answered {answer.status}: {detail}"


def _detail(body: bytes, max_depth: int) -> str:
    """The ``detail`` of an error answer in one line: FastAPI's text or its list of errors."""
    try:
        value = read_json(body, max_depth)
    except ValueError:
        return printable(body.decode("utf-8", "replace") or "no body", 200)
    detail = value.get("detail", value) if isinstance(value, dict) else value
    if isinstance(detail, list):
        parts = [f"{'.'.join(str(part) for part in item.get('loc', []))}: {item.get('msg', '')}"
                 if isinstance(item, dict) else str(item) for item in detail[:5]]
        return printable("; ".join(parts), 300)
    if isinstance(detail, dict) and isinstance(detail.get("message"), str):
        return printable(detail["message"], 300)
    return printable(detail if isinstance(detail, str) else str(detail), 300)


class RemoteEngine(ServerClient):
    """A decision server's ``/v1`` API with :class:`~sentra_runtime.Engine`'s interface.

    ``token`` is the operator token (resets; give it to operators' tools, never to an agent);
    ``read_token`` opens the reads (``state``, ``agents``, ``policy``) when the server has one.
    ``timeout`` (seconds) is the whole time one call may take, connecting and retrying
    included. ``ssl_context`` checks an ``https://`` server (default: the system's certificate
    authorities and the host name). Deciding (``evaluate``/``decide``, ``guard``) never raises:
    any failure is a fail-closed Blocked decision (rule id ``FAIL_CLOSED``). Reads and resets
    raise :class:`SentraError`. Safe to share between threads; connections are kept alive.
    """

    page_size = 1000
    """How many items one request of a listing (:meth:`tickets`) asks for."""

    def __init__(self, url: str = "http://127.0.0.1:8000", *, token: str | None = None,
                 read_token: str | None = None, timeout: float = 5.0,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
                 max_depth: int = DEFAULT_MAX_DEPTH,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(url, token=token, read_token=read_token, timeout=timeout,
                         max_response_bytes=max_response_bytes, max_depth=max_depth,
                         ssl_context=ssl_context)
        self._policy_lock = threading.Lock()
        self._policy: tuple[Policy, frozenset[str]] | None = None
        self._asker: Asker[Decision] = Asker(
            declared=self._declared, decide=self.decide, refusal=denial,
            unavailable=self._fail, offload=True, lazy=True, verdict=self.verdict)

    def __enter__(self) -> RemoteEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- deciding (never raises) -----------------------------------------------------------------

    def decide(self, agent_id: str, action: str,
               fields: Mapping[str, Any] | None = None) -> Decision:
        """Decide one proposed action (``POST /v1/decide``): the server's full decision, with
        its explanation and ``seq``; a fail-closed Blocked decision when there is none."""
        try:
            return self._decide(agent_id, action, fields)
        except Exception as error:   # the last line: deciding never raises, it fails closed
            logger.exception("sentra: unexpected failure deciding %r of agent %r", action,
                             agent_id)
            return self._fail(agent_id, action, f"the SDK failed ({type(error).__name__}: "
                                                f"{printable(str(error))})")

    evaluate = decide
    """:class:`~sentra_runtime.Engine`'s name for :meth:`decide` (the :class:`PolicyEngine`
    interface)."""

    def guard(self, agent_id: str, action: str, fields: Mapping[str, Any] | None = None, *,
              from_arguments: bool = True, wait: float | None = None) -> Callable[[F], F]:
        """:meth:`Engine.guard <sentra_runtime.Engine.guard>`, over the server: the same rules
        for reading the call's arguments (the policy's declared names are read from
        ``GET /v1/policy`` once), :class:`~sentra_runtime.ActionDenied` before the body runs
        unless allowed; a call held for review waits up to ``wait`` seconds for the verdict
        (polling ``GET /v1/reviews/{ticket}``), else :class:`~sentra_runtime.ReviewPending`.
        A coroutine function's check runs in a worker thread."""
        return guard_with(self._asker, agent_id, action, fields, from_arguments, wait)

    def ticket(self, ticket: str) -> dict[str, Any]:
        """A review ticket as the server shows it (``GET /v1/reviews/{ticket}``: no token,
        the ticket id is the secret): ``status`` and, once judged, ``decision``;
        :class:`SentraError` when it cannot be read (an unknown ticket included)."""
        if not isinstance(ticket, str):
            raise SentraError(f"ticket must be a string, not {type(ticket).__name__}")
        answer = self._read(f"/v1/reviews/{urllib.parse.quote(ticket, safe='')}",
                            f"cannot read review ticket {ticket!r}")
        if not isinstance(answer, dict) or not isinstance(answer.get("status"), str):
            raise SentraError(f"cannot read review ticket {ticket!r}: the answer has the "
                              "wrong shape")
        return answer

    def tickets(self, status: str | None = None, agent_id: str | None = None) -> list[dict[str, Any]]:
        """The review tickets with this status of this agent (``None``: any), oldest first, as
        the server shows them (every page of ``GET /v1/reviews``, with the read token);
        :class:`SentraError` when they cannot be read."""
        for name, value in (("status", status), ("agent_id", agent_id)):
            if value is not None and not isinstance(value, str):
                raise SentraError(f"{name} must be a string or None, not {type(value).__name__}")
        query = {**({"status": status} if status is not None else {}),
                 **({"agent": agent_id} if agent_id is not None else {})}
        return self._listing("/v1/reviews", query, "tickets", "the review tickets")

    def _listing(self, path: str, query: dict[str, str], key: str,
                 what: str) -> list[dict[str, Any]]:
        """The objects under ``key`` on every page of ``path`` (a read), following
        ``next_after``; :class:`SentraError` when a page has the wrong shape, or when its
        ``next_after`` would not move on (an empty page, or a cursor already followed: the
        listing would never end)."""
        found: list[dict[str, Any]] = []
        followed: set[str] = set()
        query = {"limit": str(self.page_size), **query}
        while True:
            page = self._read(f"{path}?{urllib.parse.urlencode(query)}", f"cannot list {what}")
            if not isinstance(page, dict) or not isinstance(page.get(key), list):
                raise SentraError(f"cannot list {what}: the answer has the wrong shape")
            found += [item for item in page[key] if isinstance(item, dict)]
            after = page.get("next_after")
            if not isinstance(after, str):
                return found
            if not page[key] or after in followed:
                raise SentraError(f"cannot list {what}: the server's pages do not move on "
                                  f"(`next_after` {printable(repr(after))} after "
                                  f"{len(page[key])} items)")
            followed.add(after)
            query["after"] = after

    def review(self, ticket: str, approve: bool, *, operator: str,
               note: str | None = None) -> Decision:
        """:meth:`Engine.review <sentra_runtime.Engine.review>` over the server: approve (or
        deny) a pending ticket with the operator token, recorded with ``operator`` and
        ``note``; the verdict's decision (its ``seq`` the verdict's record). Never sent twice.
        :class:`SentraError` when the server refuses it: an unknown ticket (404), a ticket no
        longer pending (409: a verdict is given once), a missing or wrong token (401/403)."""
        if not isinstance(ticket, str):
            raise SentraError(f"ticket must be a string, not {type(ticket).__name__}")
        if not isinstance(approve, bool):
            raise SentraError(f"approve must be True or False, not {approve!r}")
        if not isinstance(operator, str) or not operator:
            raise SentraError("a verdict needs the operator's name (operator=...)")
        if note is not None and not isinstance(note, str):
            raise SentraError(f"note must be a string or None, not {type(note).__name__}")
        verb = "approve" if approve else "deny"
        path = f"/v1/reviews/{urllib.parse.quote(ticket, safe='')}/{verb}"
        body = {"operator": operator, **({"note": note} if note is not None else {})}
        try:
            answer = self._json(self._send("POST", path, body, idempotent=False,
                                           headers=self._authorization(self.token)))
            return decision_from_wire({"seq": answer.get("seq") if isinstance(answer, dict)
                                       else None,
                                       "decision": answer.get("decision")
                                       if isinstance(answer, dict) else None})
        except (TransportError, ValueError) as error:
            raise SentraError(f"{verb} of review ticket {ticket!r} refused: {error}") from None

    def verdict(self, ticket: str) -> tuple[str, Decision | None]:
        """Where a review ticket stands and the decision its verdict made (``None`` while it
        is pending, and when it expired or was cancelled), as :meth:`Engine.verdict
        <sentra_runtime.Engine.verdict>`; what a guard that waits for a verdict polls. A
        ticket that cannot be read now is still pending (the guard waits on, and at its
        deadline raises ReviewPending)."""
        try:
            answer = self.ticket(ticket)
            decision = answer.get("decision")
            verdict = None if decision is None else decision_from_wire(
                {"seq": None, "decision": decision}, explained=False)
            unclear = _unclear_verdict(ticket, answer, verdict)
            if unclear is not None:
                raise ValueError(unclear)
            return answer["status"], verdict
        except (SentraError, ValueError) as error:
            logger.warning("sentra: cannot read review ticket %s: %s", ticket, error)
            return "pending", None

    def _decide(self, agent_id: Any, action: Any, fields: Any) -> Decision:
        for name, value in (("agent_id", agent_id), ("action", action)):
            if not isinstance(value, str):
                return self._fail(agent_id, action, f"`{name}` must be a string, not "
                                                    f"{type(value).__name__}")
            if not is_text(value):
                return self._fail(agent_id, action, f"`{name}` is not valid Unicode text (a "
                                                    "lone surrogate)")
        if fields is not None and not isinstance(fields, Mapping):
            return self._fail(agent_id, action, f"`fields` must be a mapping, not "
                                                f"{type(fields).__name__}")
        try:
            sent = jsonable(fields or {}, "fields")
        except Unsendable as error:
            return self._fail(agent_id, action, f"the action cannot be sent as JSON: {error}")
        try:
            answer = self._send("POST", "/v1/decide", {"agent_id": agent_id, "action": action,
                                                       "fields": sent}, idempotent=False)
            decision = decision_from_wire(self._json(answer))
        except (TransportError, ValueError) as error:
            return self._fail(agent_id, action, str(error))
        if decision.agent_id != agent_id:
            return self._fail(agent_id, action, f"the decision server answered for agent "
                                                f"{printable(repr(decision.agent_id))}")
        self._note_policy(decision.policy_hash)
        return decision

    def _fail(self, agent_id: Any, action: Any, reason: str) -> Decision:
        """The fail-closed decision for ``reason``, logged."""
        text = fail_closed_reason(reason)
        log_fail_closed(action, agent_id, reason)
        return fail_closed(agent_id if isinstance(agent_id, str) else repr(agent_id),
                           action if isinstance(action, str) else repr(action), text)

    # -- the policy (read once, again after the server's changes) ---------------------------------

    @property
    def policy(self) -> Policy:
        """The policy the server serves (``GET /v1/policy``, its table checked and its hash
        verified), read once and again when a decision names another policy hash;
        :class:`SentraError` when it cannot be read."""
        return self._policy_and_names()[0]

    def policy_info(self) -> dict[str, Any]:
        """The ``GET /v1/policy`` answer: name, version, hash, settings, source file, load time
        and the table; :class:`SentraError` when it cannot be read."""
        info = self._read("/v1/policy", "cannot read the policy")
        if not isinstance(info, dict):
            raise SentraError("cannot read the policy: the answer is not a JSON object")
        return info

    def _policy_and_names(self) -> tuple[Policy, frozenset[str]]:
        with self._policy_lock:
            cached = self._policy
        if cached is not None:
            return cached
        info = self.policy_info()
        try:
            policy = load_policy(info.get("table"))   # type: ignore[arg-type]
        except (PolicyLoadError, TypeError) as error:
            raise SentraError(f"cannot read the policy: the table does not load ({error})") \
                from None
        if info.get("hash") != policy.hash:
            raise SentraError("cannot read the policy: its hash does not match its table")
        loaded = (policy, declared_names(policy))
        with self._policy_lock:
            self._policy = loaded
        return loaded

    def _declared(self) -> frozenset[str]:
        try:
            return self._policy_and_names()[1]
        except SentraError as error:
            raise PolicyUnavailable(f"the guard cannot tell which arguments the policy reads: "
                                    f"{error}") from None

    def _note_policy(self, policy_hash: str) -> None:
        """Forget the policy read before when the server now decides with another one."""
        with self._policy_lock:
            if self._policy is not None and self._policy[0].hash != policy_hash:
                self._policy = None

    # -- reads and operator actions (raise SentraError) ------------------------------------------

    def state(self, agent_id: str) -> AgentState:
        """The agent's ``(cumulative_risk, blocked_attempts, status)`` (``GET
        /v1/agents/{id}``; fresh for an unknown id)."""
        answer = self._read(f"/v1/agents/{agent_segment(agent_id)}", f"cannot read agent "
                                                                f"{agent_id!r}")
        try:
            state = state_from_wire(answer)
        except ValueError as error:
            raise SentraError(f"cannot read agent {agent_id!r}: {error}") from None
        if answer.get("agent_id") != agent_id:   # as a decision must be the agent's own
            raise SentraError(f"cannot read agent {agent_id!r}: the server answered for agent "
                              f"{printable(repr(answer.get('agent_id')))}")
        return state

    def agents(self) -> list[str]:
        """The ids of the agents the server's store knows, in id order (every page of
        ``GET /v1/agents``)."""
        return [item["agent_id"] for item in self._listing("/v1/agents", {}, "agents",
                                                            "the agents")
                if isinstance(item.get("agent_id"), str)]

    def reset(self, agent_id: str | None = None) -> Reset:
        """Return one agent (or every agent, for ``None``) to ``(0, 0, active)``, with the
        operator token; the ids reset, carrying the reset record's ``seq``. The server records
        the operator by the token; a reset is never sent twice."""
        path = "/v1/reset" if agent_id is None else f"/v1/agents/{agent_segment(agent_id)}/reset"
        answer = self._operate(path, "reset refused" if agent_id is None
                               else f"reset of agent {agent_id!r} refused")
        if not isinstance(answer, dict) or not isinstance(answer.get("reset"), list):
            raise SentraError("reset: the answer has the wrong shape")
        seq = answer.get("seq")
        return Reset([item for item in answer["reset"] if isinstance(item, str)],
                     seq if isinstance(seq, int) else None)


    def assign_group(self, agent_id: str, group: str | None, *, operator: str) -> int | None:
        """Put an agent in a group the policy declares (``None``: clear the assignment), with
        the operator token, recorded with ``operator``; the seq of the audit record. Never sent
        twice. :class:`SentraError` when the server refuses it (a group the policy does not
        declare is a 422 saying so)."""
        if not isinstance(operator, str) or not operator:
            raise SentraError("assigning a group needs the operator's name (operator=...)")
        if group is not None and not isinstance(group, str):
            raise SentraError(f"group must be a string or None, not {type(group).__name__}")
        path = f"/v1/agents/{agent_segment(agent_id)}/group"
        try:
            answer = self._json(self._send("PUT", path, {"group": group, "operator": operator},
                                           idempotent=False,
                                           headers=self._authorization(self.token)))
        except (TransportError, ValueError) as error:
            raise SentraError(f"group assignment of agent {agent_id!r} refused: {error}") from None
        seq = answer.get("seq") if isinstance(answer, dict) else None
        return seq if isinstance(seq, int) else None


_VERDICT_ALLOWS = {APPROVED: True, BLOCKED: False, DENIED: False}
"""The statuses of a ticket that carries its verdict's decision, and whether that decision
allows the held call."""


def _unclear_verdict(ticket: str, answer: dict[str, Any], verdict: Decision | None) -> str | None:
    """Why a ticket as the server showed it is no verdict one can act on (``None``: it is
    one): its status and its decision disagree, or the decision is another ticket's or
    another agent's. A guard must not run a call on such an answer."""
    status = answer["status"]
    if verdict is None:
        return f"it is {status} but carries no decision" if status in _VERDICT_ALLOWS else None
    if status not in _VERDICT_ALLOWS:
        return f"it is {printable(repr(status))} but carries a verdict's decision"
    if verdict.allowed != _VERDICT_ALLOWS[status]:
        return f"it is {status} but its decision is {printable(repr(verdict.label))}"
    if verdict.ticket != ticket or verdict.agent_id != answer.get("agent_id"):
        return (f"its decision is ticket {printable(repr(verdict.ticket))}'s of agent "
                f"{printable(repr(verdict.agent_id))}, not this ticket's")
    return None


def agent_segment(agent_id: str) -> str:
    """An agent id as one URL path segment; :class:`SentraError` for a non-string or text
    that is not Unicode (a lone surrogate)."""
    if not isinstance(agent_id, str):
        raise SentraError(f"agent_id must be a string, not {type(agent_id).__name__}")
    if not is_text(agent_id):
        raise SentraError(f"agent id {agent_id!r} is not valid Unicode text")
    return urllib.parse.quote(agent_id, safe="")


class AsyncEngine:
    """An asyncio face for any :class:`PolicyEngine` (an :class:`~sentra_runtime.Engine` or a
    :class:`RemoteEngine`): each call runs the blocking one in a worker thread, so the event
    loop is never held. A cancelled call still completes in its thread (the decision is made
    and recorded); only its answer is dropped."""

    def __init__(self, decider: PolicyEngine) -> None:
        self.decider = decider

    async def evaluate(self, agent_id: str, action: str,
                       fields: Mapping[str, Any] | None = None) -> Decision:
        """``decider.evaluate`` in a worker thread."""
        return await asyncio.to_thread(self.decider.evaluate, agent_id, action, fields)

    decide = evaluate

    async def state(self, agent_id: str) -> AgentState:
        return await asyncio.to_thread(self.decider.state, agent_id)

    def guard(self, agent_id: str, action: str, fields: Mapping[str, Any] | None = None, *,
              from_arguments: bool = True) -> Callable[[F], F]:
        """The decider's own ``guard``: it checks a coroutine function's call when the call is
        made, before the coroutine runs (a remote engine in a worker thread)."""
        return self.decider.guard(agent_id, action, fields, from_arguments=from_arguments)
