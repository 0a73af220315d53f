"""`sentra-lang docs`: the published reference of what a policy does.

    compile -> collect (page data, coverage) -> render (Jinja2 -> Markdown + mkdocs.yml)
            -> build (mkdocs-material, strict, offline)
"""

from __future__ import annotations

from sentra_lang.docgen.build import DocsBuildError, build_site
from sentra_lang.docgen.collect import (
    Coverage,
    CoverageError,
    PolicyDoc,
    load_coverage,
    policy_docs,
)
from sentra_lang.docgen.render import Renderer, write_markdown

__all__ = [
    "Coverage",
    "CoverageError",
    "DocsBuildError",
    "PolicyDoc",
    "Renderer",
    "build_site",
    "load_coverage",
    "policy_docs",
    "write_markdown",
]
