"""The docs stand alone: they cite no document outside the repository, and what they state about
the built-in decisions holds when replayed through the runtime."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from sentra_runtime import Engine

from sentra_lang.compiler import compile_source

ROOT = Path(__file__).resolve().parent.parent
DESIGN = "DESIGN" + ".md"  # spelled apart, so that this file does not cite it either
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md", ROOT / "runtime" / "README.md"]


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode()
    suffixes = {".py", ".md", ".sentra", ".sentra-test", ".toml", ".yml", ".yaml", ".j2",
                ".html", ".js", ".css", ".lark", ""}
    return [ROOT / name for name in filter(None, listed.split("\0"))
            if Path(name).suffix in suffixes and (ROOT / name).is_file()]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_pages_cite_nothing_outside_the_repository(page: Path) -> None:
    text = page.read_text("utf-8")
    assert DESIGN not in text and not re.search(r"\bDESIGN \d", text)
    assert "/work/" not in text and "shared/" not in text


def test_no_file_cites_the_design_document() -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    citing = [path.relative_to(ROOT).as_posix() for path in tracked_text_files()
              if DESIGN in path.read_text("utf-8", errors="replace")]
    assert not citing, citing


POLICY = '''policy reasons version "1" {
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


def documented_reasons() -> dict[str, str]:
    """The table of built-in reasons in docs/runtime.md."""
    text = (ROOT / "docs" / "runtime.md").read_text("utf-8")
    rows = re.findall(r"^\| `([A-Z_]+)` \| `{1,2}(.+?)`{1,2} \|$", text, re.M)
    return dict(rows)


def fill(template: str, **values: object) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: str(values[m.group(1)]), template)


def test_the_documented_built_in_reasons_are_the_runtime_s() -> None:
    reasons = documented_reasons()
    assert set(reasons) == {"AGENT_ALREADY_SHUT_DOWN", "RISK_THRESHOLD_EXCEEDED",
                            "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS", "UNKNOWN_ACTION",
                            "NO_RULE_MATCHED", "ARITHMETIC_ERROR", "RATE_LIMIT_EXCEEDED"}
    compilation = compile_source(POLICY, "reasons.sentra")
    assert compilation.table is not None
    engine = Engine(compilation.table.model_dump(mode="json"))

    allowed = engine.evaluate("a", "PAY", {"amount": 11})
    assert (allowed.label, allowed.cumulative_risk) == ("Allowed", 60)
    over = engine.evaluate("a", "PAY", {"amount": 11})
    assert over.rule_id == "RISK_THRESHOLD_EXCEEDED"
    assert over.reason == fill(reasons[over.rule_id], projected=120, threshold=100)
    assert (over.applied_risk, over.cumulative_risk) == (0, 60)
    unmatched = engine.evaluate("b", "PAY", {"amount": 1})
    assert unmatched.rule_id == "NO_RULE_MATCHED"
    assert unmatched.reason == fill(reasons["NO_RULE_MATCHED"], action="PAY")
    unknown = engine.evaluate("c", "LAUNCH", {})
    assert unknown.rule_id == "UNKNOWN_ACTION"
    assert unknown.reason == fill(reasons["UNKNOWN_ACTION"], action="LAUNCH")

    second = engine.evaluate("a", "LAUNCH", {})
    assert second.rule_id == "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS"
    assert second.reason == fill(reasons[second.rule_id], **{"blocked attempts": 2,
                                                             "cumulative": 60, "threshold": 100})
    computed = Engine(compile_source(POLICY.replace("amount > 10", "amount / amount > 10"),
                                     "reasons.sentra").table.model_dump(mode="json"))  # type: ignore[union-attr]
    failed = computed.evaluate("d", "PAY", {"amount": 0})
    assert failed.rule_id == "ARITHMETIC_ERROR"
    assert failed.reason == fill(reasons[failed.rule_id], rule="RISKY_PAY",
                                 computation="amount / amount", failure="divides by zero")
    limited = Engine(compile_source(POLICY.replace('"Risky."', '"Risky." limit 1 per 90m'),
                                    "reasons.sentra").table.model_dump(mode="json"))  # type: ignore[union-attr]
    limited.evaluate("e", "PAY", {"amount": 11})
    over_limit = limited.evaluate("e", "PAY", {"amount": 11})
    assert over_limit.reason == fill(reasons["RATE_LIMIT_EXCEEDED"], count=1, duration="90m",
                                     target="`RISKY_PAY`")
    already = engine.evaluate("a", "PAY", {"amount": 1})
    assert already.rule_id == "AGENT_ALREADY_SHUT_DOWN"
    assert already.reason == reasons[already.rule_id]
    assert (already.attempted_risk, already.applied_risk) == (0, 0)
