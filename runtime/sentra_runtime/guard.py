"""The guard: evaluate each call of a tool function before its body runs.

One implementation serves :meth:`Engine.guard`, the remote engine's ``guard``
(:class:`sentra_runtime.client.RemoteEngine`) and the Sentra-compatible clients' ``guard``: each
of them describes how it asks (:class:`Asker`), and :func:`guard_with` does the rest.

A guarded call's fields are the guard's own mapping plus the call's arguments, by parameter
name. The rule throughout: the policy sees what the body gets, and where the guard cannot know
what the body gets, it refuses (a ``TypeError``, before anything is evaluated) instead of
guessing.

* The function's signature is read once, when decorating.
* Only arguments the policy declares are read: a parameter named like a declared field or its
  top-level object (``context`` for ``context.eligibility_verified``), and ``**kwargs`` entries
  named so or spelled as a flat dotted key (``"context.eligibility_verified"``). Other
  arguments (keys, payloads, ``self``) never reach the decision or the audit log.
* Positional arguments count, and so do the arguments ``functools.partial`` objects bind (read
  at each call). A parameter's default counts when the call leaves the parameter out.
* A call that puts values into a ``*args`` parameter is refused: the guard cannot tell what the
  body does with them. So is a call that does not fit the signature, or that gives one name
  twice (a positional-only parameter and a ``**kwargs`` entry).
* The guard's own fields beat nothing the body gets: a field (or the object of a dotted one)
  that names a parameter is refused when decorating; through ``**kwargs`` an argument the call
  passes beats the guard's field of that name.
* Refused when decorating: callables without a signature; a wrapper (``functools.wraps``) whose
  parameters differ from the function it wraps (put the guard directly on the function, below
  other decorators); a ``*args``/``**kwargs`` parameter named like a declared field;
  ``classmethod``/``staticmethod`` objects (put the guard below them); generator functions (their
  body runs after the call returns, when the arguments may have changed).
* Coroutine functions, and objects whose ``__call__`` is one, are checked when called, before
  the coroutine is made; when asking blocks on the network (``Asker.offload``), the check runs
  in a worker thread so the event loop is not held.
* When the declared names cannot be known yet (a remote policy the client could not read), the
  checks that need them run at the first call that knows them, and a call before that is
  refused as the asker's fail-closed result.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sentra_runtime.decision import Decision

if TYPE_CHECKING:
    from sentra_runtime.engine import Engine
    from sentra_runtime.policy import Policy

F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R")
_NAMED = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
          inspect.Parameter.KEYWORD_ONLY)
_VAR_POSITIONAL = inspect.Parameter.VAR_POSITIONAL
_VAR_KEYWORD = inspect.Parameter.VAR_KEYWORD


class ActionDenied(PermissionError):
    """Raised by :meth:`Engine.guard` (and a remote engine's guard) before the guarded body
    runs; carries the decision."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(f"{decision.label}: {decision.action} by agent "
                         f"{decision.agent_id!r} ({decision.rule_id}): {decision.reason}")
        self.decision = decision


class ReviewPending(ActionDenied):
    """Raised by a guard (:meth:`Engine.guard`, a remote engine's ``guard``) when the policy
    holds the call for review and no verdict came within the guard's ``wait`` (none without
    one): the body has not run. ``ticket`` is the review ticket (an operator approves or
    denies it; ``engine.ticket(ticket)`` or ``GET /v1/reviews/{ticket}`` says where it
    stands); ``decision`` is the ``Review Required`` decision. The call may be made again
    later: that is a new decision, which may be held again."""

    def __init__(self, decision: Decision, status: str = "pending") -> None:
        super().__init__(decision)
        self.ticket: str = decision.ticket or ""
        self.status = status
        """``pending``; or ``expired`` / ``cancelled`` when the ticket ended without a
        verdict while the guard waited."""
        if status != "pending":
            self.args = (f"{decision.label}: {decision.action} by agent "
                         f"{decision.agent_id!r}: ticket {self.ticket} was {status} before "
                         "an operator's verdict",)
        else:
            self.args = (f"{decision.label}: {decision.action} by agent "
                         f"{decision.agent_id!r} ({decision.rule_id}) waits for review: "
                         f"ticket {self.ticket}",)


class PolicyUnavailable(Exception):
    """The declared field names cannot be known now (the message says why)."""


@dataclass(frozen=True)
class Asker(Generic[R]):
    """How a guard asks for a decision: what the one guard implementation needs of an engine
    or a client, whose result type is ``R``."""

    declared: Callable[[], frozenset[str]]
    """The policy's declared names: every field's full name and its top-level name (the
    object). Raises :class:`PolicyUnavailable` when they cannot be known now."""
    decide: Callable[[str, str, dict[str, Any]], R]
    """Decide ``(agent_id, action, fields)``."""
    refusal: Callable[[R, str, str], BaseException | None]
    """The exception to raise before the body runs for ``(result, agent_id, action)``, or
    ``None`` when the result lets the body run."""
    unavailable: Callable[[str, str, str], R] | None = None
    """The fail-closed result for ``(agent_id, action, reason)`` when ``declared`` raised."""
    offload: bool = False
    """Asking blocks on I/O: a coroutine function's check runs in a worker thread."""
    lazy: bool = False
    """The declared names are asked for at the first call, not when decorating (a remote
    engine: decorating, often at import, must not wait for the network)."""
    attribute: str = "last_decision"
    """The wrapper's attribute that holds the result of the last call."""
    verdict: Callable[[str], tuple[str, Decision | None]] | None = None
    """Where a review ticket stands: ``(status, the verdict's decision or None)``; ``None``:
    results are never held for review (the Sentra-compatible clients)."""


POLL_SECONDS = 0.5
"""How often a guard with ``wait`` asks whether a held call's ticket has its verdict."""

def declared_names(policy: Policy) -> frozenset[str]:
    """A declared field's full name (a flat dotted key) and its top-level name (the object)."""
    return frozenset(name for spec in policy.inputs
                     for name in (spec.name, spec.name.partition(".")[0]))


def denial(decision: Decision, agent_id: str, action: str) -> ActionDenied | None:
    """The exception for a decision that is not allowed (``None`` when it is)."""
    if decision.allowed:
        return None
    return ReviewPending(decision) if decision.ticket is not None and \
        decision.outcome == "review" else ActionDenied(decision)


def guard(engine: Engine, agent_id: str, action: str, fields: Mapping[str, Any] | None,
          from_arguments: bool, wait: float | None = None) -> Callable[[F], F]:
    """See :meth:`Engine.guard` and this module's rules."""
    names = declared_names(engine.policy)
    asker: Asker[Decision] = Asker(declared=lambda: names, decide=engine.evaluate, refusal=denial,
                                   verdict=engine.verdict)
    return guard_with(asker, agent_id, action, fields, from_arguments, wait)


def awaited(asker: Asker[Any], decision: Decision, wait: float | None) -> Decision:
    """The decision a guarded call goes on with: ``decision``, or, for one held for review,
    the operator's verdict once it came within ``wait`` seconds (polling every
    :data:`POLL_SECONDS`). :class:`ReviewPending` when none came (or the ticket expired or was
    cancelled first), :class:`ActionDenied` when the verdict does not allow the call. A verdict
    whose decision names another agent or another action than the held call's is none: the
    call waits on."""
    if decision.ticket is None or decision.outcome != "review" or asker.verdict is None:
        return decision
    if not wait or wait <= 0:
        raise ReviewPending(decision)
    deadline = time.monotonic() + wait
    while True:
        status, verdict = asker.verdict(decision.ticket)
        if verdict is not None and (verdict.agent_id, verdict.action) == (decision.agent_id,
                                                                          decision.action):
            return verdict
        if verdict is not None:   # a verdict on another agent's or another action's call:
            status = "pending"    # no verdict on this one (as a ticket that cannot be read)
        if status != "pending":
            raise ReviewPending(decision, status)
        left = deadline - time.monotonic()
        if left <= 0:
            raise ReviewPending(decision)
        time.sleep(min(POLL_SECONDS, left))


def guard_with(asker: Asker[R], agent_id: str, action: str, fields: Mapping[str, Any] | None,
               from_arguments: bool, wait: float | None = None) -> Callable[[F], F]:
    """The decorator that asks ``asker`` before each call (this module's rules); ``wait``: how
    long (seconds) a call held for review waits for the operator's verdict."""
    if wait is not None and (isinstance(wait, bool) or not isinstance(wait, (int, float))
                             or not wait >= 0):
        raise ValueError("wait must be a number of seconds, at least 0")
    static = dict(fields or {})

    def decorate(function: F) -> F:
        if isinstance(function, (classmethod, staticmethod)):
            raise TypeError("put @engine.guard below @classmethod or @staticmethod, not above")
        if inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(function):
            raise TypeError("@engine.guard cannot guard a generator: its body runs after the "
                            "call returns; guard the function that does the action")
        arguments = _Arguments(function) if from_arguments else None
        if arguments is not None and not asker.lazy:
            arguments.accept(asker.declared(), static)

        def check(args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
            try:
                merged = static if arguments is None else arguments.fields(
                    asker.declared(), static, args, kwargs)
            except PolicyUnavailable as unknown:
                if asker.unavailable is None:
                    raise
                result = asker.unavailable(agent_id, action, str(unknown))
            else:
                result = asker.decide(agent_id, action, merged)
            if wait and isinstance(result, Decision) and result.ticket is not None:
                setattr(wrapper, asker.attribute, result)
                result = awaited(asker, result, wait)  # type: ignore[assignment]
            setattr(wrapper, asker.attribute, result)
            refusal = asker.refusal(result, agent_id, action)
            if refusal is not None:
                raise refusal
            return result

        if _is_coroutine(function) and (asker.offload or wait):   # asking may wait: a thread
            @functools.wraps(function)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                await asyncio.to_thread(check, args, kwargs)
                return await function(*args, **kwargs)
        elif _is_coroutine(function):
            @functools.wraps(function)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                check(args, kwargs)
                return await function(*args, **kwargs)
        else:
            @functools.wraps(function)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                check(args, kwargs)
                return function(*args, **kwargs)

        if arguments is not None:
            # the wrapper passes its arguments on unchanged: say so, so that another guard
            # (or anything else) reading it sees the function's parameters
            wrapper.__signature__ = arguments.signature  # type: ignore[attr-defined]
        setattr(wrapper, asker.attribute, None)
        return wrapper  # type: ignore[return-value]

    return decorate


def _is_coroutine(function: Callable[..., Any]) -> bool:
    call = inspect.getattr_static(type(function), "__call__", None)   # an async __call__
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(call)


class _Arguments:
    """Reads a guarded function's call arguments as fields (see the module's rules)."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.partials: list[functools.partial[Any]] = []
        target: Callable[..., Any] = function
        while isinstance(target, functools.partial):
            self.partials.append(target)
            target = target.func
        self.partials.reverse()   # innermost first: its arguments come first
        self.name = getattr(function, "__qualname__", repr(function))
        self.signature = _signature(target, self.name)
        self.positional_only = frozenset(
            key for key, parameter in self.signature.parameters.items()
            if parameter.kind is inspect.Parameter.POSITIONAL_ONLY)
        self._accepted: frozenset[str] | None = None

    def accept(self, declared: frozenset[str], static: Mapping[str, Any]) -> None:
        """Refuse (``TypeError``) a guard whose fields or parameters hide what the body gets
        from the policy that declares ``declared``; checked once per set of names."""
        if declared is self._accepted:
            return
        parameters = self.signature.parameters
        clash = sorted(key for key in static if key in declared
                       and key.partition(".")[0] in parameters
                       and parameters[key.partition(".")[0]].kind in _NAMED)
        if clash:
            raise TypeError(f"the guard's fields name parameters of {self.name} "
                            f"({', '.join(clash)}): the body would get another value than the "
                            "policy sees; pass them as arguments instead")
        spread = sorted(key for key, parameter in parameters.items()
                        if parameter.kind in (_VAR_POSITIONAL, _VAR_KEYWORD) and key in declared)
        if spread:
            raise TypeError(f"{self.name} collects arguments under a declared field's name "
                            f"({', '.join(spread)}): the policy would not see them as that field")
        self._accepted = declared

    def fields(self, declared: frozenset[str], static: dict[str, Any], args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> dict[str, Any]:
        """The function's defaults, the guard's fields, then what the call passes; of the
        arguments, only names the policy declares."""
        self.accept(declared, static)
        for partial in reversed(self.partials):   # each level's keywords under the outer ones
            kwargs = {**partial.keywords, **kwargs}
        args = tuple(item for partial in self.partials for item in partial.args) + args
        bound = self.signature.bind(*args, **kwargs)   # a call that does not fit raises here
        passed: dict[str, Any] = {}
        for key, value in bound.arguments.items():
            kind = self.signature.parameters[key].kind
            if kind is _VAR_POSITIONAL:
                if value:
                    raise TypeError(f"positional arguments collected by *{key} cannot be read "
                                    "as fields: pass them by keyword")
            elif kind is _VAR_KEYWORD:
                twice = sorted(self.positional_only.intersection(value))
                if twice:
                    raise TypeError(f"{', '.join(twice)} given both as a positional-only "
                                    "argument and as a keyword: which one the policy should "
                                    "check is ambiguous")
                passed.update((name, item) for name, item in value.items() if name in declared)
            elif key in declared:
                passed[key] = value
        defaults = {key: parameter.default
                    for key, parameter in self.signature.parameters.items()
                    if key not in bound.arguments and key in declared
                    and parameter.default is not inspect.Parameter.empty}
        return {**defaults, **static, **passed}


def _signature(target: Callable[..., Any], name: str) -> inspect.Signature:
    """The signature a call of ``target`` binds against. ``inspect.signature`` follows
    ``__wrapped__`` to the decorated function, whose parameters a decorator may have changed
    (injected a session, say): the call's arguments would then be read under the wrong names,
    so such a callable is refused. A wrapper with no signature of its own (a C object such as
    ``functools.lru_cache``) is read through ``__wrapped__``."""
    try:
        followed = inspect.signature(target)
    except (TypeError, ValueError):
        raise TypeError(f"guard cannot read the arguments of {name}: it has no signature; "
                        "pass from_arguments=False and give the fields") from None
    if inspect.unwrap(target) is target:
        return followed
    try:
        own = inspect.signature(target, follow_wrapped=False)
    except (TypeError, ValueError):
        return followed
    if _shape(own) != _shape(followed):
        raise TypeError(f"guard cannot tell which arguments {name} passes on: it is decorated "
                        f"(it takes {own}, the function it wraps takes {followed}); put "
                        "@engine.guard directly on the function, below other decorators")
    return followed


def _shape(signature: inspect.Signature) -> list[tuple[str, Any]]:
    """Parameter names and kinds (defaults are not compared: ``nan != nan``, and some
    objects' ``==`` does not even give a bool)."""
    return [(parameter.name, parameter.kind) for parameter in signature.parameters.values()]
