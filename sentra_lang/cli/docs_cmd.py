"""`sentra-lang docs PATH... -o SITE/`: the HTML reference of policies (mkdocs-material)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sentra_lang.cli import EXIT_FAILURE, EXIT_OK, UsageError, require_text
from sentra_lang.cli.color import add_color_option, use_color
from sentra_lang.cli.extras import require
from sentra_lang.cli.paths import add_root_option, expand, root_of

if TYPE_CHECKING:
    from sentra_lang.compiler import Compilation
    from sentra_lang.docgen import Coverage

if TYPE_CHECKING:
    from sentra_lang.docgen import Coverage

EXTRA_MISSING = "this command needs the `docs` extra: pip install 'sentra-lang[docs]'"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "docs", help="write the HTML reference of policies",
        description="Render policies (files, or folders searched for *.sentra) as a static "
        "mkdocs-material site that also works opened from disk. SITE is replaced as a whole, "
        "so it must be new, empty or an earlier output of this command (marked by a "
        ".sentra-docs file), unless --force. Exit 0 when the site was written, 1 when a policy "
        "has errors (they are printed) or the build fails, 2 on usage errors.")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="policy files or folders")
    parser.add_argument("-o", "--output", required=True, metavar="SITE",
                        help="folder to write the site (or, with --markdown-only, the sources)")
    parser.add_argument("--force", action="store_true",
                        help="replace SITE even when it holds files this command did not "
                        "write (they are deleted); without it such a folder is refused")
    parser.add_argument("--markdown-only", action="store_true",
                        help="write the Markdown tree and mkdocs.yml; do not build HTML")
    parser.add_argument("--coverage", metavar="REPORT.json",
                        help="a `sentra-lang test --json` report: show which scenarios cover "
                        "each rule and mark the rules none covers")
    parser.add_argument("--title", default="Policy reference", help="the site's name")
    add_color_option(parser)
    add_root_option(parser)
    parser.set_defaults(run=run)


def _compile(paths: list[str], root: Path | None) -> list[Compilation]:
    from sentra_lang.docgen.collect import compile_policies
    from sentra_lang.loader import FileUnreadable

    try:
        return compile_policies(expand(paths), root=root)
    except FileUnreadable as error:
        raise UsageError(str(error)) from error


def _coverage(path: str | None) -> Coverage | None:
    from sentra_lang.docgen import CoverageError, load_coverage

    if path is None:
        return None
    try:
        return load_coverage(path)
    except CoverageError as error:
        raise UsageError(str(error)) from error


def _output(args: argparse.Namespace) -> Path:
    from sentra_lang.docgen.build import OutputRefused, check_output

    inputs = [*args.paths, *([args.coverage] if args.coverage else [])]
    try:
        return check_output(args.output, force=args.force, inputs=inputs)
    except OutputRefused as error:
        raise UsageError(str(error)) from error
    except OSError as error:
        raise UsageError(f"cannot use {args.output} as the output folder: "
                         f"{error.strerror or error}") from error


def run(args: argparse.Namespace) -> int:
    require_text(args.title, "--title")
    require("docs", "jinja2", "pygments")  # the Markdown tree's templates and highlighting
    if not args.markdown_only:
        require("docs", "mkdocs", "material")
    from sentra_lang.diagnostics import render_human, render_summary
    from sentra_lang.docgen import DocsBuildError, build_site, policy_docs, write_markdown
    from sentra_lang.docgen.build import staged_output
    from sentra_lang.docgen.collect import errors_of

    output = _output(args)
    coverage = _coverage(args.coverage)
    compilations = _compile(args.paths, root_of(args))
    errors = errors_of(compilations)
    if errors:
        for diag in errors:
            print(render_human(diag, color=use_color(args.color, sys.stderr)), file=sys.stderr)
            print(file=sys.stderr)
        print(render_summary(errors, len(compilations)), file=sys.stderr)
        return EXIT_FAILURE
    docs = policy_docs(compilations, coverage)
    try:
        with staged_output(output) as staging:
            if args.markdown_only:
                write_markdown(docs, staging, site_name=args.title)
            else:
                with tempfile.TemporaryDirectory(prefix="sentra-docs-") as work:
                    config = write_markdown(docs, work, site_name=args.title)
                    build_site(config, staging)
    except DocsBuildError as error:
        print(f"sentra-lang docs: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as error:
        raise UsageError(f"cannot write {args.output}: {error.strerror or error}"
                         f"{f' ({error.filename})' if error.filename else ''}") from error
    policies = f"{len(docs)} {'policy' if len(docs) == 1 else 'policies'}"
    if args.markdown_only:
        print(f"wrote the reference of {policies} as Markdown: {Path(args.output) / 'mkdocs.yml'}")
    else:
        print(f"wrote the reference of {policies}: {Path(args.output) / 'index.html'}")
    return EXIT_OK
