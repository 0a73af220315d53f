"""Turning command-line PATH arguments (files or folders) into the files to work on."""

from __future__ import annotations

from pathlib import Path

from sentra_lang.cli import UsageError
from sentra_lang.files import find_files


def expand(paths: list[str], suffix: str = ".sentra") -> list[Path]:
    """Files as given, folders searched recursively for `suffix`; a missing path is a usage error."""
    try:
        return find_files(paths, suffix)
    except FileNotFoundError as error:
        raise UsageError(str(error)) from None
