"""The language's reserved words, written once.

The grammar (`grammar.lark`) spells the same words; a test keeps `KEYWORDS` equal to
`parser.grammar_keywords()`. The Pygments lexer and the TextMate grammar are built from these
groups, so highlighting cannot drift from what the parser accepts.
"""

from __future__ import annotations

DECLARATIONS = ("policy", "version", "input", "let", "action", "otherwise", "import")
CLAUSES = ("when", "as", "risk", "threat", "description", "normalize")
TYPE_WORDS = ("enum", "set")
OUTCOMES = ("allow", "block", "shutdown")
OPERATOR_WORDS = ("and", "or", "not", "in", "exists", "starts_with", "ends_with", "contains")
CONSTANTS = ("true", "false")

KEYWORDS: frozenset[str] = frozenset(
    DECLARATIONS + CLAUSES + TYPE_WORDS + OUTCOMES + OPERATOR_WORDS + CONSTANTS
)

