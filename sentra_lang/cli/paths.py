"""Turning command-line PATH arguments (files or folders) into the files to work on."""

from __future__ import annotations

from pathlib import Path

from sentra_lang.cli import UsageError


def expand(paths: list[str], suffix: str = ".sentra") -> list[Path]:
    """Files as given, folders searched recursively for `suffix`; a missing path is a usage error."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob(f"*{suffix}") if p.is_file()))
        elif path.exists():
            found.append(path)
        else:
            raise UsageError(f"no such file or folder: {raw}")
    return list(dict.fromkeys(found))

