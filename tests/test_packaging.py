"""Packaging: one version for both distributions, a light core with extras, the license, the
README's commands, and (slow) real builds, `twine check --strict` and a fresh light install."""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
import sentra_runtime

import sentra_lang

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = {"server", "docs", "postgres", "mcp", "lsp", "properties", "all", "test"}
HEAVY = {"fastapi", "uvicorn", "mkdocs", "mkdocs-material", "jinja2", "pygments", "hypothesis",
         "psycopg", "psycopg-pool", "mcp", "pygls"}


def pyproject(path: Path = ROOT) -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((path / "pyproject.toml").read_text("utf-8"))
    return data


def name_of(requirement: str) -> str:
    return re.split(r"[\[<>=!~; @]", requirement, maxsplit=1)[0].strip().lower()


def source_version() -> str:
    """The one place the version is written: runtime/sentra_runtime/__init__.py."""
    text = (ROOT / "runtime" / "sentra_runtime" / "__init__.py").read_text("utf-8")
    [version] = re.findall(r'^__version__ = "([^"]+)"$', text, re.M)
    return version


# ------------------------------------------------------------------------------- versions

def test_both_distributions_read_the_one_version() -> None:
    version = source_version()
    main, runtime = pyproject(), pyproject(ROOT / "runtime")
    assert "version" not in main["project"] and "version" not in runtime["project"]
    assert main["project"]["dynamic"] == ["version"] == runtime["project"]["dynamic"]
    assert main["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "runtime.sentra_runtime.__version__"}
    assert runtime["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "sentra_runtime.__version__"}
    assert sentra_lang.__version__ == sentra_runtime.__version__ == version


def test_sentra_lang_pins_the_runtime_of_its_own_version() -> None:
    version = source_version()
    pins = [r for r in pyproject()["project"]["dependencies"] if name_of(r) == "sentra-runtime"]
    assert pins == [f"sentra-runtime=={version}"]


def test_the_installed_metadata_agrees() -> None:
    """What pip installed in this environment is this checkout's version (reinstall if not)."""
    version = source_version()
    assert importlib.metadata.version("sentra-lang") == version
    assert importlib.metadata.version("sentra-runtime") == version
    requires = importlib.metadata.requires("sentra-lang") or []
    assert f"sentra-runtime=={version}" in requires


# --------------------------------------------------------------------------- dependencies

def test_core_dependencies_are_light() -> None:
    core = {name_of(r) for r in pyproject()["project"]["dependencies"]}
    assert core == {"sentra-runtime", "lark", "pydantic"}
    assert not core & HEAVY
    assert pyproject(ROOT / "runtime")["project"]["dependencies"] == []


def test_extras_are_the_agreed_set() -> None:
    extras: dict[str, list[str]] = pyproject()["project"]["optional-dependencies"]
    assert set(extras) == EXTRAS
    [everything] = extras["all"]
    assert everything.startswith("sentra-lang[")
    assert set(everything[len("sentra-lang["):-1].split(",")) == EXTRAS - {"all", "test"}
    assert "sentra-lang[all]" in extras["test"]
    named = {extra: {name_of(r) for r in requirements} for extra, requirements in extras.items()}
    assert {"fastapi", "uvicorn"} <= named["server"]
    assert {"mkdocs", "mkdocs-material"} <= named["docs"]
    assert named["postgres"] == {"psycopg", "psycopg-pool"}
    assert "psycopg[binary]" in "".join(extras["postgres"])
    assert named["mcp"] == {"mcp"} and named["lsp"] == {"pygls"}
    assert named["properties"] == {"hypothesis"}
    assert {"pytest", "httpx", "mypy", "hypothesis", "openapi-spec-validator",
            "playwright"} <= named["test"]
    for requirement in (r for requirements in extras.values() for r in requirements):
        if not requirement.startswith("sentra-lang["):
            assert re.search(r">=[\d.]+,<[\d.]+$", requirement), f"unbounded: {requirement}"


EXTRA_MODULES = ("fastapi", "starlette", "uvicorn", "mkdocs", "material", "jinja2", "markupsafe",
                 "pygments", "hypothesis", "psycopg", "psycopg_pool", "mcp", "pygls")
"""The top-level modules of every extra's dependencies."""
BLOCKER = '''
import importlib.abc, sys
BLOCKED = set(sys.argv[1].split(","))
class Block(importlib.abc.MetaPathFinder):
    """Pretends the modules named in the first argument are not installed."""
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Block())
from sentra_lang.cli import main
sys.exit(main(sys.argv[2:]))
'''
def without_extras(*args: str, blocked: tuple[str, ...] = EXTRA_MODULES,
                   cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run the CLI as if the `blocked` modules (by default every extra's) were not installed."""
    return subprocess.run([sys.executable, "-c", BLOCKER, ",".join(blocked), *args], cwd=cwd,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args", [
    ["check", "policies/"],
    ["check", "policies/", "--format", "sarif"],
    ["compile", "policies/sentra.sentra"],
    ["fmt", "--check", "policies/"],
    ["explain", "policies/sentra.sentra", "CHANGE_PERMISSION"],
    ["test", "policies/sentra.sentra-test", "--tag", "walkthrough", "--tag", "export"],
    ["check", "policies/", "--color", "always"],
    ["--version"],
], ids=lambda args: " ".join(args[:2]))
def test_core_commands_need_no_extra(args: list[str]) -> None:
    done = without_extras(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_docs_as_markdown_needs_the_templates_but_not_mkdocs(tmp_path: Path) -> None:
    args = ("docs", "policies/sentra.sentra", "--markdown-only")
    done = without_extras(*args, "-o", str(tmp_path / "md"), blocked=("mkdocs", "material"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "md" / "mkdocs.yml").is_file()
    done = without_extras(*args, "-o", str(tmp_path / "none"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr == ("sentra-lang docs: error: this command needs the `docs` extra: "
                           "pip install 'sentra-lang[docs]'\n")


@pytest.mark.parametrize(("blocked", "args", "extra"), [
    ("fastapi", ["serve", "policies/sentra.sentra"], "server"),
    ("uvicorn", ["serve", "policies/sentra.sentra"], "server"),
    ("mkdocs", ["docs", "policies/", "-o", "site"], "docs"),
    ("material", ["docs", "policies/", "-o", "site"], "docs"),
    ("pygls", ["lsp"], "lsp"),
    ("lsprotocol", ["lsp", "--stdio"], "lsp"),
])
def test_a_missing_extra_names_the_extra(tmp_path: Path, blocked: str, args: list[str],
                                         extra: str) -> None:
    args = [str(ROOT / arg) if arg.startswith("policies/") else arg for arg in args]
    done = without_extras(*args, blocked=(blocked,), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (f"sentra-lang {args[0]}: error: this command needs the `{extra}` "
                           f"extra: pip install 'sentra-lang[{extra}]'\n")
    assert not (tmp_path / "site").exists()


def test_sampled_properties_say_which_extra_they_need() -> None:
    """A property that must be sampled is an error naming the extra (the words every missing
    extra gets); the rest of the suite, and proved properties, run."""
    done = without_extras("test", "tests/fixtures/sampled/")
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    assert "this command needs the `properties` extra: pip install 'sentra-lang[properties]'" \
        in done.stdout
    assert "2 passed, 1 error," in done.stdout, done.stdout


def test_the_shipped_suites_need_no_extra() -> None:
    """Every property of the shipped suites is proved on every cell: no Hypothesis needed."""
    done = without_extras("test", "policies/")
    assert done.returncode == 0, done.stdout + done.stderr
    assert ", 0 sampled in " in done.stdout


# ----------------------------------------------------------------------- license, README

def test_license_is_the_apache_license_in_both_distributions() -> None:
    text = (ROOT / "LICENSE").read_text("utf-8")
    assert (ROOT / "runtime" / "LICENSE").read_text("utf-8") == text
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text) > 11000
    for project in (pyproject(), pyproject(ROOT / "runtime")):
        assert project["project"]["license"] == "Apache-2.0"
        assert project["project"]["license-files"] == ["LICENSE"]
        assert project["project"]["readme"] == "README.md"
        assert not any(c.startswith("License ::") for c in project["project"]["classifiers"])


def quick_start() -> list[str]:
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("## Quick start", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return block.strip().splitlines()


def test_readme_quick_start_is_two_commands_and_ci_runs_the_second() -> None:
    install, tests = quick_start()
    assert install.startswith("python3 -m pip install ./runtime . && sentra-lang check policies/")
    assert tests == "python3 -m pip install -e ./runtime -e '.[test]' && python3 -m pytest -q -n 2"
    assert tests in (ROOT / ".ci" / "run").read_text("utf-8")
    getting_started = (ROOT / "docs" / "getting-started.md").read_text("utf-8")
    assert f"{install}\n{tests}\n" in getting_started


# --------------------------------------------------------------------- builds (slow, real)

def clean_copy(into: Path) -> Path:
    """The files git tracks (and new files it does not ignore): what a fresh clone builds,
    without build leftovers such as a stale `*.egg-info` of an earlier layout."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    return into


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """sdist and wheel of both distributions, built as `python -m build` builds them (the
    wheel from the sdist), with setuptools' warnings kept."""
    if shutil.which("git") is None:
        pytest.skip("git is needed to list the repository's files")
    work = tmp_path_factory.mktemp("build")
    tree = clean_copy(work / "tree")
    dist = work / "dist"
    logs = []
    for project in (tree / "runtime", tree):
        done = subprocess.run([sys.executable, "-m", "build", "-o", str(dist), str(project)],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        logs.append(done.stdout + done.stderr)
    (work / "build.log").write_text("\n".join(logs), encoding="utf-8")
    found = {path.name.split("-")[0] + path.suffix: path for path in dist.iterdir()}
    return {"log": work / "build.log", **found}


@pytest.mark.slow
def test_builds_without_setuptools_warnings(built: dict[str, Path]) -> None:
    log = built["log"].read_text("utf-8")
    assert "would be ignored" not in log
    assert "Warning" not in log.replace("byte-compiling is disabled", ""), \
        [line for line in log.splitlines() if "Warning" in line]


@pytest.mark.slow
def test_twine_check_strict_passes(built: dict[str, Path]) -> None:
    artifacts = [str(path) for key, path in built.items() if key != "log"]
    assert len(artifacts) == 4
    done = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *artifacts],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASSED") == 4


def wheel_metadata(wheel: Path) -> tuple[list[str], str]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
    return names, metadata.decode("utf-8")


@pytest.mark.slow
def test_the_main_wheel_depends_on_the_runtime_instead_of_shipping_it(
        built: dict[str, Path]) -> None:
    names, metadata = wheel_metadata(built["sentra_lang.whl"])
    assert not any(name.startswith("sentra_runtime/") for name in names)
    assert f"Requires-Dist: sentra-runtime=={source_version()}\n" in metadata
    tracked = [path.relative_to(ROOT).as_posix() for path in (ROOT / "sentra_lang").rglob("*")
               if path.is_file() and "__pycache__" not in path.parts]
    missing = sorted(set(tracked) - set(names))
    assert not missing, missing  # every module and data file (grammars, templates, assets)
    for field in ("License-Expression: Apache-2.0", "License-File: LICENSE",
                  "Classifier: Typing :: Typed", "Keywords: ", "Author: "):
        assert field in metadata
    assert "Project-URL" not in metadata  # the project has no web site: none is invented


@pytest.mark.slow
def test_the_runtime_wheel_is_standard_library_only(built: dict[str, Path]) -> None:
    names, metadata = wheel_metadata(built["sentra_runtime.whl"])
    assert "sentra_runtime/py.typed" in names
    assert not any(name.startswith("sentra_lang/") for name in names)
    assert "Requires-Dist" not in metadata
    assert f"Version: {source_version()}\n" in metadata
    assert "Description-Content-Type: text/markdown" in metadata


@pytest.mark.slow
def test_the_sdists_carry_what_their_builds_need(built: dict[str, Path]) -> None:
    with tarfile.open(built["sentra_lang.gz"]) as archive:
        main = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    with tarfile.open(built["sentra_runtime.gz"]) as archive:
        runtime = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"LICENSE", "README.md", "pyproject.toml",
            "runtime/sentra_runtime/__init__.py"} <= main  # the version source
    runtime_modules = {name for name in main if name.startswith("runtime/") and name.endswith(".py")}
    assert runtime_modules == {"runtime/sentra_runtime/__init__.py"}
    assert {"LICENSE", "README.md", "pyproject.toml", "sentra_runtime/engine.py"} <= runtime


@pytest.mark.slow
def test_a_plain_install_is_light_and_works(built: dict[str, Path]) -> None:
    """tests/bench/install_size.py: a fresh venv, the two wheels, growth at most 40 MB, the core
    commands run, `docs` asks for its extra, and `pip check` notices a missing runtime."""
    wheels = built["sentra_lang.whl"].parent
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "bench" / "install_size.py"),
                           "--wheels", str(wheels), "--json"],
                          capture_output=True, text=True, timeout=1200)
    report = json.loads(done.stdout)
    failed = [check for check in report["checks"] if not check["ok"]]
    assert done.returncode == 0 and report["ok"], failed or done.stderr
    assert report["growth_mb"] <= 40
    names = {check["name"] for check in report["checks"]}
    assert "pip check sees the missing runtime" in names and len(names) >= 10
    assert not {name.replace("_", "-") for name in report["distributions_added"]} & HEAVY
