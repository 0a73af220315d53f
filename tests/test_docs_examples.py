"""What the docs show is what the tools do: every shell session, program and excerpt of the
docs replayed through the real CLI and runtime.

Mechanical where the page allows it:

- **Sessions**: a `console` block is a shell session; each `$ sentra-lang ...` line runs (in
  process) in a fresh folder holding a copy of `policies/` and the files the page names ("Save
  this as `payments.sentra`:" before a `sentra` block), and must print exactly the lines under
  it and exit 0 (or the code an `exit N` line under it names).
- **Programs**: a `python` block that imports what it uses and names nothing else is a complete
  program; it runs in a folder holding `sentra.json` and `policy.json` (the Sentra-compatible
  policy, compiled), and what it prints must equal the `# ` comment lines right after its last
  `print`.
- **Excerpts**: the table excerpt of docs/table.md is part of the real compiled table; the
  report excerpt of docs/testing.md names the keys the real report has, and its numbers.
- **Command lines**: every option a page writes after `sentra-lang CMD` is one CMD takes;
  docs/testing.md's suite examples run and pass.

The rest (fragments of docs/runtime.md, the explanation, the failure report, the diff, the exit
codes, quoted messages and answers) are known-answer tests, one per documented claim. docs/integrations.md and docs/troubleshooting.md
are replayed by tests/sdk/test_docs_examples.py, the `sentra` blocks compiled by
tests/language/test_docs_examples.py and docs/diagnostics.md's examples by its generator's test.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sentra_lang.cli import build_parser, main
from sentra_lang.policy_file import load_policy_file

ROOT = Path(__file__).resolve().parent.parent
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md", ROOT / "runtime" / "README.md"]
REPLAYED_ELSEWHERE = {"integrations.md", "troubleshooting.md"}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
SAVED_AS = re.compile(r"Save this as `([\w.-]+)`:\s*$")
ELLIPSIS = "..."


def page_name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def fences(page: Path) -> list[tuple[str, str, str]]:
    """(language, text, the prose line before it) of every fenced block of a page."""
    text = page.read_text("utf-8")
    found = []
    for match in FENCE.finditer(text):
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        found.append((match.group(1), match.group(2), before))
    return found


def matches(expected: list[str], actual: list[str]) -> bool:
    """Lines equal, where an expected line `...` stands for any lines (none too) and a line
    ending in ` ...` for any line that starts with what is before it."""
    if not expected:
        return not actual
    head, rest = expected[0], expected[1:]
    if head.strip() == ELLIPSIS:
        return any(matches(rest, actual[skip:]) for skip in range(len(actual) + 1))
    if not actual:
        return False
    if head.endswith(" " + ELLIPSIS):
        fits = actual[0].startswith(head[:-len(ELLIPSIS)].rstrip())
    else:
        fits = head == actual[0]
    return fits and matches(rest, actual[1:])


def assert_lines(expected: str, actual: str) -> None:
    assert matches(expected.splitlines(), actual.splitlines()), (
        f"documented:\n{expected}\nprinted:\n{actual}")


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """One command in process: its exit code and what it printed (stdout, then stderr)."""
    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exit_:   # argparse's usage errors
        code = exit_.code if isinstance(exit_.code, int) else 2
    out, err = capsys.readouterr()
    return code, out + err


# ------------------------------------------------------------------------------- sessions

@dataclass
class Command:
    page: str
    line: str
    output: str
    exit_code: int
    files: dict[str, str]

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def saved_files(page: Path) -> dict[str, str]:
    return {name.group(1): text for language, text, before in fences(page)
            if language == "sentra" and (name := SAVED_AS.search(before))}


def parse_session(text: str) -> Iterator[tuple[str, str, int]]:
    """(command, output, exit code) of each `$ ` line of a session."""
    parts = re.split(r"^\$ (.*)\n", text, flags=re.M)
    assert parts[0] == "", f"a session starts with a `$ ` line: {text!r}"
    for command, output in zip(parts[1::2], parts[2::2], strict=True):
        code = re.search(r"^exit (\d+)\n\Z", output, re.M)
        yield command, output[:code.start()] if code else output, int(code.group(1)) if code else 0


def sessions() -> list[Command]:
    found = []
    for page in PAGES:
        if page.name in REPLAYED_ELSEWHERE:
            continue
        for language, text, _ in fences(page):
            if language == "console":
                found.extend(Command(page_name(page), command, output, code, saved_files(page))
                             for command, output, code in parse_session(text))
    return found


SESSIONS = sessions()
SLOW_COMMANDS = ("sentra-lang docs ",)   # mkdocs builds the site: about 2 s


def test_the_sessions_are_found() -> None:
    pages = {command.page for command in SESSIONS}
    assert {"docs/getting-started.md", "docs/language.md"} <= pages
    assert all(command.line.startswith("sentra-lang ") for command in SESSIONS)


@pytest.mark.parametrize("command", [
    pytest.param(command, marks=[pytest.mark.slow] if command.line.startswith(SLOW_COMMANDS)
                 else []) for command in SESSIONS], ids=lambda command: command.id)
def test_a_documented_command_prints_what_the_page_shows(
        command: Command, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    for name, text in command.files.items():
        (tmp_path / name).write_text(text, "utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    code, printed = run_cli(capsys, *shlex.split(command.line)[1:])
    assert code == command.exit_code, printed
    assert_lines(command.output, printed)


# ------------------------------------------------------------------------------- programs

@dataclass
class Program:
    page: str
    index: int
    code: str

    @property
    def id(self) -> str:
        return f"{self.page}#{self.index}"

    def expected_output(self) -> str | None:
        """The `# ` comment lines right after the program's last `print(...)` line."""
        lines = self.code.splitlines()
        printing = [number for number, line in enumerate(lines) if line.startswith("print(")]
        if not printing:
            return None
        shown = []
        for line in lines[printing[-1] + 1:]:
            if not line.startswith("# "):
                break
            shown.append(line[2:] + "\n")
        return "".join(shown) if shown else None


def unbound_names(code: str) -> set[str]:
    """The names a block reads that it neither imports, assigns nor defines (nor builtins)."""
    tree = ast.parse(code)
    bound = set(dir(builtins))
    read = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return read - bound


def programs() -> list[Program]:
    """The complete programs of the pages (blocks that need names from elsewhere are fragments,
    checked by the known-answer tests below)."""
    return [Program(page_name(page), index, text)
            for page in PAGES if page.name not in REPLAYED_ELSEWHERE
            for index, (language, text, _) in enumerate(fences(page))
            if language == "python" and not unbound_names(text)]


PROGRAMS = programs()


@pytest.fixture(scope="module")
def sentra_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the Sentra-compatible policy compiled, as `sentra.json` (README's quick
    start) and `policy.json` (docs/runtime.md's name for a compiled table)."""
    folder = tmp_path_factory.mktemp("programs")
    loaded = load_policy_file(ROOT / "policies" / "sentra.sentra")
    assert loaded.table is not None, loaded.problems
    for name in ("sentra.json", "policy.json"):
        (folder / name).write_text(json.dumps(loaded.table), "utf-8")
    return folder


def test_the_programs_are_found() -> None:
    assert {program.page for program in PROGRAMS} >= {"README.md", "runtime/README.md",
                                                      "docs/runtime.md"}
    assert any(program.expected_output() for program in PROGRAMS)


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda program: program.id)
def test_a_documented_program_runs_and_prints_what_the_page_shows(
        program: Program, sentra_folder: Path, tmp_path: Path) -> None:
    for name in ("sentra.json", "policy.json"):
        shutil.copy(sentra_folder / name, tmp_path / name)
    ran = subprocess.run([sys.executable, "-c", program.code], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    expected = program.expected_output()
    if expected is not None:
        assert ran.stdout == expected


# ----------------------------------------------------- docs/runtime.md: fragments and output

RUNTIME = ROOT / "docs" / "runtime.md"
SHOP = '''policy shop version "1" {
  risk_threshold 100
  strikes 3
}
group trusted {
  agents "ops-*"
  risk_threshold 200
}
input {
  amount: number = 0
}
action ISSUE_REFUND {
  when amount > 500 review risk 30 as REVIEW_LARGE "Refund of {amount} needs a human." expires 2h
  allow as X limit 5 per 1h "Refund allowed."
}
'''


def fragment(page: Path, first_line: str) -> str:
    (text,) = [text for language, text, _ in fences(page)
               if language == "python" and text.startswith(first_line)]
    return text


def replay(code: str, namespace: dict[str, Any]) -> dict[int, Any]:
    """Run a fragment statement by statement, as written; the value of each expression
    statement by its line in the fragment (1-based)."""
    values = {}
    for statement in ast.parse(code).body:
        if isinstance(statement, ast.Expr):
            values[statement.lineno] = eval(compile(ast.Expression(statement.value), "<docs>",
                                                    "eval"), namespace)
        else:
            exec(compile(ast.Module([statement], []), "<docs>", "exec"), namespace)
    return values


def compiled(source: str) -> dict[str, Any]:
    """The decision table of a policy text, as the runtime reads it."""
    from sentra_lang.compiler import compile_source

    compilation = compile_source(source, "policy.sentra")
    assert compilation.table is not None, compilation.diagnostics
    return compilation.table.model_dump(mode="json")


def shop_engine() -> Any:
    from sentra_runtime import Engine

    return Engine(compiled(SHOP))


def test_the_review_fragment_answers_as_its_comments_say() -> None:
    engine = shop_engine()
    other = engine.evaluate("agent-8", "ISSUE_REFUND", {"amount": 900}).ticket
    namespace = {"engine": engine, "other_ticket": other}
    values = replay(fragment(RUNTIME, 'decision = engine.evaluate("agent-7", "ISSUE_REFUND"'),
                    namespace)
    label, ticket = values[2]
    assert label == "Review Required" and re.fullmatch(r"rv_[\w-]{22}", ticket)
    assert [t.ticket for t in values[3]] == [other, ticket]          # oldest first
    assert values[4].status == "pending" and values[4].ticket == ticket
    assert values[5] == ("pending", None)
    assert values[6].label == "Allowed" and values[7].label == "Blocked"
    status, decision = engine.verdict(ticket)
    assert (status, decision.rule_id) == ("approved", "REVIEW_LARGE")


def test_the_reset_and_state_fragment_answers_as_its_comments_say() -> None:
    from sentra_runtime import AgentState

    engine = shop_engine()
    engine.evaluate("agent-8", "ISSUE_REFUND", {"amount": 1})
    code = fragment(RUNTIME, 'engine.reset("agent-7", operator="alice")')
    lines = code.splitlines()
    limits_line = next(n for n, line in enumerate(lines, 1) if line.startswith("engine.limits"))
    before = "\n".join(lines[:limits_line - 1])
    after = "\n".join([""] * (limits_line - 1) + lines[limits_line - 1:])
    values = replay(before, {"engine": engine})
    assert values[1] == ["agent-7"] and values[2] == ["agent-7", "agent-8"]
    assert values[2].seq > values[1].seq > 0
    assert values[3] == AgentState(0, 0, "active")
    for _ in range(2):
        assert engine.evaluate("agent-7", "ISSUE_REFUND", {"amount": 1}).rule_id == "X"
    values = replay(after, {"engine": engine})
    assert values[limits_line] == [{"limit": "5 per 1h", "for": "`X`", "count": 2}]
    assert values[limits_line + 2] == ("trusted", "trusted")
    assert values[limits_line + 3] == ["agent-7", "agent-8"]


def test_the_guard_fragment_evaluates_before_the_body(sentra_folder: Path) -> None:
    from sentra_runtime import ActionDenied, Engine

    code = fragment(RUNTIME, '@engine.guard("agent-7", "EXPORT_DATA"')
    engine = Engine(str(sentra_folder / "policy.json"))
    replay(code, {"engine": engine})       # allowed: the body (`...`) ran
    spent = Engine(str(sentra_folder / "policy.json"))
    for _ in range(2):                      # DELETE_RECORD adds 30: the agent is at 60/100
        spent.evaluate("agent-7", "DELETE_RECORD", {})
    with pytest.raises(ActionDenied) as denied:
        replay(code.replace('"internal"', '"sensitive"'), {"engine": spent})
    assert denied.value.decision.rule_id == "RISK_THRESHOLD_EXCEEDED"


def test_the_explanation_is_the_runtime_s(sentra_folder: Path) -> None:
    """docs/runtime.md, "Explanation": the Sentra policy, an agent at 40/100 exporting
    sensitive data outside; `explain --state 40,0` prints the same lines."""
    from sentra_runtime import Decider

    (shown,) = [text for language, text, before in fences(RUNTIME) if language == "text"
                and text.startswith("agent `agent`: action `EXPORT_DATA`")]
    fields = {"destination_type": "external", "data_classification": "sensitive"}
    decision, _ = Decider(str(sentra_folder / "policy.json")).decide(
        "EXPORT_DATA", fields, (40, 0, False), agent_id="agent")
    assert str(decision.explanation) + "\n" == shown


# ------------------------------------------------------------------ docs/cli.md: exit codes

CLI = ROOT / "docs" / "cli.md"
PAY = '''policy pay version "1" {
  risk_threshold 100
  strikes 3
}
input {
  amount: number
}
action PAY {
  when amount > 100 block risk 10 as LARGE "Too large."
  allow as SMALL "Small."
}
'''


def documented_exit_codes() -> set[int]:
    section = CLI.read_text("utf-8").split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    return {int(code) for code in re.findall(r"^\| (\d+) \|", section, re.M)}


def write(folder: Path, name: str, text: str) -> str:
    (folder / name).write_text(text, "utf-8")
    return name


def tampered_export(folder: Path) -> str:
    """An audit export with one decision record edited after it was sealed."""
    from sentra_runtime import Engine

    engine = Engine(compiled(PAY))
    engine.evaluate("a", "PAY", {"amount": 5})
    with (folder / "audit.jsonl").open("w", encoding="utf-8") as export:
        engine.export_audit(export)
    lines = (folder / "audit.jsonl").read_text("utf-8").splitlines(keepends=True)
    lines[1] = lines[1].replace('"amount":5', '"amount":6')
    (folder / "audit.jsonl").write_text("".join(lines), "utf-8")
    return "audit.jsonl"


def exit_cases(folder: Path) -> dict[int, list[tuple[list[str], str]]]:
    """Per documented code, commands that must exit with it and a text their output holds."""
    pay = write(folder, "pay.sentra", PAY)
    changed = write(folder, "changed.sentra", PAY.replace("amount > 100", "amount > 50"))
    broken = write(folder, "broken.sentra", PAY.replace("amount > 100", "amont > 100"))
    uneven = write(folder, "uneven.sentra", PAY.replace("  strikes 3", "strikes   3"))
    refunds = str(ROOT / "policies" / "refunds.sentra")
    suite = write(folder, "pay.sentra-test", 'suite "pay" for "pay.sentra"\nscenario "s" {\n'
                  '  agent "a" PAY { amount: 500 } -> allowed\n}\n')
    (folder / "empty").mkdir()
    return {
        0: [(["check", refunds], "1 warning"), (["diff", pay, pay], "")],
        1: [(["check", broken], "error[SL101]"), (["check", "--strict", refunds], "1 warning"),
            (["test", suite], "1 failed"), (["audit", "verify", tampered_export(folder)],
                                            "tampered at seq 2"),
            (["fmt", "--check", uneven], uneven),
            (["diff", "--fail-on-change", pay, changed], "changed region"),
            (["diff", "--equivalent", pay, changed], "not equivalent")],
        2: [(["check", "--no-such-option", pay], "unrecognized arguments: --no-such-option"),
            (["check", "missing.sentra"], "error: no such file or folder: missing.sentra"),
            (["docs", pay, "-o", "site", "--coverage", pay], "sentra-lang docs: error:"),
            (["diff", broken, pay], "error[SL101]")],
        5: [(["test", "empty"], "no tests ran")],
    }


def test_every_documented_exit_code_is_provoked_here() -> None:
    assert documented_exit_codes() == {0, 1, 2, 5, 130, 141}
    # 141 (a closed pipe) is tests/cli/test_cli_edges.py's; 130 is the test below


def test_each_documented_exit_code_is_what_the_cli_exits_with(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    for expected, cases in exit_cases(tmp_path).items():
        for arguments, shown in cases:
            code, printed = run_cli(capsys, *arguments)
            assert (code, shown in printed) == (expected, True), (arguments, printed)


def test_an_interrupted_command_exits_130_quietly(tmp_path: Path) -> None:
    """Ctrl-C while `fmt -` waits for its standard input: 130, and no traceback."""
    import signal

    process = subprocess.Popen([sys.executable, "-m", "sentra_lang", "fmt", "-"], cwd=tmp_path,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    wait_until_reading_stdin(process.pid)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert (process.returncode, out, "Traceback" in err) == (130, "", False)


def wait_until_reading_stdin(pid: int, timeout: float = 30.0) -> None:
    """Until the process waits in `read(0, ...)` (Linux's /proc/PID/syscall), so that a signal
    meets the command and not the interpreter's start or its imports (which a loaded machine
    can stretch past any fixed sleep; `read` is system call 0 on x86-64); elsewhere a second's
    sleep."""
    import platform
    import time

    syscall = Path(f"/proc/{pid}/syscall")
    if platform.machine() != "x86_64" or not syscall.exists():
        time.sleep(1.0)
        return
    deadline = time.monotonic() + timeout
    while not syscall.read_text().startswith("0 0x0 "):
        assert time.monotonic() < deadline, "the command never read its standard input"
        time.sleep(0.05)


# ---------------------------------------------------------------- excerpts of real outputs

def part_of(shown: Any, real: Any) -> bool:
    """Whether a documented excerpt is part of a real value: an object has the real object's
    keys and each value part of the real one, a list's items are part of real items in the
    same order (some may be left out), a string with `...` stands for any text there, and
    anything else is equal."""
    if isinstance(shown, dict):
        return isinstance(real, dict) and shown.keys() == real.keys() and all(
            part_of(value, real[key]) for key, value in shown.items())
    if isinstance(shown, list):
        if not isinstance(real, list):
            return False
        items = iter(real)
        return all(any(part_of(item, candidate) for candidate in items) for item in shown)
    if isinstance(shown, str) and ELLIPSIS in shown:
        pattern = ".*".join(re.escape(piece) for piece in shown.split(ELLIPSIS))
        return isinstance(real, str) and re.fullmatch(pattern, real, re.S) is not None
    return type(shown) is type(real) and bool(shown == real)


def test_part_of_is_strict_where_it_should_be() -> None:
    assert part_of({"a": [1, 3], "b": "x...z"}, {"a": [1, 2, 3], "b": "xyz"})
    assert not part_of({"a": [3, 1]}, {"a": [1, 3]})
    assert not part_of({"a": 1}, {"a": 1, "b": 2})
    assert not part_of({"a": 1}, {"a": 1.0}) and not part_of({"a": "x..."}, {"a": "y"})


def test_the_table_excerpt_is_part_of_the_compiled_sentra_table(sentra_folder: Path) -> None:
    """docs/table.md, "Shape": an excerpt of `policies/sentra.sentra` compiled."""
    (shown,) = [json.loads(text) for language, text, _ in fences(ROOT / "docs" / "table.md")
                if language == "json" and '"schema_version"' in text]
    real = json.loads((sentra_folder / "policy.json").read_text("utf-8"))
    assert part_of(shown, real), json.dumps(real, indent=1)[:4000]


TESTING = ROOT / "docs" / "testing.md"
FAILING_SUITE = '''suite "fail" for "pay.sentra"
scenario "wrong expectation" {
  agent "a" PAY { amount: 60 } -> allowed
  agent "a" PAY { amount: 60 } -> allowed rule RISKY_PAY cumulative 100
}
'''
RISKY_PAY = '''policy pay version "1" {
  risk_threshold 100
  strikes 2
}
input {
  amount: number
}
action PAY {
  when amount > 10 allow risk 60 as RISKY_PAY "Risky."
}
'''
BY_USER = ("rules",)           # objects keyed by rule ids, not by the report's own names
OPAQUE = ("decision", "diagnostics")   # documented as "Decision.to_dict()" and "as check's"


def report_excerpt() -> str:
    (shown,) = [text for language, text, _ in fences(TESTING)
                if language == "json" and '"schema_version"' in text]
    return shown


def report_keys(value: Any, into: set[str]) -> set[str]:
    """The names a report uses for its own keys (not rule ids, not opaque parts)."""
    if isinstance(value, dict):
        for key, item in value.items():
            into.add(key)
            if key in BY_USER and isinstance(item, dict):
                for rule in item.values():
                    report_keys(rule, into)
            elif key not in OPAQUE:
                report_keys(item, into)
    elif isinstance(value, list):
        for item in value:
            report_keys(item, into)
    return into


def json_report(capsys: pytest.CaptureFixture[str], *paths: str) -> dict[str, Any]:
    code, printed = run_cli(capsys, "test", *paths, "--json", "report.json")
    assert code in (0, 1), printed
    report: dict[str, Any] = json.loads(Path("report.json").read_text("utf-8"))
    return report


def test_the_report_excerpt_names_every_key_of_the_report_and_no_other(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "pay.sentra", RISKY_PAY)
    write(tmp_path, "fail.sentra-test", FAILING_SUITE)
    diagnostics = r'\{"code": "SL\d+", "\.\.\.": "as sentra-lang check --format json"\}'
    shown = set(re.findall(r'"(\w+)":', re.sub(diagnostics, "", report_excerpt()))) - {"RULE_ID"}
    real = report_keys(json_report(capsys, "policies", "fail.sentra-test"), set())
    assert (sorted(real - shown), sorted(shown - real)) == ([], [])


def test_the_report_excerpt_shows_the_numbers_of_the_sentra_suite(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    monkeypatch.chdir(tmp_path)
    report = json_report(capsys, "policies/sentra.sentra-test")
    real = {**report["summary"], **report["coverage"]["policies"][0]}
    shown: dict[str, Any] = {}
    for key, value in re.findall(r'"(\w+)": (\d+(?:\.\d+)?)[,\s}]', report_excerpt()):
        shown.setdefault(key, json.loads(value))     # the first: the summary's, the policy's
    numbers = {"collected", "selected", "deselected", "ran", "passed", "failed", "errors",
               "steps", "rules_total", "rules_covered", "rows_total", "rows_covered",
               "conditions_total", "conditions_covered"}
    assert numbers <= shown.keys()
    assert {key: shown[key] for key in numbers} == {key: real[key] for key in numbers}


def test_the_failure_report_is_the_runner_s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """docs/testing.md, "The runner": a step expecting `allowed` where the threshold blocks."""
    (shown,) = [text for language, text, _ in fences(TESTING) if text.startswith("FAILED ")]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    write(tmp_path, "pay.sentra", RISKY_PAY)
    write(tmp_path, "fail.sentra-test", FAILING_SUITE)
    code, printed = run_cli(capsys, "test", "fail.sentra-test")
    assert code == 1
    assert_lines(shown + ELLIPSIS + "\n", printed)     # the coverage and summary lines follow


# ---------------------------------------------------------------- messages the pages quote

def test_the_diagnostics_page_opens_with_what_check_prints(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """docs/diagnostics.md: `amont` on line 12, column 8 of `policy.sentra`."""
    (shown,) = [text for language, text, _ in fences(ROOT / "docs" / "diagnostics.md")
                if language == "text"]
    policy = ('policy p version "1" {}\ninput {\n  amount: number\n}\n' + "\n" * 6
              + "action A {\n  when amont > 3 allow as X\n  when amount > 3 allow as Y\n}\n"
              + "otherwise allow as OTHER\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    code, printed = run_cli(capsys, "check", write(tmp_path, "policy.sentra", policy))
    assert code == 1
    assert_lines(shown + "\n" + ELLIPSIS + "\n", printed)


def test_the_undeclared_field_reason_is_the_runtime_s() -> None:
    """docs/language.md, "Undeclared fields": the reason of a misspelt `context` key."""
    from sentra_runtime import Engine

    language = (ROOT / "docs" / "language.md").read_text("utf-8")
    section = language.split("### Undeclared fields", 1)[1]
    (shown,) = [text for name, text, _ in fences(ROOT / "docs" / "language.md")
                if name == "text" and text in section and "not declared" in text]
    engine = Engine(compiled('policy p version "1" {}\ninput {\n  context.account_flag: string?\n'
                             '}\nact' 'ion PAY {\n  when context.account_flag == "fraud" block as '
                             'FRAUD "Flagged."\n  allow as OK "Paid."\n}\n'))
    decision = engine.evaluate("a", "PAY", {"context": {"acount_flag": "fraud"}})
    assert (decision.label, decision.rule_id, decision.threat) == (
        "Blocked", "UNDECLARED_FIELD", "Invalid Input")
    assert decision.reason + "\n" == shown


# ------------------------------------------------------------------- docs/diff.md's session

PAY_BEFORE = '''policy pay version "1" {
  risk_threshold 100
  strikes 3
}

input {
  amount: number
  kind: string = "card"
}

action PAY {
  when amount > 100 allow risk 10 as MEDIUM "Medium payment."
  allow as SMALL "Small payment."
}

otherwise block as UNKNOWN "Unknown action."
'''
PAY_AFTER = PAY_BEFORE.replace('version "1"', 'version "2"').replace(
    "strikes 3", "strikes 2").replace(
    "action PAY {\n", 'action PAY {\n  when kind == "crypto" block as CRYPTO "No crypto payments."\n'
).replace("allow as SMALL", "allow risk 5 as SMALL").replace(
    "otherwise", 'action EXPORT {\n  block as NO_EXPORT "No exports."\n}\n\notherwise')


def test_the_diff_session_is_what_diff_prints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """docs/diff.md's first example, on a change worked out to match it: `main` holds version
    1 of `policies/pay.sentra`, the working copy version 2 (strikes 3 -> 2, a `CRYPTO` rule at
    line 12, `SMALL` now risk 5, an `EXPORT` block)."""
    if shutil.which("git") is None:
        pytest.skip("git is needed for a `main:` revision")
    (text,) = [text for language, text, _ in fences(ROOT / "docs" / "diff.md")
               if text.startswith("$ sentra-lang diff main:")]
    ((command, shown, exit_code),) = parse_session(text)
    (tmp_path / "policies").mkdir()
    write(tmp_path, "policies/pay.sentra", PAY_BEFORE)
    git = ["git", "-c", "user.name=docs", "-c", "user.email=docs@example.org"]
    for step in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "pay 1"]):
        subprocess.run([*git, *step], cwd=tmp_path, check=True, capture_output=True)
    write(tmp_path, "policies/pay.sentra", PAY_AFTER)
    assert PAY_AFTER.splitlines()[11].strip().startswith('when kind == "crypto"')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    code, printed = run_cli(capsys, *shlex.split(command)[1:])
    assert code == exit_code
    assert_lines(shown, printed)


# ------------------------------------------------------------- docs/server.md: an answer

@pytest.mark.slow
def test_a_damaged_ticket_is_answered_as_the_page_shows(tmp_path: Path) -> None:
    """docs/server.md, "A damaged review ticket": the exact 503 body, from a real server whose
    SQLite store had a ticket's body overwritten with a JSON array."""
    pytest.importorskip("fastapi")
    from tests.server.conftest import TOKEN, Server
    from tests.server.test_damaged_ticket import damaged
    from tests.server.test_review import POLICY

    (shown,) = [json.loads(text) for language, text, _ in fences(ROOT / "docs" / "server.md")
                if language == "json" and "review ticket cannot be read" in text]
    policy = tmp_path / "refunds.sentra"
    policy.write_text(POLICY, "utf-8")
    server = Server(policy, tmp_path / "sentra.db", TOKEN)
    try:
        ticket = damaged(server, "[]")
        answer = server.get(f"/v1/reviews/{ticket}", token=TOKEN)
        assert (answer.status, answer.json()) == (503, shown)
    finally:
        server.stop()


# --------------------------------------------------------- command lines the pages write

def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:   # argparse offers no public walk of subcommands
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


PARSER = build_parser()


def written_command_lines() -> list[tuple[str, str]]:
    """(page, text) of every `sentra-lang ...` the pages write: in code spans, and as lines of
    shell blocks and synopses (continuation lines joined)."""
    found = []
    for page in PAGES:
        text = page.read_text("utf-8")
        found += [(page_name(page), span) for span in re.findall(r"`(sentra-lang [^`]+)`", text)]
        for language, block, _ in fences(page):
            if language in ("sentra", "json", "python"):
                continue
            joined = re.sub(r"\\\n\s*|\n\s+(?=\[)", " ", block)
            found += [(page_name(page), line.removeprefix("$ ")) for line in joined.splitlines()
                      if line.startswith(("sentra-lang ", "$ sentra-lang "))]
    return found


def unknown_options(line: str) -> list[str]:
    """The options a command line names that its command does not take (none after `--`)."""
    words = line.split()
    commands = subcommands(PARSER)
    if words[1] not in commands:    # `--version`, an error line (`serve:`), a placeholder
        return [] if words[1] in ("--version", "COMMAND") or words[1].endswith(":") else [
            words[1]]
    parser = commands[words[1]]
    nested = subcommands(parser)
    if len(words) > 2 and words[2] in nested:
        parser = nested[words[2]]
    accepted = {option for action in parser._actions for option in action.option_strings}
    named = []
    for word in words[2:]:
        if word == "--":
            break
        named += re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", word)
    return [option for option in named if option not in accepted]


def test_the_command_lines_are_found() -> None:
    lines = [line for _, line in written_command_lines()]
    assert len(lines) > 60
    assert any(line.startswith("sentra-lang serve POLICY [--db") for line in lines)
    assert unknown_options("sentra-lang check --strictly p.sentra") == ["--strictly"]
    assert unknown_options("sentra-lang review approve T --operator a") == []
    assert unknown_options("sentra-lang mcp-proxy p -- npx -y server") == []


def test_every_option_a_page_writes_is_one_its_command_takes() -> None:
    wrong = [(page, line, unknown) for page, line in written_command_lines()
             if (unknown := unknown_options(line))]
    assert not wrong


def test_the_quick_start_commands_succeed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """README's and getting-started's first command, past its install: check every policy of
    `policies/` and compile the Sentra one (each exits 0, and the table is written)."""
    (first,) = {text.splitlines()[0] for page in (ROOT / "README.md",
                                                   ROOT / "docs" / "getting-started.md")
                for language, text, _ in fences(page)
                if language == "bash" and text.startswith("python3 -m pip install ./runtime .")}
    commands = [part.strip() for part in first.split("&&")][1:]
    assert [command.split()[:2] for command in commands] == [["sentra-lang", "check"],
                                                             ["sentra-lang", "compile"]]
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    monkeypatch.chdir(tmp_path)
    for command in commands:
        code, printed = run_cli(capsys, *shlex.split(command)[1:])
        assert code == 0, (command, printed)
    assert json.loads((tmp_path / "sentra.json").read_text("utf-8"))["policy"]["name"] == "sentra"


# ------------------------------------------------------------ docs/testing.md: its suites

def documented_suite() -> str:
    """docs/testing.md's suite examples as one suite for the Sentra policy (a block that is not
    a whole suite gets the suite line)."""
    blocks = [text for language, text, _ in fences(TESTING) if language == ""
              and text.split(maxsplit=1)[0] in ("suite", "scenario", "cases", "property")]
    assert blocks[0].startswith('suite "sentra reference walkthroughs" for "sentra.sentra"')
    return "".join([blocks[0], *blocks[1:]])


def test_the_documented_suites_pass_on_the_sentra_policy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(ROOT / "policies" / "sentra.sentra", tmp_path / "sentra.sentra")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    write(tmp_path, "docs.sentra-test", documented_suite())
    code, printed = run_cli(capsys, "test", "docs.sentra-test")
    assert code == 0, printed
    assert re.search(r"^6 passed, \d+ steps, properties: 3 proved", printed, re.M), printed
