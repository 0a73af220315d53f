"""Build a Markdown tree into a static site with mkdocs-material, strictly.

mkdocs is imported only here, so the other commands start without it.
The build runs in strict mode: any warning (a broken link or anchor, a page missing from the
nav) fails it, and the warnings are returned in the error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class DocsBuildError(Exception):
    """The site could not be built; the message lists mkdocs' warnings and errors."""


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _captured_mkdocs_log() -> Iterator[_Collect]:
    """Keep mkdocs' log out of the terminal; collect its warnings for the error message."""
    logger = logging.getLogger("mkdocs")
    handler = _Collect()
    saved = logger.propagate, logger.level
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate, logger.level = saved


def build_site(config_file: str | Path, site_dir: str | Path) -> Path:
    """Build the site described by `config_file` into `site_dir`; return `site_dir/index.html`."""
    try:
        from mkdocs.commands.build import build
        from mkdocs.config import load_config
        from mkdocs.exceptions import MkDocsException
    except ImportError as error:
        raise DocsBuildError("mkdocs-material is not installed: reinstall sentra-lang "
                             "(or use --markdown-only)") from error
    with _captured_mkdocs_log() as log:
        try:
            config = load_config(str(config_file), strict=True, site_dir=str(Path(site_dir).resolve()))
            build(config)
        except (MkDocsException, SystemExit) as error:
            details = "\n".join(f"  {message}" for message in log.messages) or f"  {error}"
            raise DocsBuildError(f"mkdocs build failed:\n{details}") from error
    return Path(site_dir) / "index.html"
