"""The pytest plugin in real pytest runs of a small project: from a subfolder, with
`--strict-markers`, the failure report said once, and nothing of the compiler imported until a
suite is collected."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

pytest_plugins = ["pytester"]

POLICY = '''policy small version "1" {
  risk_threshold 100
  strikes 2
}
input {
  amount: number = 0
}
action PAY {
  when amount > 100 block risk 30 as BLOCK_BIG "Big payment."
  when amount > 50 allow risk 60 as RISKY_PAY "Risky payment of {amount}."
  allow as ALLOW_PAY "Payment allowed."
}
otherwise allow risk 10 as OTHER "Other."
'''

PASSING = '''suite "small" for "small.sentra"
scenario "two risky payments" tags [risk] {
  agent "a" PAY { amount: 60 } -> allowed rule RISKY_PAY cumulative 60
  agent "a" PAY { amount: 60 } -> blocked rule RISK_THRESHOLD_EXCEEDED strikes 1
}
scenario "a small payment" tags [skip, table] {
  agent "a" PAY { amount: 1 } -> allowed rule ALLOW_PAY
}
'''

FAILING = '''suite "small failing" for "small.sentra"
scenario "wrong expectation" tags [risk] {
  agent "a" PAY { amount: 60 } -> allowed rule RISKY_PAY cumulative 60
  agent "a" PAY { amount: 60 } -> allowed rule RISKY_PAY cumulative 100
}
'''

MESSAGE = ('step 2: expected decision "allowed", got "blocked"; expected rule "RISKY_PAY", got '
           '"RISK_THRESHOLD_EXCEEDED"; expected cumulative 100, got 60')


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project whose ini sits at its root, with the suites in `suites/` next to `sub/`."""
    pytester.makeini("[pytest]\naddopts = --strict-markers -p no:cacheprovider\n")
    suites = pytester.mkdir("suites")
    (suites / "small.sentra").write_text(POLICY, encoding="utf-8")
    (suites / "good.sentra-test").write_text(PASSING, encoding="utf-8")
    (suites / "bad.sentra-test").write_text(FAILING, encoding="utf-8")
    pytester.mkdir("sub")
    return pytester


def test_runs_from_the_rootdir(project: pytest.Pytester) -> None:
    result = project.runpytest()
    result.assert_outcomes(passed=2, failed=1)


@pytest.mark.parametrize("args", [[".."], ["../suites"], ["../suites/bad.sentra-test"]])
def test_runs_from_a_subfolder(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                               args: list[str]) -> None:
    """The rootdir (where the ini is) is not the working folder: suites and their policies are
    still found, and the report points at the file from where pytest runs."""
    monkeypatch.chdir(project.path / "sub")
    result = project.runpytest(*args)
    assert "rootdir: " + str(project.path) in result.stdout.str()
    result.assert_outcomes(passed=0 if "bad" in args[0] else 2, failed=1)
    result.stdout.fnmatch_lines(["*--> ../suites/bad.sentra-test:4:3"])


@pytest.mark.slow
def test_runs_in_worker_processes(project: pytest.Pytester) -> None:
    """pytest-xdist (`-n 2`): every worker collects the same items, tags included, and the
    outcomes are those of one process."""
    result = project.runpytest_subprocess("-n", "2", "-m", "risk or table")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*--> suites/bad.sentra-test:4:3"])


def test_tags_are_markers_under_strict_markers(project: pytest.Pytester) -> None:
    result = project.runpytest("-m", "risk")
    result.assert_outcomes(passed=1, failed=1, deselected=1)
    assert project.runpytest("-m", "table and not risk").ret == 0


def test_a_tag_named_like_a_pytest_marker_does_not_skip(project: pytest.Pytester) -> None:
    """`skip` is a suite tag like any other: the CLI runs the test, so pytest does too."""
    result = project.runpytest("-k", "skip", "-v")
    result.assert_outcomes(passed=1, deselected=2)
    result.stdout.fnmatch_lines(["*a small payment PASSED*"])


def test_the_failure_is_reported_once(project: pytest.Pytester,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """On CI pytest appends the crash message to the summary line: it is the one-line message,
    not the whole report again."""
    monkeypatch.setenv("CI", "true")
    result = project.runpytest()
    text = result.stdout.str()
    assert text.count("expected cumulative: 100") == 1
    assert text.count("--> suites/bad.sentra-test:4:3") == 1
    assert text.count(MESSAGE) == 2  # the report's first line and the summary line
    result.stdout.fnmatch_lines([f"FAILED suites/bad.sentra-test::wrong expectation - {MESSAGE}"])
    assert "FAILED suites/bad.sentra-test::wrong expectation - FAILED" not in text


def test_junit_message_is_the_one_line_message(project: pytest.Pytester) -> None:
    project.runpytest("--junitxml=report.xml")
    tree = ET.parse(project.path / "report.xml")
    [failure] = tree.iter("failure")
    assert failure.get("message") == MESSAGE
    assert "expected cumulative: 100" in (failure.text or "")


def test_a_broken_suite_is_a_collection_error(project: pytest.Pytester,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")  # the summary line carries the crash message in full
    (project.path / "suites" / "broken.sentra-test").write_text(
        'suite "b" for "small.sentra"\nscenario "x" {\n  agent "a" PAY { amont: 1 } -> allowed\n}\n',
        encoding="utf-8")
    result = project.runpytest("suites/broken.sentra-test", "-rE")
    result.assert_outcomes(errors=1)
    text = result.stdout.str()
    assert "suites/broken.sentra-test:3:19: error[SL502]: field `amont` is not declared" in text
    result.stdout.fnmatch_lines(["ERROR suites/broken.sentra-test - error?SL502?: field `amont`*"])
    assert text.count("did you mean `amount`?") == 1


def modules_added_by(statement: str, after: str) -> list[str]:
    code = (f"import json, sys\n{after}\nbefore = set(sys.modules)\n{statement}\n"
            "print(json.dumps(sorted(set(sys.modules) - before)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    added: list[str] = json.loads(done.stdout)
    return added


HEAVY = ("lark", "pydantic", "hypothesis", "sentra_runtime", "sentra_lang.compiler",
         "sentra_lang.testing.runner", "sentra_lang.testing.reports", "sentra_lang.diagnostics")


def test_loading_the_plugin_imports_no_compiler() -> None:
    """pytest loads the plugin in every run: on top of the `sentra_lang` package it imports
    nothing of the compiler, the runner or the runtime (they come with the first suite)."""
    added = modules_added_by("import sentra_lang.testing.pytest_plugin",
                             after="import pytest, sentra_lang")
    assert "sentra_lang.testing.pytest_plugin" in added
    heavy = [name for name in added if name.split(".")[0] in HEAVY or name in HEAVY]
    assert not heavy, heavy


@pytest.mark.slow
def test_a_pytest_run_without_suites_never_imports_the_runner(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain='''
import sys

def test_runner_not_loaded():
    assert "sentra_lang.testing.pytest_plugin" in sys.modules
    assert "sentra_lang.testing.runner" not in sys.modules
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
