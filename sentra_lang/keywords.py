"""The language's vocabulary, written once: reserved words and the built-in names (and the few
fixed values every stage shares: a number literal's most digits, the tools' fixed time).

The grammar (`grammar.lark`) spells the same reserved words; a test keeps `KEYWORDS` equal to
`parser.grammar_keywords()`. The checker accepts exactly the built-in names below (types,
normalisations, settings), and the Pygments lexer and the TextMate grammar are built from the
same groups, so highlighting cannot drift from what the parser and the checker accept. This
module imports nothing, so every stage can use it without an import cycle.
"""

from __future__ import annotations

DECLARATIONS = ("policy", "version", "input", "let", "action", "otherwise", "import", "group")
CLAUSES = ("when", "as", "risk", "threat", "description", "normalize", "agents", "limit",
           "expires")
TYPE_WORDS = ("enum", "set")
OUTCOMES = ("allow", "block", "shutdown", "review")
OPERATOR_WORDS = ("and", "or", "not", "in", "exists", "starts_with", "ends_with", "contains")
CONSTANTS = ("true", "false")
RATE_WORDS = ("per",)
"""`N per DURATION` (`risk_decay 10 per 1h`)."""

FIXED_TIME = 1_704_067_200.0
"""The time the tools decide at, so that they decide the same whenever they run
(2024-01-01T00:00:00Z): a scenario's clock starts there, `explain` decides there, and `diff`
decides its witnesses there (a witness's `expires_at` is then the one `explain` shows)."""

MAX_NUMBER_DIGITS = 100
"""The most digits a number literal has (SL012; docs/language.md, "Limits")."""

KEYWORDS: frozenset[str] = frozenset(
    DECLARATIONS + CLAUSES + TYPE_WORDS + OUTCOMES + OPERATOR_WORDS + CONSTANTS + RATE_WORDS
)


# Built-in names: not reserved (they are NAME tokens), but the checker knows each of them.
SIMPLE_TYPES = ("bool", "int", "number", "string")
NORMALIZATIONS = ("lower", "upper", "trim")
SETTINGS = ("risk_threshold", "strikes", "description", "action_type", "undeclared_fields",
            "risk_decay", "review_timeout")
GROUP_SETTINGS = ("risk_threshold", "strikes", "risk_decay")
"""The settings a `group` may give (the rest are the header's)."""
UNDECLARED_FIELDS = ("refuse", "ignore")
"""The values of `undeclared_fields` (sentra_runtime.inputs.UNDECLARED_MODES)."""
