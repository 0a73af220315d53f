"""Build a Markdown tree into a static site with mkdocs-material, strictly.

mkdocs is imported only here, so the other commands start without it. mkdocs empties its
site_dir, so a build goes to a fresh folder next to the output, which replaces the output only
when that is absent, empty or an earlier build (marked by `.sentra-docs`): see `check_output`.
The build runs in strict mode: any warning (a broken link or anchor, a page missing from the
nav) fails it, and the warnings are returned in the error.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sentra_lang.files import real_path


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
        raise DocsBuildError("mkdocs-material is not installed: pip install "
                             "'sentra-lang[docs]' (or use --markdown-only)") from error
    with _captured_mkdocs_log() as log:
        try:
            config = load_config(str(config_file), strict=True, site_dir=str(real_path(site_dir)))
            build(config)
        except (MkDocsException, SystemExit) as error:
            details = "\n".join(f"  {message}" for message in log.messages) or f"  {error}"
            raise DocsBuildError(f"mkdocs build failed:\n{details}") from error
    return Path(site_dir) / "index.html"


# ------------------------------------------------------------------------------- the output

MARKER = ".sentra-docs"
"""Written into every folder `sentra-lang docs` builds: such a folder may be replaced."""
MARKER_TEXT = ("This folder was written by `sentra-lang docs`; the next build replaces all of "
               "it.\n")


class OutputRefused(Exception):
    """The output folder cannot (or may not) be replaced; the message says why."""


def check_output(target: str | Path, *, force: bool = False,
                 inputs: Iterable[str | Path] = ()) -> Path:
    """The resolved output folder, if a build may replace it: it is absent, empty, or holds the
    marker of a previous build; with `force`, any folder but the current one or one holding it.
    Never a file, nor a folder holding one of `inputs` (the policies being documented, the
    coverage report)."""
    path = real_path(target)
    if path.is_symlink():   # still a link once followed: a loop
        raise OutputRefused(f"cannot write {target}: it is a symbolic link that loops")
    if path.exists() and not path.is_dir():
        raise OutputRefused(f"{target} is a file, not a folder: give -o a folder for the site")
    above = next((parent for parent in path.parents if parent.exists()), None)
    if above is not None and not above.is_dir():
        raise OutputRefused(f"cannot write {target}: {above} is a file, not a folder")
    for given in inputs:
        if real_path(given).is_relative_to(path):
            raise OutputRefused(f"refusing to replace {target}: it holds {given}, an input of "
                                "this build; write the site to another folder")
    if not path.exists() or (path / MARKER).is_file() or not any(path.iterdir()):
        return path
    if not force:
        raise OutputRefused(f"refusing to replace {target}: the folder holds files that "
                            f"`sentra-lang docs` did not write (no {MARKER} marker); choose "
                            "an empty or new folder, or pass --force to delete its contents")
    if real_path(Path.cwd()).is_relative_to(path):
        raise OutputRefused(f"refusing to replace {target}, even with --force: it holds the "
                            "current folder; write the site to a folder of its own, such as "
                            "-o site")
    return path


@contextmanager
def staged_output(target: Path) -> Iterator[Path]:
    """A fresh folder next to `target` to build into; on success it replaces `target` (whose
    old contents are deleted) and carries the marker; on error `target` is left as it was."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.sentra-docs-new-", dir=target.parent))
    try:
        yield staging
        (staging / MARKER).write_text(MARKER_TEXT, encoding="utf-8")
        _replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _replace(staging: Path, target: Path) -> None:
    """Put the contents of `staging` in `target`. An absent target is one rename; an existing
    folder keeps its identity (a shell or server inside it goes on working): its entries are
    moved aside, the new ones moved in, and the old ones deleted, or moved back on failure."""
    if not target.exists():
        staging.rename(target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.sentra-docs-old-", dir=target.parent))
    moved_out: list[str] = []
    moved_in: list[str] = []
    try:
        for entry in sorted(p.name for p in target.iterdir()):
            os.rename(target / entry, old / entry)
            moved_out.append(entry)
        for entry in sorted(p.name for p in staging.iterdir()):
            os.rename(staging / entry, target / entry)
            moved_in.append(entry)
    except BaseException:
        for entry in moved_in:
            with suppress(OSError):
                os.rename(target / entry, staging / entry)
        for entry in moved_out:
            with suppress(OSError):
                os.rename(old / entry, target / entry)
        raise
    shutil.rmtree(old, ignore_errors=True)
