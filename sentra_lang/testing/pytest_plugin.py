"""pytest plugin (entry point `pytest11`): collect `*.sentra-test` files as test items, with
the same failure report as `sentra-lang test`. Coverage is not gated here; use the CLI.

pytest loads this module in every run of an environment where sentra-lang is installed, so it
imports nothing of the compiler or the runner: they are imported when the first suite file is
collected.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _pytest._code.code import ReprFileLocation, TerminalRepr
from _pytest._io import TerminalWriter

from sentra_lang.testing import SUFFIX

if TYPE_CHECKING:
    from sentra_lang.testing.runner import Result, Runner, TestItem

PYTEST_MARKS = frozenset({"skip", "skipif", "xfail", "parametrize", "usefixtures",
                          "filterwarnings"})
"""pytest's own markers: a suite tag with one of these names is matched by `-k` but is not
applied as a marker, so that it cannot skip or parametrize a test behind the CLI's back."""

_RUNNER = pytest.StashKey["Runner"]()
_TAGS = pytest.StashKey[set[str]]()


class SuiteError(Exception):
    """A suite that does not check (or whose policy does not compile): a collection error."""

    def __init__(self, text: str, crash: ReprFileLocation) -> None:
        super().__init__(text)
        self.crash = crash


class SentraFailure(Exception):
    def __init__(self, result: Result) -> None:
        assert result.failure is not None
        super().__init__(result.failure.message)
        self.result = result


class FailureRepr(TerminalRepr):
    """The runner's failure report; `reprcrash` gives pytest's short summary and JUnit report
    the one-line message, instead of the whole report a second time."""

    def __init__(self, text: str, crash: ReprFileLocation) -> None:
        self.text = text
        self.reprcrash = crash

    def toterminal(self, tw: TerminalWriter) -> None:
        for line in self.text.splitlines():
            tw.line(line)


def _runner(config: pytest.Config) -> Runner:
    from sentra_lang.testing.runner import Runner

    if _RUNNER not in config.stash:
        config.stash[_RUNNER] = Runner()
    return config.stash[_RUNNER]


def _register_markers(config: pytest.Config, tags: set[str]) -> None:
    """Declare suite tags as markers, so that `--strict-markers` accepts them."""
    known = config.stash.setdefault(_TAGS, set())
    for tag in sorted(tags - known - PYTEST_MARKS):
        config.addinivalue_line("markers", f"{tag}: a sentra-lang suite tag")
    known |= tags


def _opened_path(path: Path) -> Path:
    """The suite's path relative to the working folder (pytest's nodeids are relative to the
    rootdir, which need not be where pytest runs); absolute when there is no relative one."""
    try:
        return Path(os.path.relpath(path))
    except ValueError:  # another drive
        return path


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.name.endswith(SUFFIX):
        return SentraSuiteFile.from_parent(parent, path=file_path)
    return None


class SentraSuiteFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        from sentra_lang import diagnostics as diags
        from sentra_lang.diagnostics import Severity, has_errors
        from sentra_lang.testing.runner import items_of, load_suite

        runner = _runner(self.config)
        loaded, found = load_suite(_opened_path(self.path), runner.cache)
        if has_errors(found) or not loaded.runnable:
            shown = [d for d in found if d.severity is not Severity.INFO]
            first = shown[0]
            crash = ReprFileLocation(first.span.path, first.span.line,
                                     f"{first.severity.value}[{first.code}]: {first.message}")
            raise SuiteError("\n\n".join(diags.render_human(d) for d in shown), crash)
        items = items_of(loaded)
        _register_markers(self.config, {tag for item in items for tag in item.tags})
        for item in items:
            yield SentraItem.from_parent(self, name=item.name, item=item)

    def repr_failure(self, excinfo: Any, style: Any = None) -> Any:
        if isinstance(excinfo.value, SuiteError):
            return FailureRepr(str(excinfo.value), excinfo.value.crash)
        return super().repr_failure(excinfo)


class SentraItem(pytest.Item):
    def __init__(self, *, item: TestItem, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.item = item
        for tag in item.tags:
            if tag in PYTEST_MARKS:
                self.extra_keyword_matches.add(tag)
            else:
                self.add_marker(tag)

    def runtest(self) -> None:
        result = _runner(self.config).run_item(self.item)
        if result.failure is not None:
            raise SentraFailure(result)

    def repr_failure(self, excinfo: Any, style: Any = None) -> Any:
        if isinstance(excinfo.value, SentraFailure):
            from sentra_lang.testing.reports import render_failure

            result = excinfo.value.result
            failure = result.failure
            assert failure is not None
            crash = ReprFileLocation(failure.span.path, failure.span.line, failure.message)
            return FailureRepr(render_failure(result, header=False), crash)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, self.item.line - 1, f"{self.item.kind}: {self.item.name}"
