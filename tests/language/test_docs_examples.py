"""The documentation's examples compile, and generated documents are up to date."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sentra_lang.docs_sync import GENERATED
from tests.helpers import compile_ok

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"```sentra\n(.*?)```", re.S)


def _examples() -> list[tuple[str, str]]:
    found = []
    for page in ("language.md", "getting-started.md", "index.md", "runtime.md"):
        path = DOCS / page
        if path.exists():
            for index, match in enumerate(BLOCK.finditer(path.read_text("utf-8"))):
                found.append((f"{page}#{index}", match.group(1)))
    return found


EXAMPLES = _examples()


@pytest.mark.parametrize("source", [s for _, s in EXAMPLES], ids=[n for n, _ in EXAMPLES])
def test_documented_example_compiles(source: str) -> None:
    if "policy " not in source and ("action " in source or "otherwise " in source):
        source = 'policy fragment version "1" {}\n' + source  # a fragment of a policy
    compile_ok(source)


def test_language_reference_has_examples() -> None:
    assert sum(name.startswith("language.md") for name, _ in EXAMPLES) >= 6


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_document_is_current(name: str) -> None:
    actual = (DOCS / name).read_text("utf-8")
    assert actual == GENERATED[name](), f"docs/{name} is stale: run python -m sentra_lang.docs_sync"
