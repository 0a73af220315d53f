"""The command line at its edges, in real processes: a reader that stops early (`| head`),
oversized input to `fmt`, hidden notes, and typed values in `explain` JSON (missing extras are
tested with packaging, tests/test_packaging.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sentra_lang.cli import EXIT_BROKEN_PIPE, main

ROOT = Path(__file__).resolve().parents[2]
SENTRA = str(ROOT / "policies" / "sentra.sentra")
SUITE = str(ROOT / "policies" / "sentra.sentra-test")
CLI = [sys.executable, "-m", "sentra_lang"]


def audit_log(folder: Path) -> str:
    """A real SQLite store with a few decisions (for `audit` and `replay`)."""
    from sentra_runtime import Engine
    from sentra_runtime.stores.sqlite import SQLiteStore

    from sentra_lang.policy_file import load_policy_file

    path = folder / "audit.db"
    store = SQLiteStore(path)
    engine = Engine(load_policy_file(SENTRA).policy, store)
    for index in range(30):
        engine.evaluate(f"agent-{index % 3}", "EXPORT_DATA", {"destination_type": "external"})
    store.close()
    return str(path)


def stdout_commands(folder: Path) -> dict[str, list[str]]:
    log = audit_log(folder)
    return {
        "help": ["--help"],
        "version": ["--version"],
        "check": ["check", "--notes", SENTRA],
        "check json": ["check", "--format", "json", SENTRA],
        "compile": ["compile", SENTRA],
        "fmt stdin": ["fmt", "-"],
        "explain": ["explain", SENTRA, "EXPORT_DATA", "-f", "destination_type=external"],
        "explain json": ["explain", SENTRA, "EXPORT_DATA", "--format", "json"],
        "test": ["test", "-v", SUITE],
        "audit verify": ["audit", "verify", log],
        "audit export": ["audit", "export", log],
        "replay": ["replay", log, "--policy", SENTRA],
        "docs": ["docs", SENTRA, "-o", str(folder / "site"), "--markdown-only", "--force"],
    }


def test_every_command_ends_quietly_when_its_reader_has_gone(tmp_path: Path) -> None:
    """`sentra-lang explain ... | head` raised BrokenPipeError; now no command does."""
    policy_text = Path(SENTRA).read_bytes()
    for name, args in stdout_commands(tmp_path).items():
        process = subprocess.Popen([*CLI, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        assert process.stdout is not None and process.stdin is not None
        process.stdout.close()  # the reader is gone before the first byte is written
        _, err = process.communicate(policy_text if name == "fmt stdin" else b"", timeout=120)
        message = err.decode()
        assert "Traceback" not in message and "BrokenPipe" not in message, (name, message)
        assert process.returncode in (EXIT_BROKEN_PIPE, 0, 1), (name, process.returncode)


def test_a_closed_pipe_is_exit_141() -> None:
    process = subprocess.Popen([*CLI, "compile", SENTRA], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert process.stdout is not None
    process.stdout.close()
    _, err = process.communicate(timeout=120)
    assert process.returncode == EXIT_BROKEN_PIPE and err == b""


# -------------------------------------------------------------------------- fmt and limits

def test_fmt_refuses_a_file_over_8_mib_quickly(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A 9.5 MiB file took 15 s and 2.5 GB; it is refused before parsing."""
    big = tmp_path / "big.sentra"
    line = b'let S = {"a", "b"}\n'
    big.write_bytes(line * (int(9.5 * 1024 * 1024) // len(line) + 1))
    before = big.read_bytes()
    start = time.perf_counter()
    for args in (["fmt", str(big)], ["fmt", "--check", str(big)], ["fmt", "--diff", str(big)]):
        assert main(args) == 1
        assert "error[SL006]: file is 9.5 MiB, over the 8 MiB limit" in capsys.readouterr().err
    assert time.perf_counter() - start < 10
    assert big.read_bytes() == before


def test_fmt_refuses_9_mib_on_stdin() -> None:
    done = subprocess.run([*CLI, "fmt", "-"], input=b"#" * (9 * 1024 * 1024), capture_output=True,
                          timeout=120)
    assert done.returncode == 1 and b"error[SL006]" in done.stderr and done.stdout == b""


def test_fmt_drops_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.sentra"
    path.write_bytes(b"\xef\xbb\xbf" + Path(SENTRA).read_bytes())
    assert main(["fmt", str(path)]) == 0
    assert path.read_bytes() == Path(SENTRA).read_bytes()


# ------------------------------------------------------------------------------- notes

NOTES = ('policy p version "1" {}\ninput {\n  amount: number\n  vip: bool\n}\n'
         'action A {\n  when amount > 10 block as BIG\n  when vip allow risk 5 as VIP\n'
         '  allow as OK\n}\notherwise allow as O\n')


def test_check_says_how_to_see_hidden_notes(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.sentra"
    path.write_text(NOTES, encoding="utf-8")
    assert main(["check", str(path)]) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary == "1 file checked: 0 errors, 0 warnings, 1 note (add --notes to see it)"
    assert main(["check", "--notes", str(path)]) == 0
    out = capsys.readouterr().out
    assert "note[SL404]" in out and out.strip().endswith("0 warnings, 1 note")


def test_no_hint_without_notes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.sentra"
    path.write_text(NOTES, encoding="utf-8")
    assert main(["check", "--no-analysis", str(path)]) == 0
    assert "--notes" not in capsys.readouterr().out


# -------------------------------------------------------------------------- explain JSON

def explain_json(capsys: pytest.CaptureFixture[str], action: str, *fields: str) -> dict:
    args = [arg for field in fields for arg in ("-f", field)]
    assert main(["explain", SENTRA, action, "--format", "json", *args]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_explain_json_keeps_the_types_of_actual_values(capsys: pytest.CaptureFixture[str]) -> None:
    """`"actual": "20"` was a string; a test's actual value keeps its JSON type."""
    data = explain_json(capsys, "APPROVE_TRANSACTION", "amount=20",
                        "context.max_approval_amount=10",
                        "context.approval_requires_verified_eligibility=false")
    trials = data["explanation"]["trials"]
    # rows 0 and 1 (RISKY_UNAUTHORIZED_TRANSACTION) test the bool flag; row 2 matches
    assert [t["actual"] for t in trials] == [False, False, None]
    assert [t["matched"] for t in trials] == [False, False, True]
    verified = ("context.approval_requires_verified_eligibility=true",
                "context.eligibility_verified=true", "context.required_documents_present=true")
    data = explain_json(capsys, "APPROVE_TRANSACTION", "amount=20", *verified)
    actual = {t["failed_test"]: t["actual"] for t in data["explanation"]["trials"]
              if not t["matched"]}
    assert actual == {"not (context.eligibility_verified == true)": True,
                      "not (context.required_documents_present == true)": True,
                      "amount > context.max_approval_amount": 20}
    data = explain_json(capsys, "APPROVE_TRANSACTION", "context.max_approval_amount=10", *verified)
    [missing] = [t["actual"] for t in data["explanation"]["trials"]
                 if t["failed_test"] == "amount > context.max_approval_amount"]
    assert missing is None  # a missing field is null, not the text "none"
    data = explain_json(capsys, "EXPORT_DATA", "destination_type=internal")
    [first, *_] = data["explanation"]["trials"]
    assert first["actual"] == "internal"


def test_explain_json_numbers_stay_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    data = explain_json(capsys, "APPROVE_TRANSACTION", "amount=20.5",
                        "context.max_approval_amount=100")
    actual = [t["actual"] for t in data["explanation"]["trials"] if not t["matched"]]
    assert actual == [False, False, 20.5]


def test_the_human_explanation_is_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", SENTRA, "APPROVE_TRANSACTION", "-f", "amount=20"]) == 0
    assert "is false, got false" in capsys.readouterr().out


def test_cli_modules_import_nothing_heavy_at_start_up() -> None:
    code = ("import sys; from sentra_lang.cli import build_parser; build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'lark', 'pydantic', 'sentra_runtime', 'hypothesis', 'fastapi', 'mkdocs', 'jinja2'}"
            " or m in {'sentra_lang.compiler', 'sentra_lang.parser'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.mark.parametrize("value", ["9" * 5000, "[" * 100_000, '{"a": ' * 50_000])
def test_a_field_value_json_cannot_read_is_a_string(value: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", SENTRA, "APPROVE_TRANSACTION", "-f", f"amount={value}"]) == 0
    assert "INVALID_INPUT" in capsys.readouterr().out  # a string where a number is declared


def test_explain_after_decays_the_seeded_risk(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """docs/cli.md, `explain --after`: the --state risk was raised that long before."""
    policy = tmp_path / "d.sentra"
    policy.write_text('policy d version "1" {\n  risk_decay 10 per 1h\n}\n'
                      'action EXPORT {\n  allow risk 60 as EXPORT_OK "Export allowed."\n}\n'
                      'otherwise block as UNKNOWN "Not covered."\n', encoding="utf-8")
    assert main(["explain", str(policy), "EXPORT", "--state", "60,0", "--after", "2h",
                 "--format", "json"]) == 0
    decision = json.loads(capsys.readouterr().out)
    assert (decision["label"], decision["cumulative_risk"], decision["decayed"]) == (
        "Allowed", 100, 20)
    assert main(["explain", str(policy), "EXPORT", "--state", "60,0"]) == 0
    assert "Blocked (RISK_THRESHOLD_EXCEEDED)" in capsys.readouterr().out
    assert main(["explain", str(policy), "EXPORT", "--state", "60,0", "--after", "2hr"]) == 2
    assert "--after: unknown duration unit `hr` in `2hr` (did you mean `2h`?)" in \
        capsys.readouterr().err
