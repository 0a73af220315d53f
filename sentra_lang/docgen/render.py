"""Render the policy reference as a Markdown tree (Jinja2 templates) plus its `mkdocs.yml`.

The tree, relative to the docs folder:

    index.md                 every policy: version, hash, settings, counts, analysis status
    policies/<slug>.md       one policy: settings, input, definitions, decision tables, findings
    source/<slug>.md         the highlighted source, one anchor per line (`#L-12`)
    codes/index.md           every diagnostic code
    codes/<CODE>.md          one code: explanation, example, the diagnostic it produces
    assets/                  table and source styling; the offline search shim

Links between pages are relative, so the tree can sit under a prefix of a larger site (the
project's docs put it under `reference/`). Links inside HTML blocks point at `.html` pages,
which needs `use_directory_urls: false`; the generated config sets it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape
from pygments import highlight
from pygments.formatters import HtmlFormatter
from sentra_runtime.policy import duration_text

from sentra_lang import markdown
from sentra_lang.codes import CODES, Code
from sentra_lang.compiler import compile_source
from sentra_lang.diagnostics import render_human
from sentra_lang.docgen.collect import PolicyDoc
from sentra_lang.highlight import SentraLexer

TEMPLATES = Path(__file__).parent / "templates"
ASSETS = Path(__file__).parent / "assets"
LINE_ANCHOR = "L"
DEFAULT_SITE_NAME = "Policy reference"


def fence(text: str, language: str = "sentra") -> Markup:
    """A fenced code block that no backtick run inside `text` can close early."""
    return Markup(markdown.code_block(text, language))


def markdown_text(text: object) -> Markup:
    """Text of a policy (a version, a description, an action name) placed in Markdown, shown as
    it is: links, attribute lists (`{onclick=...}`) and emphasis in it stay text, so a policy
    can never add markup or script to its reference page."""
    return Markup(escape(markdown.escape(str(text))))


def highlighted_source(text: str) -> Markup:
    """The source as highlighted HTML with a `L-<n>` id on every line. The line numbers are
    drawn by the stylesheet (assets/sentra.css), so the page's text, the search index and
    copied code hold the source alone."""
    formatter = HtmlFormatter(linespans=LINE_ANCHOR, wrapcode=True,
                              cssclass="highlight sentra-source")
    return Markup(highlight(text, SentraLexer(), formatter))


def line_anchor(line: int) -> str:
    return f"{LINE_ANCHOR}-{line}"


def code_example_output(code: Code) -> str:
    """What `sentra-lang check` prints for the code's example (its diagnostics with this code)."""
    result = compile_source(code.example, "example.sentra")
    return "\n\n".join(render_human(d) for d in result.sorted_diagnostics() if d.code == code.code)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["fence"] = fence
    env.filters["markdown_text"] = markdown_text
    env.filters["duration"] = duration_text
    env.globals["line_anchor"] = line_anchor
    return env


class Renderer:
    """Renders every page of the reference for a list of policies."""

    def __init__(self, docs: list[PolicyDoc], *, site_name: str = DEFAULT_SITE_NAME) -> None:
        self.docs = docs
        self.site_name = site_name
        self.env = _environment()

    def _render(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(site_name=self.site_name, **context)

    def pages(self) -> dict[str, str]:
        """Every file of the docs folder: relative path -> text."""
        pages = {"index.md": self._render("index.md.j2", docs=self.docs)}
        for doc in self.docs:
            pages[f"policies/{doc.slug}.md"] = self._render("policy.md.j2", doc=doc)
            pages[f"source/{doc.slug}.md"] = self._render(
                "source.md.j2", doc=doc, source_html=highlighted_source(doc.source))
        codes = sorted(CODES.values(), key=lambda code: code.code)
        pages["codes/index.md"] = self._render("codes_index.md.j2", codes=codes)
        for code in codes:
            output = code_example_output(code) if code.example else ""
            pages[f"codes/{code.code}.md"] = self._render("code.md.j2", code=code, output=output)
        for asset in sorted(ASSETS.iterdir()):
            pages[f"assets/{asset.name}"] = asset.read_text(encoding="utf-8")
        return pages

    def mkdocs_config(self, docs_dir: str = "docs") -> str:
        return self._render("mkdocs.yml.j2", docs=self.docs, docs_dir=docs_dir, codes=sorted(CODES))


def write_markdown(docs: list[PolicyDoc], out_dir: str | Path, *,
                   site_name: str = DEFAULT_SITE_NAME) -> Path:
    """Write `out_dir/mkdocs.yml` and the Markdown tree under `out_dir/docs/`; return the config."""
    out = Path(out_dir)
    renderer = Renderer(docs, site_name=site_name)
    for relative, text in renderer.pages().items():
        target = out / "docs" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    config = out / "mkdocs.yml"
    config.write_text(renderer.mkdocs_config(), encoding="utf-8")
    return config
