"""The TextMate grammars as VS Code runs them: vscode-textmate on Oniguruma (from npm).

Slow, and skipped cleanly when node or the npm packages are not available (they are installed
once into pytest's cache folder). Checks: every keyword of both `.lark` grammars is scoped as
a keyword, and on the shipped files every word is a keyword for TextMate exactly when it is one
for the Pygments lexer (the two highlighters of the project agree).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pygments.token import Comment, Keyword, Operator, String

from sentra_lang.highlight import SentraLexer, SentraSuiteLexer
from tests.docgen.test_highlight import POLICY_WORDS, SUITE_WORDS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("textmate.js")
SYNTAXES = ROOT / "editors" / "vscode" / "syntaxes"
PACKAGES = ["vscode-textmate@9", "vscode-oniguruma@2"]
KINDS = {"policy": ("sentra.tmLanguage.json", SentraLexer, POLICY_WORDS, ".sentra"),
         "suite": ("sentra-test.tmLanguage.json", SentraSuiteLexer, SUITE_WORDS, ".sentra-test")}
KEYWORD_SCOPES = ("keyword.", "storage.", "constant.language.")
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@pytest.fixture(scope="module")
def node_modules(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed")
    cache = getattr(request.config, "cache", None)     # absent with `-p no:cacheprovider`
    folder = Path(cache.mkdir("sentra-textmate")) if cache is not None else \
        tmp_path_factory.mktemp("sentra-textmate")
    modules = folder / "node_modules"
    if not all((modules / name.split("@")[0]).is_dir() for name in PACKAGES):
        done = subprocess.run(["npm", "install", "--prefix", str(folder), "--no-audit",
                               "--no-fund", "--silent", *PACKAGES],
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            pytest.skip(f"npm cannot install {PACKAGES}: {done.stderr.strip()[:200]}")
    return modules


def tokenize(modules: Path, grammar: str, texts: list[str]) -> list[list[list[dict[str, Any]]]]:
    request = json.dumps({"grammar": str(SYNTAXES / grammar), "texts": texts})
    done = subprocess.run(["node", str(SCRIPT)], input=request, capture_output=True, text=True,
                          env=dict(os.environ, NODE_PATH=str(modules)), timeout=120)
    assert done.returncode == 0, done.stderr
    result: list[list[list[dict[str, Any]]]] = json.loads(done.stdout)
    return result


def is_text(scopes: list[str]) -> bool:
    """Strings and comments: words in them are text, not code."""
    return any(scope.startswith(("string.", "comment.")) for scope in scopes)


def is_keyword_scope(scopes: list[str]) -> bool:
    return any(scope.startswith(KEYWORD_SCOPES) and "operator.comparison" not in scope
               for scope in scopes[1:])


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_keyword_is_scoped_as_a_keyword(node_modules: Path, kind: str) -> None:
    grammar, _lexer, words, _suffix = KINDS[kind]
    ordered = sorted(words)
    [lines] = tokenize(node_modules, grammar, ["\n".join(f"{word} x" for word in ordered)])
    for word, tokens in zip(ordered, lines):
        assert tokens[0]["text"] == word and is_keyword_scope(tokens[0]["scopes"]), (word, tokens)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_textmate_and_pygments_agree_on_the_shipped_files(node_modules: Path, kind: str) -> None:
    grammar, lexer, _words, suffix = KINDS[kind]
    paths = sorted(p for p in (ROOT / "policies").rglob(f"*{suffix}"))
    texts = [path.read_text(encoding="utf-8") for path in paths]
    for path, text, lines in zip(paths, texts, tokenize(node_modules, grammar, texts)):
        textmate = [(word, is_keyword_scope(token["scopes"]))
                    for line in lines for token in line if not is_text(token["scopes"])
                    for word in WORD.findall(token["text"])]
        pygments = [(word, token in Keyword or token in Operator.Word)
                    for token, value in lexer().get_tokens(text)
                    if token not in String and token not in Comment
                    for word in WORD.findall(value)]
        assert textmate == pygments, path.name
        comments = [t for line in lines for t in line if t["text"].startswith("#")]
        assert all("comment.line.number-sign" in " ".join(t["scopes"]) for t in comments)
