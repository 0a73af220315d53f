"""Load a policy to run it: a `.sentra` file compiled now, or a compiled `.json` table.

Every command that runs a policy (`explain`, `replay`, `test`, `serve`) loads it here, so
they accept the same files and report a broken one the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentra_runtime import Policy, PolicyLoadError, jsontext, load_policy

from sentra_lang.compiler import Compilation, compile_file
from sentra_lang.diagnostics import Severity, render_human
from sentra_lang.files import read_bounded
from sentra_lang.loader import FileUnreadable

MAX_TABLE_BYTES = 64 * 1024 * 1024
"""The largest compiled table read (a table is larger than its source: 8 MiB of source at most)."""


@dataclass
class LoadedPolicy:
    """A policy ready for the runtime, or the problems that stopped it (rendered text)."""

    path: Path
    table: dict[str, Any] | None = None
    policy: Policy | None = None
    compilation: Compilation | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.policy is not None


def load_policy_file(path: str | os.PathLike[str], *, analyse: bool = False,
                     source_only: bool = False,
                     root: str | os.PathLike[str] | None = None,
                     color: bool = False) -> LoadedPolicy:
    """Compile or load the policy at `path` (`source_only`: always compile it as source;
    `color`: the diagnostics in `problems` are coloured for a terminal).

    A source's imports stay inside `root` (by default its folder). Raises
    `loader.FileUnreadable` when the file cannot be read at all; every other problem (a compile
    error, a library without a policy, a bad table) is in `problems`.
    """
    path = Path(path)
    if path.suffix == ".json" and not source_only:
        return _load_table(path)
    result = compile_file(path, analyse=analyse, root=root)
    loaded = LoadedPolicy(path, compilation=result)
    if not result.ok:
        loaded.problems = [render_human(d, color=color) for d in result.sorted_diagnostics()
                           if d.severity is Severity.ERROR]
    elif result.table is None:
        loaded.problems = [f"{path}: a library (no `policy` header) has no decision table"]
    else:
        loaded.table = result.table.model_dump(mode="json")
        loaded.policy = load_policy(loaded.table)
    return loaded


def _load_table(path: Path) -> LoadedPolicy:
    try:
        data, _ = read_bounded(path, MAX_TABLE_BYTES)
        if len(data) > MAX_TABLE_BYTES:
            return LoadedPolicy(path, problems=[f"{path}: the table is over the "
                                                f"{MAX_TABLE_BYTES // 1024 // 1024} MiB limit"])
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise FileUnreadable(f"cannot read `{path}`: {error}") from error
    try:
        data = jsontext.loads(text)
    except jsontext.JSONTextError as error:
        return LoadedPolicy(path, problems=[f"{path}: the table is not valid JSON: {error}"])
    if not isinstance(data, dict):
        return LoadedPolicy(path, problems=[f"{path}: a table is a JSON object"])
    try:
        policy = load_policy(data)
    except PolicyLoadError as error:
        return LoadedPolicy(path, problems=[f"{path}: {error}"])
    return LoadedPolicy(path, table=data, policy=policy)
