"""Policies under test: compiled once per run (cached by resolved path) and described for the
checker, the runner and coverage."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentra_runtime import Policy
from sentra_runtime.decider import BUILT_IN_BLOCKS, BUILT_IN_SHUTDOWNS
from sentra_runtime.inputs import normalize

from sentra_lang.compiler import Compilation
from sentra_lang.files import real_path, special_kind
from sentra_lang.loader import FileUnreadable
from sentra_lang.policy_file import load_policy_file
from sentra_lang.table import Rule

SPECIAL_BLOCKS = BUILT_IN_BLOCKS
SPECIAL_IDS = BUILT_IN_BLOCKS | BUILT_IN_SHUTDOWNS
"""The ids the runtime decides with itself, which a suite may expect."""


@dataclass
class PolicyUnderTest:
    path: Path
    display: str
    compilation: Compilation
    table: dict[str, Any] = field(default_factory=dict)
    policy: Policy | None = None
    rules: dict[str, Rule] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    """Declared input fields by dotted name (table `InputField` models)."""
    blocks: dict[str, int] = field(default_factory=dict)
    """Normalised action name -> index of its action block."""

    @property
    def ok(self) -> bool:
        return self.policy is not None

    def normalize_action(self, action: str) -> str:
        assert self.policy is not None
        return normalize(action, self.policy.action_normalize)

    def rules_for(self, action: str) -> list[str]:
        """The policy rules that can decide `action` (its block's rules, or `otherwise`)."""
        assert self.policy is not None
        index = self.blocks.get(self.normalize_action(action))
        if index is None:
            return [self.policy.otherwise] if self.policy.otherwise else []
        return list(dict.fromkeys(row.rule for row in self.policy.actions[index].rows))


class PolicyCache:
    """Compile each policy file once per run (imports confined to `root`, by default each
    policy's folder)."""

    def __init__(self, root: Path | None = None) -> None:
        self._cache: dict[Path, PolicyUnderTest] = {}
        self.root = root

    def get(self, path: Path) -> PolicyUnderTest:
        key = real_path(path)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = load(path, self.root)
        return cached


class PolicyRefused(FileUnreadable):
    """The path a suite names is not a policy file: nothing of it is read or shown."""


def refuse_unless_policy_file(path: Path) -> None:
    """Raise PolicyRefused unless `path`, its symbolic links followed, is a `.sentra` file
    that is regular (or missing, which the loader reports): a suite from a pull request names
    its policy, and must not make `sentra-lang test` print the lines of another file
    (`/etc/shadow`, a link to a credentials file) or hang reading a FIFO."""
    real = real_path(path)
    if real.suffix != ".sentra":
        raise PolicyRefused(f"it is not a `.sentra` file ({real.name})" if real.name != path.name
                            else "it is not a `.sentra` file")
    kind = special_kind(real)
    if kind is not None:
        raise PolicyRefused(f"it is {kind}, not a regular file")


def load(path: Path, root: Path | None = None) -> PolicyUnderTest:
    """The policy at `path`, compiled from source. Raises FileUnreadable (PolicyRefused for a
    path that is not a policy file)."""
    refuse_unless_policy_file(path)
    loaded = load_policy_file(path, source_only=True, root=root)
    assert loaded.compilation is not None
    put = PolicyUnderTest(path, str(path), loaded.compilation)
    table = loaded.compilation.table
    if loaded.policy is not None and loaded.table is not None and table is not None:
        put.table, put.policy = loaded.table, loaded.policy
        put.rules = {rule.id: rule for rule in table.rules}
        put.fields = {f.name: f for f in table.input}
        put.blocks = {name: index for index, block in enumerate(table.actions)
                      for name in block.names}
    return put
