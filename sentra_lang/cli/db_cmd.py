"""`sentra-lang db status|upgrade DB`: the store's schema version, and upgrading it.

DB is a SQLite store file or a PostgreSQL URL. The server and the runtime upgrade an older
schema when they open it (in one transaction; an upgrade only adds); `db upgrade` does it
explicitly, for example before starting instances of a newer sentra-lang on a shared database,
and creates the schema in an empty PostgreSQL database. A schema newer than this sentra-lang's
is refused everywhere. Exit codes: `status` 0 when the store is current, 1 when it needs an
upgrade; `upgrade` 0 when the store is current afterwards; 2 for usage errors (no such file,
unreachable database, a newer schema, not a store).
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sentra_lang.cli import EXIT_FAILURE, EXIT_OK, UsageError
from sentra_lang.cli.audit_cmd import add_answer_timeout, answer_timeout
from sentra_lang.cli.extras import require
from sentra_lang.cli.paths import store_file_error


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "db", help="show or upgrade the state database's schema",
        description="Show the schema version of a state database (a SQLite store file or a "
        "postgresql:// URL), or create and upgrade its schema.")
    commands = parser.add_subparsers(dest="db_command", metavar="SUBCOMMAND", required=True)
    status = commands.add_parser("status", help="the schema version (exit 1 when it needs an "
                                                "upgrade)")
    status.add_argument("db", metavar="DB", help="SQLite store file or postgresql:// URL")
    add_answer_timeout(status)
    status.set_defaults(run=run_status)
    upgrade = commands.add_parser("upgrade", help="create or upgrade the schema")
    upgrade.add_argument("db", metavar="DB", help="SQLite store file or postgresql:// URL")
    add_answer_timeout(upgrade)
    upgrade.set_defaults(run=run_upgrade)


def run_status(args: argparse.Namespace) -> int:
    from sentra_runtime.stores import SCHEMA_VERSION
    from sentra_runtime.stores.postgres import database_schema_version, redacted
    from sentra_runtime.stores.schema import checked_version
    from sentra_runtime.stores.sqlite import file_schema_version

    with _database(args.db) as postgres:
        found = (database_schema_version(args.db, **answer_timeout(args))
                 if postgres else file_schema_version(args.db))
        if found:
            checked_version(found, redacted(args.db), upgrade=True)   # newer: refused
    where = redacted(args.db)
    if found == SCHEMA_VERSION:
        print(f"{where}: store schema version {found}, current")
        return EXIT_OK
    what = "no store yet" if found == 0 else f"store schema version {found}"
    print(f"{where}: {what}; this sentra-lang uses version {SCHEMA_VERSION}: run "
          f"`sentra-lang db upgrade` (the server also upgrades it when it starts)")
    return EXIT_FAILURE


def run_upgrade(args: argparse.Namespace) -> int:
    from sentra_runtime.stores.postgres import redacted, upgrade_database
    from sentra_runtime.stores.sqlite import upgrade_file

    with _database(args.db) as postgres:
        before, after = (upgrade_database(args.db, **answer_timeout(args))
                         if postgres else upgrade_file(args.db))
    where = redacted(args.db)
    if before == after:
        print(f"{where}: store schema version {after}, current: nothing to do")
    elif before == 0:
        print(f"{where}: created the store schema, version {after}")
    else:
        print(f"{where}: upgraded the store schema from version {before} to {after}")
    return EXIT_OK


@contextlib.contextmanager
def _database(db: str) -> Iterator[bool]:
    """Whether ``db`` is a PostgreSQL URL; the errors of using it as usage errors."""
    from sentra_runtime.stores import SchemaError, StoreUnavailable, is_postgres_url
    from sentra_runtime.stores.postgres import redacted

    postgres = is_postgres_url(db)
    if postgres:
        require("postgres", "psycopg", "psycopg_pool")
    elif not Path(db).is_file():
        raise UsageError(f"no such store file: {db}")
    try:
        yield postgres
    except (SchemaError, StoreUnavailable) as error:
        raise UsageError(str(error) if redacted(db) in str(error)
                         else f"{redacted(db)}: {error}") from None
    except sqlite3.Error as error:
        raise store_file_error(db, error) from None
    except OSError as error:
        raise UsageError(f"cannot use {db}: {error.strerror or error}") from None
