"""Policy text placed in Markdown (the HTML reference, editor hovers, `diff --format markdown`)
so that it is shown as written: a policy's names, strings and reasons never become links,
images, headings, emphasis or attributes in the page, hover or pull-request comment."""

from __future__ import annotations

import re

from sentra_lang.diagnostics import visible

_BACKTICKS = re.compile(r"`+")
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|])")
"""The characters Markdown (with the `attr_list` and `tables` extensions) reads as syntax and
takes back as text after a backslash; `<`, `>` and `&` are left to HTML escaping."""


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in _BACKTICKS.findall(text)), default=0)


def code_block(text: str, language: str = "sentra") -> str:
    """A fenced code block that no backtick run inside `text` can close early."""
    fence = "`" * max(3, _longest_backtick_run(text) + 1)
    return f"{fence}{language}\n{text.rstrip()}\n{fence}"


def code_span(text: str) -> str:
    """`text` as a code span it cannot leave: a backtick inside takes a longer fence, and
    control characters and line breaks are escapes (`diagnostics.visible`), so no line of it
    can start a heading or a list."""
    shown = visible(text)
    fence = "`" * (_longest_backtick_run(shown) + 1)
    pad = " " if shown[:1] in ("`", " ") or shown[-1:] in ("`", " ") else ""
    return f"{fence}{pad}{shown}{pad}{fence}"


def escape(text: str) -> str:
    """`text` with every character Markdown reads as syntax taken back with a backslash, so
    that it is shown as plain text (HTML, where it goes into HTML, is escaped after)."""
    return _SPECIAL.sub(r"\\\1", text)
