"""sentra-lang: a small declarative policy language for gating AI agents' actions.

The pipeline, one module a stage: `parser` (Lark grammar to AST), `checker` (names and types),
`compiler` (passes down to the decision table of `table`), `analysis` (exact findings on the
table, over the cells of `space` evaluated by `regions`), `semdiff` (what a policy change does),
`formatter`; `diagnostics` renders every problem. The runtime is `sentra_runtime`.
"""

from sentra_lang.compiler import Compilation, compile_file, compile_source
from sentra_lang.policy_file import LoadedPolicy, load_policy_file

__version__ = "0.1.0"

__all__ = ["Compilation", "LoadedPolicy", "__version__", "compile_file", "compile_source",
           "load_policy_file"]
