"""Optional dependencies: a command whose extra is not installed says which one to install.

The plain install (`pip install sentra-lang`) runs `check`, `compile`, `fmt`, `explain`,
`test`, `replay` and `audit`; heavier commands need an extra (docs/cli.md, "Extras"). Such a
command calls `require` before importing what it needs, and `main` turns `MissingExtra` into
`sentra-lang CMD: error: this command needs the `X` extra: pip install 'sentra-lang[X]'` and
exit code 2.
"""

from __future__ import annotations

from importlib import import_module


class MissingExtra(Exception):
    """An optional dependency of the running command cannot be imported."""

    def __init__(self, extra: str, module: str) -> None:
        super().__init__(f"this command needs the `{extra}` extra: pip install "
                         f"'sentra-lang[{extra}]'")
        self.extra = extra
        self.module = module


def require(extra: str, *modules: str) -> None:
    """Import `modules` (the extra's top-level packages); raise MissingExtra if one fails."""
    for module in modules:
        try:
            import_module(module)
        except ImportError as error:
            raise MissingExtra(extra, module) from error
