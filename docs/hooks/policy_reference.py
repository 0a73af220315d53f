"""mkdocs hook: the reference of every policy in `policies/`, generated at build time.

The pages are the ones `sentra-lang docs` writes, placed under `reference/`, so the published
reference can never lag behind the policies. A policy with errors fails the build.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

from sentra_lang.diagnostics import render_human
from sentra_lang.docgen import Renderer, policy_docs
from sentra_lang.docgen.collect import compile_policies, errors_of

PREFIX = "reference"


def on_files(files: Files, config: Any) -> Files:
    root = Path(config.config_file_path).parent
    sources = sorted((root / "policies").rglob("*.sentra"))
    compilations = compile_policies(sources)
    errors = errors_of(compilations)
    if errors:
        raise PluginError("policies/ has errors:\n" + "\n".join(render_human(e) for e in errors))
    renderer = Renderer(policy_docs(compilations, None), site_name="Policy reference")
    for relative, text in renderer.pages().items():
        files.append(File.generated(config, f"{PREFIX}/{relative}", content=text))
    return files
