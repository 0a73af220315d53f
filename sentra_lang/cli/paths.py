"""Command-line PATH arguments: the files to work on, and the root folder imports stay in."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

from sentra_lang.cli import UsageError
from sentra_lang.files import find_files


def expand(paths: list[str], suffix: str = ".sentra") -> list[Path]:
    """Files as given, folders searched recursively for `suffix`; a missing path is a usage error."""
    try:
        return find_files(paths, suffix)
    except FileNotFoundError as error:
        raise UsageError(str(error)) from None


def add_root_option(parser: argparse.ArgumentParser) -> None:
    """`--root DIR`: the folder a policy's imports must stay in (docs/language.md, "Imports")."""
    parser.add_argument("--root", metavar="DIR",
                        help="the folder imports must stay inside (default: each policy's own "
                        "folder)")


def root_of(args: argparse.Namespace) -> Path | None:
    """The `--root` folder, checked; None when not given (each policy's folder is its root)."""
    if args.root is None:
        return None
    root = Path(args.root)
    if not root.is_dir():
        raise UsageError(f"--root {args.root}: no such folder")
    return root


def store_file_error(path: str, error: sqlite3.Error, kind: str = "store") -> UsageError:
    """A SQLite file a command could not use, as the usage error that says why: one SQLite
    could not open, read or lock now (a full disk, with no room for its `-shm` file; no
    permission; an I/O error) is named as such, anything else is not a sentra ``kind``."""
    if isinstance(error, sqlite3.OperationalError):
        return UsageError(f"cannot read {path}: {error}")
    return UsageError(f"{path}: not a sentra {kind} ({error})")
