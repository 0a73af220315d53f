"""`sentra-lang docs`: exit codes, --markdown-only, --coverage, findings with witnesses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sentra_lang.cli import main

SHADOWED = """policy shop version "2" {}
input { amount: number }
action PAY {
  when amount > 10 block risk 5 as BIG "big {amount}"
  when amount > 100 block as HUGE "huge"
  allow as OK "ok"
}
action REFUND {
  when amount > 5 block as BIG_REFUND "no refunds over 5"
}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_markdown_only_writes_the_tree_and_config(tmp_path: Path) -> None:
    policy = write(tmp_path, "shop.sentra", SHADOWED)
    assert main(["docs", str(policy), "-o", str(tmp_path / "out"), "--markdown-only"]) == 0
    page = (tmp_path / "out" / "docs" / "policies" / "shop.md").read_text()
    assert "SL401" in page and "amount=101" in page  # the shadowed rule and its witness
    assert "no rule above matches" in page  # REFUND falls through to the fail-closed block
    assert "UNKNOWN_ACTION" in page
    assert (tmp_path / "out" / "mkdocs.yml").exists()
    assert not (tmp_path / "out" / "site").exists()


def test_policy_with_errors_exits_1_and_prints_them(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    policy = write(tmp_path, "bad.sentra", SHADOWED.replace("amount > 100", "amont > 100"))
    assert main(["docs", str(policy), "-o", str(tmp_path / "out")]) == 1
    assert "error[SL101]" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("report", [None, "{not json", '{"summary": {}}',
                                    '{"coverage": {"rules": {"OK": {"scenarios": "x"}}}}'])
def test_usage_errors_exit_2(tmp_path: Path, report: str | None) -> None:
    policy = write(tmp_path, "shop.sentra", SHADOWED)
    if report is None:
        args = ["docs", str(tmp_path / "missing.sentra"), "-o", str(tmp_path / "out")]
    else:
        args = ["docs", str(policy), "-o", str(tmp_path / "out"),
                "--coverage", str(write(tmp_path, "r.json", report))]
    assert main(args) == 2


def test_full_build_with_coverage(tmp_path: Path) -> None:
    policy = write(tmp_path, "shop.sentra", SHADOWED)
    report = {"coverage": {"rules": {"BIG": {"scenarios": ["big payment"]}}}}
    args = ["docs", str(policy), "-o", str(tmp_path / "site"),
            "--coverage", str(write(tmp_path, "r.json", json.dumps(report)))]
    assert main(args) == 0
    html = (tmp_path / "site" / "policies" / "shop.html").read_text()
    assert "big payment" in html
    assert html.count('class="sentra-uncovered"') == 3  # HUGE, OK and BIG_REFUND
