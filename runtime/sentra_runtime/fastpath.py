"""The in-process fast path: ``Engine.evaluate`` for a :class:`MemoryStore`, as one function.

With the in-memory store, a decision's own work is a few dict, tuple and list operations; the
layers around it (``Store.apply``, ``Engine._decide``, the decision's ``__init__``) cost more
than that work. So an engine whose store is exactly a :class:`MemoryStore` binds the closure
made here as its ``evaluate``. It runs the generated matcher, then, under the store's lock, makes
the most common decision (an allowed row within the threshold, for an agent that is not shut
down) inline, and hands every other case to ``Engine._decide``, the one place the rest of the
semantics live. It writes the same states and the same audit entries, with the same seqs, as
``MemoryStore.apply`` would (the runtime tests run every case through both paths).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sentra_runtime.codegen import NO_MATCH, MatchFunction
from sentra_runtime.decision import Decision, EvaluatedDecision
from sentra_runtime.explain import jsonable
from sentra_runtime.stores import FRESH, Decide
from sentra_runtime.stores.memory import InlineStep

AllowRow = tuple[type[EvaluatedDecision], int, Callable[[tuple[Any, ...]], str] | None] | None
"""Per row of the matcher: ``(allowed decision class, risk, reason renderer)`` when its rule
allows, ``None`` when it blocks or shuts down."""
Evaluate = Callable[..., Decision]

_EMPTY: Mapping[str, Any] = {}
_new = object.__new__
_set_varying = EvaluatedDecision.__dict__["_v"].__set__
"""Make an EvaluatedDecision without its Python-level ``__init__`` (which does just this)."""


def inline_evaluate(match: MatchFunction, allow_rows: Sequence[AllowRow], threshold: int,
                    decide: Decide, inline: InlineStep, general: Evaluate) -> Evaluate:
    """``evaluate(agent_id, action, fields=None, *, annotations=None)`` doing the store's work
    itself (``inline``) for the most common decision, and handing the others to the store's
    ``step``. ``general`` is the ordinary ``Engine.evaluate``: it takes calls that need checking
    or conversion first (ids that are not strings, fields that are not a dict) and calls with
    annotations."""
    lock, states, log, step = inline
    acquire, release = lock.acquire, lock.release
    get = states.get
    clock = time.time
    rows = tuple(allow_rows)

    def evaluate(agent_id: str, action: str, fields: Mapping[str, Any] | None = None, *,
                 annotations: Any = None) -> Decision:
        if (annotations is not None or agent_id.__class__ is not str
                or action.__class__ is not str):
            return general(agent_id, action, fields, annotations=annotations)
        if fields is None:
            fields = _EMPTY
        elif fields.__class__ is not dict:
            return general(agent_id, action, fields)
        code, payload, action = match(action, fields)
        allow = rows[code] if code >= 0 else None
        raw = None if code >= NO_MATCH else jsonable(fields)
        acquire()
        try:
            state = get(agent_id, FRESH)
            if allow is not None and not state[2]:
                cls, risk, render = allow
                cumulative = state[0]
                projected = cumulative + risk
                if projected <= threshold:
                    made: EvaluatedDecision = _new(cls)
                    _set_varying(made, (
                        agent_id, action, projected, projected, state[1],
                        None if render is None else render(payload),
                        None if log is None else len(log) + 1, None, code, payload, state))
                    if log is not None:
                        log.append((clock(), made, None))
                    if projected != cumulative or state is FRESH:
                        states[agent_id] = (projected, state[1], False)
                    return made
            return step(decide, state, agent_id, action, raw, code, payload)
        finally:
            release()

    evaluate.__doc__ = general.__doc__
    return evaluate
