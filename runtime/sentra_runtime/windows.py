"""Rate-limit windows: the one rule by which an allowed decision counts in an agent's windows
(docs/runtime.md, "Rate-limit windows").

The decider's state step counts with :func:`counted`; audit verification rebuilds every
agent's windows from the log with the same function (:func:`recounted`), from what each
counting decision's record keeps: the keys of the windows it counted in, the keys of the
windows it dropped (limits a reloaded policy no longer has) and its time.
"""

from __future__ import annotations

import sys
from bisect import bisect_right
from collections.abc import Collection, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sentra_runtime.policy import LimitSpec, key_period

MICROSECONDS = 1_000_000
"""Window times (and decay anchors) are whole microseconds since the epoch, as an audit
record's ``time`` is."""
Windows = dict[str, tuple[int, ...]]
"""An agent's rate-limit windows: per limit (its :attr:`LimitSpec.key`), the times of the last
allowed decisions it counted (whole microseconds since the epoch, oldest first, at most the
limit's count). Never changed in place: a decision that counts makes a new dict."""
Window = tuple[str, int, int, LimitSpec]
"""A limit as the state step counts it: its window's key, its count, its period in
microseconds, and the limit."""


def counted_in_window(times: tuple[int, ...], now_us: int, limit: LimitSpec) -> int:
    """How many of a window's times (sorted) are in ``(now - period, now]`` (a time after
    ``now``, from a clock that went back, counts too: the window never shrinks by a clock's
    mistake). Logarithmic in the window's size."""
    return len(times) - bisect_right(times, now_us - limit.period * MICROSECONDS)


def counted(windows: Windows | None, limits: tuple[Window, ...], now_us: int,
            keys: frozenset[str]) -> Windows | None:
    """New windows with an allowed decision at ``now_us`` counted in each of ``limits``, or
    ``None`` when one of them is reached (N counted decisions of a limit of N per D in
    ``(now - D, now]``). Each window keeps its times still in it and this one, sorted: at most
    the limit's count. Windows of keys no limit of the policy has (left by an earlier policy)
    are dropped. Constant time per limit when the time is the latest (as it is unless a clock
    went back)."""
    if windows is None:
        kept: Windows = {}
    elif keys.issuperset(windows):
        kept = windows.copy()
    else:
        kept = {key: times for key, times in windows.items() if key in keys}
    for key, count, period_us, _ in limits:
        times = kept.get(key)
        if not times:
            kept[key] = (now_us,)
            continue
        left = now_us - period_us   # the latest time that has left the window
        if times[0] <= left:
            times = times[bisect_right(times, left):]
        if len(times) >= count:
            return None
        if times and times[-1] > now_us:   # a clock that went back: in its place
            kept[key] = tuple(sorted((*times, now_us)))
        else:
            kept[key] = times + (now_us,)
    return kept


def recounted(windows: Windows, keys: Sequence[str], dropped: Collection[str],
              now_us: int) -> Windows | None:
    """The windows after a decision whose audit record says it counted, at ``now_us``, in the
    windows ``keys`` and dropped the windows ``dropped``: :func:`counted` itself, with each
    window's period read from its key. No window is full (the decision was allowed), so no
    count is needed. ``None`` when a key names no window (no period)."""
    limits = []
    for key in keys:
        period = key_period(key)
        if period is None:
            return None
        limits.append((key, sys.maxsize, period * MICROSECONDS,
                       LimitSpec(key, sys.maxsize, period, "")))
    kept = frozenset(key for key in windows if key not in dropped)
    return counted(windows, tuple(limits), now_us, kept.union(keys))


COUNTED = "counted"
"""The key of a counting decision's record (in its ``decision``) that lists the windows it
counted in."""
DROPPED = "dropped"
"""The key that lists the windows it dropped (only when it dropped some)."""


COUNTED_LIMITS = "_counted"
"""Where an allowed decision under a policy with limits keeps (in its ``__dict__``) the limits
it counted in (``()`` when none applies to it), for its audit record (:func:`counting_fields`)."""
DROPPED_KEYS = "_dropped"
"""Where such a decision keeps the keys of the windows it dropped, when it dropped some
(:func:`dropped`)."""


def dropped(before: Windows, after: Windows) -> list[str]:
    """The keys of the windows a counting decision dropped (limits its policy no longer has),
    sorted. The state step asks only when ``before`` holds a key its policy has no limit of."""
    return sorted(key for key in before if key not in after)


def counting_fields(kept: Mapping[str, Any]) -> dict[str, list[str]]:
    """The keys the audit record of a decision (``kept``: its ``__dict__``) keeps about its
    windows: for an allowed decision under a policy with limits, ``counted`` (the windows it
    counted in, in the order they were checked; ``[]`` when no limit applied) and ``dropped``
    (the windows of limits its policy no longer has, which it dropped; only when there are
    some); nothing for other decisions."""
    limits = kept.get(COUNTED_LIMITS)
    if limits is None:
        return {}
    fields = {COUNTED: list(map(_key, limits))}
    if DROPPED_KEYS in kept:
        fields[DROPPED] = list(kept[DROPPED_KEYS])
    return fields


_key = itemgetter(0)


def replayed(windows: Windows, outcome: Mapping[str, Any], now_us: int) -> Windows | None:
    """The windows after a decision, from its record's ``decision`` (which holds ``counted``)
    and its time: :func:`recounted`. ``None`` when the record's keys are malformed."""
    keys, dropped = outcome.get(COUNTED), outcome.get(DROPPED, [])
    if not (isinstance(keys, list) and isinstance(dropped, list)
            and all(isinstance(key, str) for key in (*keys, *dropped))):
        return None
    return recounted(windows, keys, dropped, now_us)
