"""sentra-lang: a small declarative policy language for gating AI agents' actions.

The pipeline, one module a stage: `parser` (Lark grammar to AST), `checker` (names and types),
`compiler` (passes down to the decision table of `table`), `analysis` (exact findings on the
table), `formatter`; `diagnostics` renders every problem. The runtime is `sentra_runtime`.
"""

from importlib.metadata import version as _installed_version

from sentra_lang.compiler import Compilation, compile_file, compile_source
from sentra_lang.policy_file import LoadedPolicy, load_policy_file

__version__ = _installed_version("sentra-lang")  # set at build time from sentra_runtime

__all__ = ["Compilation", "LoadedPolicy", "__version__", "compile_file", "compile_source",
           "load_policy_file"]
