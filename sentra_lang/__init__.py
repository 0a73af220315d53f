"""sentra-lang: a small declarative policy language for gating AI agents' actions.

The pipeline, one module a stage: `parser` (Lark grammar to AST), `checker` (names and types),
`compiler` (passes down to the decision table of `table`), `analysis` (exact findings on the
table, over the cells of `space` evaluated by `regions`), `semdiff` (what a policy change does),
`formatter`; `diagnostics` renders every problem. The runtime is `sentra_runtime`.

The entry points below are imported on first use, so `import sentra_lang` (and with it every
`sentra-lang` command, `--version` included) starts without loading the compiler.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import version as _installed_version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sentra_lang.compiler import Compilation, compile_file, compile_source
    from sentra_lang.policy_file import LoadedPolicy, load_policy_file

__version__ = _installed_version("sentra-lang")  # set at build time from sentra_runtime

_EXPORTS = {
    "Compilation": "sentra_lang.compiler",
    "compile_file": "sentra_lang.compiler",
    "compile_source": "sentra_lang.compiler",
    "LoadedPolicy": "sentra_lang.policy_file",
    "load_policy_file": "sentra_lang.policy_file",
}

__all__ = ["Compilation", "LoadedPolicy", "__version__", "compile_file", "compile_source",
           "load_policy_file"]


def __getattr__(name: str) -> Any:
    """The exported entry points, imported when first asked for (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sentra_lang' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
