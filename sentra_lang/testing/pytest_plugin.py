"""pytest plugin (entry point `pytest11`): collect `*.sentra-test` files as test items, with
the same failure report as `sentra-lang test`. Coverage is not gated here; use the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sentra_lang import diagnostics as diags
from sentra_lang.diagnostics import Severity, has_errors
from sentra_lang.testing.runner import SUFFIX, Runner, TestItem, items_of, load_suite


class SuiteError(Exception):
    pass


class SentraFailure(Exception):
    def __init__(self, result: Any) -> None:
        super().__init__(result.failure.message)
        self.result = result


def _runner(config: pytest.Config) -> Runner:
    runner = getattr(config, "_sentra_runner", None)
    if runner is None:
        runner = Runner()
        config._sentra_runner = runner  # type: ignore[attr-defined]
    return runner


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.name.endswith(SUFFIX):
        return SentraSuiteFile.from_parent(parent, path=file_path)
    return None


class SentraSuiteFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        runner = _runner(self.config)
        try:
            shown = self.path.relative_to(self.config.rootpath)
        except ValueError:
            shown = self.path
        loaded, found = load_suite(Path(shown) if not shown.is_absolute() else shown,
                                   runner.cache)
        if has_errors(found) or not loaded.runnable:
            text = "\n\n".join(diags.render_human(d) for d in found
                               if d.severity is not Severity.INFO)
            raise SuiteError(text)
        for item in items_of(loaded):
            yield SentraItem.from_parent(self, name=item.name, item=item)

    def repr_failure(self, excinfo: Any, style: Any = None) -> Any:
        if isinstance(excinfo.value, SuiteError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class SentraItem(pytest.Item):
    def __init__(self, *, item: TestItem, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.item = item
        for tag in item.tags:
            self.add_marker(tag)

    def runtest(self) -> None:
        result = _runner(self.config).run_item(self.item)
        if result.failure is not None:
            raise SentraFailure(result)

    def repr_failure(self, excinfo: Any, style: Any = None) -> Any:
        if isinstance(excinfo.value, SentraFailure):
            from sentra_lang.testing.reports import render_failure

            return render_failure(excinfo.value.result)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, self.item.line - 1, f"{self.item.kind}: {self.item.name}"
