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


# -- the output folder: never a user's files (mkdocs empties its site_dir)

def test_refuses_a_folder_it_did_not_write(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    policy = write(tmp_path, "shop.sentra", SHADOWED)
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "notes.txt").write_text("x")
    for extra in ([], ["--markdown-only"]):
        assert main(["docs", str(policy), "-o", str(keep), *extra]) == 2
        err = capsys.readouterr().err
        assert f"refusing to replace {keep}" in err and "--force" in err
        assert [p.name for p in keep.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep", "shop.sentra"]  # no leftovers


def test_builds_replace_their_own_output_and_force_replaces_any(tmp_path: Path) -> None:
    policy = write(tmp_path, "shop.sentra", SHADOWED)
    site = tmp_path / "site"
    assert main(["docs", str(policy), "-o", str(site)]) == 0
    assert (site / ".sentra-docs").is_file() and (site / "index.html").is_file()
    (site / "stale.html").write_text("from an older build")
    assert main(["docs", str(policy), "-o", str(site), "--markdown-only"]) == 0
    assert sorted(p.name for p in site.iterdir()) == [".sentra-docs", "docs", "mkdocs.yml"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["docs", str(policy), "-o", str(empty), "--markdown-only"]) == 0
    assert (empty / ".sentra-docs").is_file()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    assert main(["docs", str(policy), "-o", str(other), "--markdown-only", "--force"]) == 0
    assert sorted(p.name for p in other.iterdir()) == [".sentra-docs", "docs", "mkdocs.yml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "empty", "other", "shop.sentra", "site"]  # no temporary folders left behind


def test_never_replaces_the_inputs_or_the_current_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    policy = write(repo, "shop.sentra", SHADOWED)
    assert main(["docs", str(policy), "-o", str(repo), "--force"]) == 2  # holds the policy
    monkeypatch.chdir(repo)
    (repo / "sub").mkdir()
    (repo / "sub" / "notes.txt").write_text("x")
    monkeypatch.chdir(repo / "sub")
    assert main(["docs", str(policy), "-o", ".", "--markdown-only"]) == 2
    assert main(["docs", str(policy), "-o", ".", "--markdown-only", "--force"]) == 2
    assert main(["docs", str(policy), "-o", str(repo / "sub"), "--markdown-only",
                 "--force"]) == 2
    assert (repo / "sub" / "notes.txt").read_text() == "x" and policy.is_file()


def test_a_failed_build_leaves_the_output_as_it_was(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import sentra_lang.docgen
    from sentra_lang.docgen import DocsBuildError

    def failing(config: object, site_dir: Path) -> Path:
        (Path(site_dir) / "half.html").write_text("half")
        raise DocsBuildError("mkdocs build failed:\n  broken")

    policy = write(tmp_path, "shop.sentra", SHADOWED)
    site = tmp_path / "site"
    assert main(["docs", str(policy), "-o", str(site), "--markdown-only"]) == 0
    before = sorted(p.name for p in site.iterdir())
    monkeypatch.setattr(sentra_lang.docgen, "build_site", failing)  # docs_cmd imports it on use
    assert main(["docs", str(policy), "-o", str(site)]) == 1
    assert sorted(p.name for p in site.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shop.sentra", "site"]


@pytest.mark.parametrize("output", ["a_file", "a_file/site"])
def test_output_that_is_a_file_is_a_usage_error(tmp_path: Path, output: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    policy = write(tmp_path, "shop.sentra", SHADOWED)
    write(tmp_path, "a_file", "mine")
    for extra in ([], ["--markdown-only"], ["--force"]):
        assert main(["docs", str(policy), "-o", str(tmp_path / output), *extra]) == 2
        assert "is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "a_file").read_text() == "mine"


def test_the_policy_reference_shows_risk_decay(tmp_path: Path) -> None:
    """A policy with `risk_decay` has a settings row saying it (markdown, before mkdocs)."""
    from sentra_lang.docgen import policy_docs, write_markdown
    from sentra_lang.docgen.collect import compile_policies

    source = tmp_path / "d.sentra"
    source.write_text('policy decaying version "1" {\n  risk_decay 15 per 90m\n}\n'
                      'otherwise allow risk 10 as OTHER "Other."\n', encoding="utf-8")
    write_markdown(policy_docs(compile_policies([source]), None), tmp_path / "md")
    page = (tmp_path / "md" / "docs" / "policies" / "decaying.md").read_text(encoding="utf-8")
    assert ("<tr><th>risk decay</th><td><code>15 per 90m</code> (cumulative risk goes down by "
            "15 for every whole 90m") in page


def test_the_policy_reference_shows_groups_in_order(tmp_path: Path) -> None:
    """A policy with groups has a Groups table: patterns and the settings each group gives."""
    from sentra_lang.docgen import policy_docs, write_markdown
    from sentra_lang.docgen.collect import compile_policies

    source = tmp_path / "g.sentra"
    source.write_text('policy grouped version "1" {}\n'
                      'group trusted {\n  agents "ops-7", "senior-*"\n  risk_threshold 200\n'
                      '  risk_decay 5 per 1h\n}\ngroup new {\n  agents "new-*"\n  strikes 1\n}\n'
                      'otherwise allow risk 10 as OTHER "Other."\n', encoding="utf-8")
    write_markdown(policy_docs(compile_policies([source]), None), tmp_path / "md")
    page = (tmp_path / "md" / "docs" / "policies" / "grouped.md").read_text(encoding="utf-8")
    assert "## Groups" in page
    assert ('<tr id="group-trusted"><td><code>trusted</code></td><td><code>ops-7</code>, '
            '<code>senior-*</code></td><td>200</td><td></td><td><code>5 per 1h</code></td></tr>'
            ) in page
    assert '<tr id="group-new"><td><code>new</code></td><td><code>new-*</code></td><td></td>' \
           '<td>1</td><td></td></tr>' in page
    assert page.index("group-trusted") < page.index("group-new")
    plain = tmp_path / "p.sentra"
    plain.write_text('policy plain version "1" {}\notherwise allow as OTHER\n', encoding="utf-8")
    write_markdown(policy_docs(compile_policies([plain]), None), tmp_path / "md2")
    assert "## Groups" not in (tmp_path / "md2" / "docs" / "policies" / "plain.md").read_text()


def test_the_policy_reference_shows_every_rate_limit(tmp_path: Path) -> None:
    """A policy with limits has a Rate limits table: the rules', the blocks', the groups'."""
    from sentra_lang.docgen import policy_docs, write_markdown
    from sentra_lang.docgen.collect import compile_policies

    source = tmp_path / "l.sentra"
    source.write_text('policy limited version "1" {}\n'
                      'group trusted {\n  agents "ops-*"\n  limit 100 per 1h\n'
                      '  limit PAY 20 per 1d\n}\n'
                      'action PAY, REFUND {\n  limit 10 per 1d\n  allow as PAY_OK limit 5 per 90m\n}\n'
                      'otherwise allow risk 10 as OTHER "Other."\n', encoding="utf-8")
    write_markdown(policy_docs(compile_policies([source]), None), tmp_path / "md")
    page = (tmp_path / "md" / "docs" / "policies" / "limited.md").read_text(encoding="utf-8")
    rows = ['<tr><td>the allowed decisions of rule <a href="#rule-PAY_OK"><code>PAY_OK</code></a>'
            '</td><td>5</td><td><code>90m</code></td></tr>',
            '<tr><td>the allowed decisions of <code>PAY</code>, <code>REFUND</code>, together</td>'
            '<td>10</td><td><code>1d</code></td></tr>',
            '<tr><td>for each agent of group <a href="#group-trusted"><code>trusted</code></a>: all '
            'its allowed decisions</td><td>100</td><td><code>1h</code></td></tr>',
            '<tr><td>for each agent of group <a href="#group-trusted"><code>trusted</code></a>: the '
            'allowed decisions of <code>PAY</code></td><td>20</td><td><code>1d</code></td></tr>']
    assert "## Rate limits" in page
    positions = [page.index(row) for row in rows]
    assert positions == sorted(positions)
    plain = tmp_path / "p.sentra"
    plain.write_text('policy plain version "1" {}\notherwise allow as OTHER\n', encoding="utf-8")
    write_markdown(policy_docs(compile_policies([plain]), None), tmp_path / "md2")
    assert "## Rate limits" not in (tmp_path / "md2" / "docs" / "policies" / "plain.md").read_text()


def test_the_policy_reference_shows_review_rules_and_their_expiry(tmp_path: Path) -> None:
    """A policy with `review` rules has a review-timeout row, and each review rule says when
    its ticket expires (its own `expires`, else the policy's timeout)."""
    from sentra_lang.docgen import policy_docs, write_markdown
    from sentra_lang.docgen.collect import compile_policies

    source = tmp_path / "r.sentra"
    source.write_text('policy reviewed version "1" {\n  review_timeout 90m\n}\n'
                      'input { amount: number }\naction PAY {\n'
                      '  when amount > 500 review risk 30 as BIG "Big." expires 2h\n'
                      '  review as ANY "Any."\n}\notherwise block as OTHER "Other."\n',
                      encoding="utf-8")
    write_markdown(policy_docs(compile_policies([source]), None), tmp_path / "md")
    page = (tmp_path / "md" / "docs" / "policies" / "reviewed.md").read_text(encoding="utf-8")
    assert "<tr><th>review timeout</th><td><code>90m</code>" in page
    assert '<td class="sentra-outcome">review<br><small>expires after 2h</small></td>' in page
    assert '<td class="sentra-outcome">review<br><small>expires after 90m</small></td>' in page
    assert "sentra-review" in page
    plain = tmp_path / "p.sentra"
    plain.write_text('policy plain version "1" {}\notherwise allow as OTHER\n', encoding="utf-8")
    write_markdown(policy_docs(compile_policies([plain]), None), tmp_path / "md2")
    assert "review timeout" not in (tmp_path / "md2" / "docs" / "policies" / "plain.md").read_text()
