"""The VS Code extension folder (`editors/vscode/`): its manifest, language configuration,
grammars and `extension.js` agree with each other and with the language server's command."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sentra_lang.cli import build_parser
from sentra_lang.highlight import textmate_files

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "editors" / "vscode"
MANIFEST = EXTENSION / "package.json"
SOURCES = sorted(p for p in (ROOT / "policies").rglob("*") if p.suffix in {".sentra", ".sentra-test"})


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def manifest() -> dict[str, Any]:
    data: dict[str, Any] = load(MANIFEST)
    return data


def languages() -> dict[str, dict[str, Any]]:
    return {language["id"]: language for language in manifest()["contributes"]["languages"]}


def grammar_patterns(node: Any) -> list[str]:
    """Every regular expression in a TextMate grammar (`match`, `begin`, `end`)."""
    found: list[str] = []
    if isinstance(node, dict):
        found += [node[key] for key in ("match", "begin", "end") if key in node]
        for value in node.values():
            found += grammar_patterns(value)
    elif isinstance(node, list):
        for value in node:
            found += grammar_patterns(value)
    return found


def scope_names(node: Any) -> list[str]:
    """Every scope a grammar assigns (`name` keys)."""
    if isinstance(node, list):
        return [name for value in node for name in scope_names(value)]
    if not isinstance(node, dict):
        return []
    own = [node["name"]] if isinstance(node.get("name"), str) else []
    return own + [name for value in node.values() for name in scope_names(value)]


def test_every_path_the_manifest_names_exists() -> None:
    data = manifest()
    paths = [data["main"]]
    paths += [language["configuration"] for language in data["contributes"]["languages"]]
    paths += [grammar["path"] for grammar in data["contributes"]["grammars"]]
    for path in paths:
        assert (EXTENSION / path).is_file(), path


def test_languages_cover_both_file_kinds_and_activate_the_extension() -> None:
    found = languages()
    assert found["sentra"]["extensions"] == [".sentra"]
    assert found["sentra-test"]["extensions"] == [".sentra-test"]
    assert sorted(manifest()["activationEvents"]) == sorted(f"onLanguage:{i}" for i in found)


def test_each_grammar_is_the_generated_one_for_its_language() -> None:
    grammars = manifest()["contributes"]["grammars"]
    assert sorted(g["language"] for g in grammars) == sorted(languages())
    for entry in grammars:
        path = EXTENSION / entry["path"]
        grammar = load(path)
        assert grammar["scopeName"] == entry["scopeName"] == f"source.{entry['language']}"
        extensions = [f".{kind}" for kind in grammar["fileTypes"]]
        assert extensions == languages()[entry["language"]]["extensions"]
        assert path.read_text(encoding="utf-8") == textmate_files()[path], (
            "regenerate with `python -m sentra_lang.highlight`")
        suffix = "." + entry["language"]
        assert all(name.endswith(suffix) for name in scope_names(grammar["repository"]))


def test_the_package_data_and_the_extension_hold_the_same_grammars() -> None:
    files = textmate_files()
    assert len(files) == 4, "two grammars, in the package and in the extension"
    for path, text in files.items():
        assert path.read_text(encoding="utf-8") == text, path
    by_name: dict[str, set[str]] = {}
    for path, text in files.items():
        by_name.setdefault(path.name, set()).add(text)
    assert all(len(texts) == 1 for texts in by_name.values())


@pytest.mark.parametrize("name", ["sentra.tmLanguage.json", "sentra-test.tmLanguage.json"])
def test_every_grammar_pattern_is_an_oniguruma_compatible_regex(name: str) -> None:
    patterns = grammar_patterns(load(EXTENSION / "syntaxes" / name))
    assert len(patterns) >= 10
    for pattern in patterns:
        re.compile(pattern)
        # Python-only syntax that Oniguruma reads differently or rejects
        assert "(?P" not in pattern and "\\Z" not in pattern and "(?#" not in pattern, pattern


def test_the_language_configuration_matches_the_language() -> None:
    config = load(EXTENSION / "language-configuration.json")
    assert config["comments"] == {"lineComment": "#"}
    assert {tuple(pair) for pair in config["brackets"]} == {("{", "}"), ("[", "]"), ("(", ")")}
    closing = {pair["open"]: pair["close"] for pair in config["autoClosingPairs"]}
    assert closing == {"{": "}", "[": "]", "(": ")", '"': '"'}
    assert re.fullmatch(config["wordPattern"], "context") and \
        not re.fullmatch(config["wordPattern"], "9lives")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_indentation_rules_follow_the_blocks_of_the_shipped_files(path: Path) -> None:
    rules = load(EXTENSION / "language-configuration.json")["indentationRules"]
    increase, decrease = re.compile(rules["increaseIndentPattern"]), \
        re.compile(rules["decreaseIndentPattern"])
    lines = path.read_text(encoding="utf-8").splitlines()
    for line, following in zip(lines, lines[1:] + [""]):
        code = re.sub(r'"(?:[^"\\]|\\.)*"|#.*', "", line)
        opens = code.count("{") > code.count("}")
        assert bool(increase.search(line)) == opens, line
        if following.strip() == "}":
            assert decrease.search(following)


def test_extension_js_starts_the_servers_command_with_the_manifests_settings() -> None:
    script = (EXTENSION / "extension.js").read_text(encoding="utf-8")
    properties = manifest()["contributes"]["configuration"]["properties"]
    read = set(re.findall(r'config\.get\("([^"]+)"', script))
    assert read and {f"sentra.{key}" for key in read} <= set(properties)
    assert properties["sentra.server.command"]["default"] == "sentra-lang"
    assert properties["sentra.server.args"]["default"] == ["lsp"]
    assert "transport: TransportKind.stdio" in script       # the client adds `--stdio`
    build_parser().parse_args(["lsp", "--stdio"])           # which `sentra-lang lsp` accepts
    selector = set(re.findall(r'\{ language: "([^"]+)" \}', script))
    assert selector == set(languages())
    for command in manifest()["contributes"]["commands"]:
        assert f'registerCommand("{command["command"]}"' in script
    assert "sentra.trace.server" in properties                # read by the client by its id
    assert 'new LanguageClient("sentra"' in script


def test_the_manifest_depends_on_the_language_client_only() -> None:
    assert list(manifest()["dependencies"]) == ["vscode-languageclient"]
    lock = load(EXTENSION / "package-lock.json")
    assert lock["packages"][""]["dependencies"] == manifest()["dependencies"]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_extension_js_is_valid_javascript() -> None:
    subprocess.run(["node", "--check", str(EXTENSION / "extension.js")], check=True)
