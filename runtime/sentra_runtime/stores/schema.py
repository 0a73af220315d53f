"""The versioned schema of the SQL stores (SQLite and PostgreSQL), and how a store fails.

Both stores record the version of their schema in the database. Version 1 is the SQLite layout
from before versions were recorded (``agents`` and ``audit``); version 2 adds the head (the
seq and hash of the last audit record, written with every record in the same transaction, so
that records deleted from the end of the log are found) and the compiled tables of the policies
loaded (so that every process sharing the store can load the policy another one loaded);
version 3 adds each agent's risk-decay anchor (a column that is NULL for an agent without one);
version 4 adds the review tickets (a table of their own: id, agent, status, times and the ticket
as JSON). PostgreSQL stores start at version 2.

A store opens a database with an older schema only to upgrade it (``upgrade=True``, the
default: in one transaction, additive, so a process of an older runtime on the same database
keeps working), and refuses a newer one (:class:`SchemaError`).
"""

from __future__ import annotations

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
