"""The pre-commit hooks (`.pre-commit-hooks.yaml`), run the way pre-commit runs them: the
entry, split like a shell would, with the staged file names appended."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MESSY = 'policy p version "1" {}\notherwise   allow as O\n'
CANONICAL = 'policy p version "1" {}\n\notherwise allow as O\n'


def hooks() -> dict[str, dict[str, object]]:
    manifest = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text("utf-8"))
    return {hook["id"]: hook for hook in manifest}


def run_hook(hook_id: str, *files: Path) -> subprocess.CompletedProcess[str]:
    entry = shlex.split(str(hooks()[hook_id]["entry"]))
    assert entry[0] == "sentra-lang"
    command = [sys.executable, "-m", "sentra_lang", *entry[1:], *map(str, files)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_the_hooks_are_declared() -> None:
    assert list(hooks()) == ["sentra-check", "sentra-fmt", "sentra-fmt-fix", "sentra-test"]
    for hook in hooks().values():
        assert hook["language"] == "python" and hook["description"]
        # sentra-lang pins its runtime, which no package index holds: pre-commit builds each
        # hook's environment from this repository, so each must install ./runtime beside it
        assert hook.get("additional_dependencies") == ["./runtime"], hook["id"]


@pytest.mark.parametrize("hook_id", ["sentra-check", "sentra-test"])
def test_descriptions_say_when_output_is_shown(hook_id: str) -> None:
    description = str(hooks()[hook_id]["description"])
    assert "only when" in description and "verbose: true" in description


def test_the_checking_hook_fails_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "p.sentra"
    path.write_text(MESSY, encoding="utf-8")
    done = run_hook("sentra-fmt", path)
    assert done.returncode == 1 and f"would reformat {path}" in done.stdout
    assert path.read_text("utf-8") == MESSY


def test_the_rewriting_hook_rewrites(tmp_path: Path) -> None:
    path = tmp_path / "p.sentra"
    path.write_text(MESSY, encoding="utf-8")
    done = run_hook("sentra-fmt-fix", path)
    assert done.returncode == 0 and path.read_text("utf-8") == CANONICAL
    assert run_hook("sentra-fmt", path).returncode == 0


def test_the_rewriting_hook_leaves_a_broken_file_and_fails(tmp_path: Path) -> None:
    path = tmp_path / "p.sentra"
    path.write_text("policy p {\n", encoding="utf-8")
    done = run_hook("sentra-fmt-fix", path)
    assert done.returncode == 1 and path.read_text("utf-8") == "policy p {\n"
    assert "error[SL010]" in done.stderr


def test_the_check_hook_passes_with_warnings(tmp_path: Path) -> None:
    path = tmp_path / "p.sentra"
    path.write_text('policy p version "1" {}\naction A {\n  allow "no id"\n}\n'
                    "otherwise allow as O\n", encoding="utf-8")
    done = run_hook("sentra-check", path)
    assert done.returncode == 0 and "warning[SL109]" in done.stdout
