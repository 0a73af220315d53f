"""The versioned schema of the SQL stores (SQLite and PostgreSQL), and how a store fails.

Both stores record the version of their schema in the database. Version 1 is the SQLite layout
from before versions were recorded (``agents`` and ``audit``); version 2 adds the head (the
seq and hash of the last audit record, written with every record in the same transaction, so
that records deleted from the end of the log are found) and the compiled tables of the policies
loaded (so that every process sharing the store can load the policy another one loaded);
version 3 adds each agent's risk-decay anchor (a column that is NULL for an agent without one);
version 4 adds each agent's rate-limit windows (a column holding JSON, :func:`windows_text`, NULL
for an agent without counted decisions), the group an operator assigned it to (a column, NULL
for none; decisions and resets never write it) and the review tickets (a table of their own:
id, agent, status, times and the ticket as JSON). PostgreSQL stores start at version 2.

A store opens a database with an older schema only to upgrade it (``upgrade=True``, the
default: in one transaction, additive, so a process of an older runtime on the same database
keeps working), and refuses a newer one (:class:`SchemaError`).
"""

from __future__ import annotations

import json
from typing import Any

from sentra_runtime import jsontext
from sentra_runtime.policy import PolicyLoadError

SCHEMA_VERSION = 4
"""The schema version this runtime creates and writes."""
UNVERSIONED = 1
"""The version of a SQLite store file written before versions were recorded."""


class SchemaError(Exception):
    """The database's schema cannot be used by this runtime: newer, not a store, or older and
    not to be upgraded (``upgrade=False``)."""


class StoreUnavailable(Exception):
    """The store's database cannot be reached (refused, lost, timed out): nothing was decided
    or recorded for the call that raised it, unless its commit was under way (then the
    decision may be recorded, but it was not acknowledged). Retry later; fail closed now."""


def checked_version(found: int, where: str, *, upgrade: bool) -> int:
    """``found`` when this runtime can use it as it is or upgrade it; else :class:`SchemaError`
    with what to do."""
    if found > SCHEMA_VERSION:
        raise SchemaError(f"{where} has store schema version {found}, newer than this "
                          f"sentra-runtime supports ({SCHEMA_VERSION}): upgrade sentra-lang "
                          "and sentra-runtime to use it")
    if found < SCHEMA_VERSION and not upgrade:
        raise SchemaError(f"{where} has store schema version {found}, older than this "
                          f"sentra-runtime's ({SCHEMA_VERSION}): upgrade it with `sentra-lang "
                          "db upgrade`")
    return found


def windows_text(state: tuple[Any, ...]) -> str | None:
    """An agent state's rate-limit windows as stored (JSON: each limit's key to its times, in
    whole microseconds); ``None`` when it has none."""
    if len(state) < 5 or not state[4]:
        return None
    windows = state[4]
    known = _TEXTS.get(id(windows))
    if known is not None and known[0] is windows:   # read from the store, unchanged since
        return known[1]
    text = _encode(windows)
    _remember(text, windows)
    return text


def _encode(windows: dict[str, tuple[int, ...]]) -> str:
    """The JSON of windows, keys sorted, no spaces: the text ``json.dumps(windows,
    sort_keys=True, separators=(",", ":"))`` gives, made faster (a time stays in an agent's
    windows for many decisions, and turning a 16-digit int into digits is most of the work:
    :data:`_DIGITS` keeps them)."""
    if len(_DIGITS) >= _DIGITS_SIZE:
        _DIGITS.clear()
    digits = _DIGITS.__getitem__
    parts = ["{"]
    for key in sorted(windows):
        parts += (_key_text(key), ":[", ",".join(map(digits, windows[key])), "],")
    parts[-1] = "]}" if windows else "{}"
    return "".join(parts)


class _Digits(dict[int, str]):
    """A time to its decimal digits, made on first use."""

    def __missing__(self, time: int) -> str:
        text = self[time] = str(time)
        return text


_DIGITS = _Digits()
_DIGITS_SIZE = 16_384
"""How many times' digits a process keeps (then it starts again)."""
_KEY_TEXTS: dict[str, str] = {}


def _key_text(key: str) -> str:
    """A window's key as a JSON string."""
    text = _KEY_TEXTS.get(key)
    if text is None:
        if len(_KEY_TEXTS) >= _CACHE_SIZE:
            _KEY_TEXTS.clear()
        text = _KEY_TEXTS[key] = json.dumps(key)
    return text


_CACHE_SIZE = 8192
"""How many windows texts a process keeps decoded (then it starts again)."""
_DECODED: dict[str, dict[str, tuple[int, ...]]] = {}
"""Windows text to the windows it decodes to: a store reads back what it wrote at the agent's
last decision, and decodes it once. The windows are never changed in place (the decider makes
new ones), so one value serves every read of its text."""
_TEXTS: dict[int, tuple[dict[str, tuple[int, ...]], str]] = {}
"""``id(windows)`` to the windows and their text, for the windows in :data:`_DECODED`: a
decision that leaves them as they were writes the same text without encoding it again."""


def _remember(text: str, windows: dict[str, tuple[int, ...]]) -> None:
    if len(_DECODED) >= _CACHE_SIZE:
        _DECODED.clear()
        _TEXTS.clear()
    _DECODED[text] = windows
    _TEXTS[id(windows)] = (windows, text)


def stored_state(risk: int, blocked: int, down: Any, anchor: int | None,
                 windows: str | None = None, group: str | None = None) -> Any:
    """A stored row as the decider's state: with the decay anchor when there is one, the
    limit windows when there are some and the operator's group assignment when there is one
    (the places before it hold ``None`` when empty). Windows edited into something that is no
    JSON of lists of times count as none."""
    kept = None if windows is None else _windows(windows)
    if group is not None:
        return risk, blocked, bool(down), anchor, kept or None, group
    if kept:
        return risk, blocked, bool(down), anchor, kept
    if anchor is None:
        return risk, blocked, bool(down)
    return risk, blocked, bool(down), anchor


def saved_table(text: str, policy_hash: str) -> dict[str, Any]:
    """The compiled table a process saved in the store (its body as stored); a
    :class:`PolicyLoadError` naming the policy when the body is not a JSON object (edited in the
    database). The loader then checks the table and its hash."""
    try:
        table = jsontext.loads(text)
    except jsontext.JSONTextError as error:
        raise PolicyLoadError(f"the saved table of policy {policy_hash} is not JSON: "
                              f"{error}") from None
    if not isinstance(table, dict):
        raise PolicyLoadError(f"the saved table of policy {policy_hash} is not a JSON object")
    return table


def _windows(text: str) -> dict[str, tuple[int, ...]] | None:
    known = _DECODED.get(text)
    if known is not None:
        return known
    try:
        data = jsontext.loads(text)
    except jsontext.JSONTextError:
        return None
    if not isinstance(data, dict):
        return None
    kept: dict[str, tuple[int, ...]] = {}
    for key, times in data.items():
        if not isinstance(times, list) or not all(type(t) is int for t in times):
            return None
        kept[key] = tuple(sorted(times))
    if kept:
        _remember(text, kept)
    return kept
