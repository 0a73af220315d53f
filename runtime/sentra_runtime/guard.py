"""``Engine.guard``: evaluate each call of a tool function before its body runs.

A guarded call's fields are the guard's own mapping plus the call's arguments, by parameter
name. Only arguments whose names the policy declares are read (``context`` for
``context.approval_requires_verified_eligibility``), so other arguments (keys, payloads,
``self``) never reach the decision or the audit log. What the body receives is what the policy
sees:

* an argument the call passes beats the guard's own field of that name (only possible through
  a ``**kwargs`` parameter: see the next point);
* the guard's fields may not name a parameter of the function: the body would get another
  value (the caller's, or the default) than the policy saw; refused when decorating;
* a parameter's default counts when the call leaves the parameter out;
* the arguments a ``functools.partial`` binds count;
* a call giving one name twice (a positional-only parameter and a ``**kwargs`` entry) is
  refused before anything is evaluated, as is a call that does not fit the signature.

Refused when decorating: callables without a signature (their positional arguments could not be
read), callables decorated by a wrapper that takes other parameters than the function it wraps
(put ``@engine.guard`` directly on the function), and ``classmethod``/``staticmethod`` objects
(put ``@engine.guard`` below them).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from sentra_runtime.decision import Decision

if TYPE_CHECKING:
    from sentra_runtime.engine import Engine

F = TypeVar("F", bound=Callable[..., Any])
_NAMED = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
          inspect.Parameter.KEYWORD_ONLY)


class ActionDenied(PermissionError):
    """Raised by :meth:`Engine.guard` before the guarded body runs; carries the decision."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(f"{decision.label}: {decision.action} by agent "
                         f"{decision.agent_id!r} ({decision.rule_id}): {decision.reason}")
        self.decision = decision


def guard(engine: Engine, agent_id: str, action: str, fields: Mapping[str, Any] | None,
          from_arguments: bool) -> Callable[[F], F]:
    """See :meth:`Engine.guard`."""
    static = dict(fields or {})
    declared = frozenset(spec.name.partition(".")[0] for spec in engine.policy.inputs)

    def decorate(function: F) -> F:
        if isinstance(function, (classmethod, staticmethod)):
            raise TypeError("put @engine.guard below @classmethod or @staticmethod, not above")
        arguments = _Arguments(function, declared, static) if from_arguments else None

        def check(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Decision:
            merged = static if arguments is None else arguments.fields(static, args, kwargs)
            decision = engine.evaluate(agent_id, action, merged)
            wrapper.last_decision = decision  # type: ignore[attr-defined]
            if not decision.allowed:
                raise ActionDenied(decision)
            return decision

        if inspect.iscoroutinefunction(function):
            @functools.wraps(function)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                check(args, kwargs)
                return await function(*args, **kwargs)
        else:
            @functools.wraps(function)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                check(args, kwargs)
                return function(*args, **kwargs)

        wrapper.last_decision = None  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


class _Arguments:
    """Reads a guarded function's call arguments as fields (see the module's rules)."""

    def __init__(self, function: Callable[..., Any], declared: frozenset[str],
                 static: Mapping[str, Any]) -> None:
        target: Callable[..., Any] = function
        self.bound_args: tuple[Any, ...] = ()
        self.bound_kwargs: dict[str, Any] = {}
        if isinstance(function, functools.partial):
            target = function.func
            self.bound_args, self.bound_kwargs = function.args, dict(function.keywords)
        name = getattr(function, "__qualname__", repr(function))
        self.signature = _signature(target, name)
        parameters = self.signature.parameters
        clash = sorted(key for key in static
                       if key in parameters and parameters[key].kind in _NAMED)
        if clash:
            raise TypeError(f"the guard's fields name parameters of {name} ({', '.join(clash)}): "
                            "the body would get another value than the policy sees; pass "
                            "them as arguments instead")
        self.declared = declared
        self.positional_only = frozenset(
            key for key, parameter in parameters.items()
            if parameter.kind is inspect.Parameter.POSITIONAL_ONLY)
        self.defaults = {key: parameter.default for key, parameter in parameters.items()
                         if key in declared and parameter.default is not inspect.Parameter.empty}

    def fields(self, static: dict[str, Any], args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> dict[str, Any]:
        """The function's defaults, the guard's fields, then what the call passes; of the
        arguments, only names the policy declares."""
        bound = self.signature.bind(*self.bound_args, *args, **{**self.bound_kwargs, **kwargs})
        passed: dict[str, Any] = {}
        for key, value in bound.arguments.items():
            kind = self.signature.parameters[key].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                twice = sorted(self.positional_only.intersection(value))
                if twice:
                    raise TypeError(f"{', '.join(twice)} given both as a positional-only "
                                    "argument and as a keyword: which one the policy should "
                                    "check is ambiguous")
                passed.update((name, item) for name, item in value.items()
                              if name in self.declared)
            elif kind is not inspect.Parameter.VAR_POSITIONAL and key in self.declared:
                passed[key] = value
        return {**self.defaults, **static, **passed}


def _signature(target: Callable[..., Any], name: str) -> inspect.Signature:
    """The signature a call of ``target`` binds against. ``inspect.signature`` follows
    ``__wrapped__`` to the decorated function, whose parameters a decorator may have changed
    (injected a session, say): then the wrapped signature would map the call's arguments to the
    wrong names, so such a callable is refused. A wrapper with no signature of its own (a C
    object such as ``functools.lru_cache``) is read through ``__wrapped__``."""
    try:
        own: inspect.Signature | None = inspect.signature(target, follow_wrapped=False)
    except (TypeError, ValueError):
        own = None
    try:
        followed = inspect.signature(target)
    except (TypeError, ValueError):
        followed = None
    if followed is None:
        raise TypeError(f"guard cannot read the arguments of {name}: it has no signature; "
                        "pass from_arguments=False and give the fields")
    if own is not None and own != followed:
        raise TypeError(f"guard cannot tell which arguments {name} passes on: it is decorated "
                        f"(it takes {own}, the function it wraps takes {followed}); put "
                        "@engine.guard directly on the function, below other decorators")
    return followed
