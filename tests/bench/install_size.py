"""What a plain `pip install sentra-lang` costs, and whether that install does its job.

    python tests/bench/install_size.py [--extra all] [--wheels DIR] [--json]

Builds the wheels of this checkout (`sentra-runtime` from runtime/, and `sentra-lang`), creates
a fresh virtual environment, measures its site-packages (the baseline: an empty venv with pip),
installs the two wheels (their dependencies come from the package index) and measures again.
The growth is what the install adds; the target is at most 40 MB for the plain install.

Then it runs, inside that environment, what the plain install promises: `check`, `compile`,
`fmt --check`, `explain`, `test` (scenarios and cases of the Sentra suite; every shipped suite,
whose properties are all proved; and a property that must sample inputs with Hypothesis, the
`properties` extra, which must say so), `docs` (which must ask for the `docs` extra, exit 2), `pip check`; and after `pip uninstall sentra-runtime`, `pip check` must
report the missing runtime. Exit status 1 when any of these fails or the target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import venv
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET_MB = 40.0
EXTRA_MISSING = "this command needs the `docs` extra: pip install 'sentra-lang[docs]'"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Report:
    extra: str | None
    baseline_mb: float
    installed_mb: float
    growth_mb: float
    distributions_added: list[str]
    install_seconds: float
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


ISOLATED = ("VIRTUAL_ENV", "PYTHONPATH", "PIP_QUIET")
"""Left out of the commands' environment: the fresh venv is used as it is, and pip says what it
finds (CI sets PIP_QUIET, which would silence `pip check`)."""


def run(command: list[str], *, cwd: Path = ROOT, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in ISOLATED}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def build_wheels(into: Path) -> list[Path]:
    """The wheels of runtime/ and of the main package, built as pip builds them."""
    done = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(into),
                str(ROOT / "runtime"), str(ROOT)])
    if done.returncode != 0:
        raise SystemExit(f"building the wheels failed:\n{done.stdout}{done.stderr}")
    return sorted(into.glob("*.whl"))


def site_packages(env: Path) -> Path:
    [path] = env.glob("lib/python3*/site-packages")
    return path


def size_mb(folder: Path) -> float:
    total = sum(entry.stat().st_size for entry in folder.rglob("*") if entry.is_file()
                and not entry.is_symlink())
    return total / 1_000_000


def distributions(folder: Path) -> set[str]:
    return {entry.name.split("-")[0].lower() for entry in folder.glob("*.dist-info")}


def measure(wheels: list[Path], work: Path, extra: str | None) -> tuple[Report, Path]:
    env = work / "venv"
    venv.create(env, with_pip=True, clear=True)
    packages = site_packages(env)
    before_mb, before = size_mb(packages), distributions(packages)
    python = env / "bin" / "python"
    main = next(w for w in wheels if w.name.startswith("sentra_lang-"))
    others = [str(w) for w in wheels if w != main]
    target = f"sentra-lang[{extra}] @ {main.as_uri()}" if extra else str(main)
    start = time.perf_counter()
    done = run([str(python), "-m", "pip", "install", "-q", *others, target])
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"installing the wheels failed:\n{done.stdout}{done.stderr}")
    after_mb = size_mb(packages)
    added = sorted(distributions(packages) - before)
    report = Report(extra, round(before_mb, 1), round(after_mb, 1), round(after_mb - before_mb, 1),
                    added, round(seconds, 1))
    return report, env


def smoke(env: Path, work: Path) -> list[Check]:
    """Run what the plain install promises in the fresh environment."""
    cli = str(env / "bin" / "sentra-lang")
    python = str(env / "bin" / "python")
    table = work / "sentra.json"
    checks = []

    def expect(name: str, command: list[str], code: int = 0, needle: str = "") -> None:
        done = run(command)
        output = done.stdout + done.stderr
        ok = done.returncode == code and needle in output and "Traceback" not in output
        checks.append(Check(name, ok, "" if ok else f"exit {done.returncode}:\n{output[-2000:]}"))

    expect("check policies/", [cli, "check", "policies/"])
    expect("compile", [cli, "compile", "policies/sentra.sentra", "-o", str(table)])
    expect("fmt --check", [cli, "fmt", "--check", "policies/"])
    expect("explain", [cli, "explain", "policies/sentra.sentra", "CHANGE_PERMISSION"],
           needle="BLOCK_PERMISSION_CHANGE")
    expect("test (scenarios and cases)", [cli, "test", "policies/sentra.sentra-test", "--tag",
                                           "walkthrough", "--tag", "export"], needle="passed")
    expect("test policies/ (every property proved, no extra)", [cli, "test", "policies/"],
           needle=", 0 sampled in ")
    expect("test (a sampled property needs the extra)",
           [cli, "test", "tests/fixtures/sampled/"], code=1,
           needle="pip install 'sentra-lang[properties]'")
    expect("docs needs its extra", [cli, "docs", "policies/", "-o", str(work / "site")],
           code=2, needle=EXTRA_MISSING)
    expect("pip check", [python, "-m", "pip", "check"])
    expect("uninstall sentra-runtime", [python, "-m", "pip", "uninstall", "-y", "-q",
                                        "sentra-runtime"])
    expect("pip check sees the missing runtime", [python, "-m", "pip", "check"], code=1,
           needle="sentra-runtime")
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--extra", help="install sentra-lang[EXTRA] instead (no smoke checks)")
    parser.add_argument("--wheels", type=Path, metavar="DIR",
                        help="use the two wheels in DIR instead of building them")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sentra-install-") as tmp:
        work = Path(tmp)
        wheels = sorted(args.wheels.glob("*.whl")) if args.wheels else build_wheels(work / "wheels")
        report, env = measure(wheels, work, args.extra)
        if args.extra is None:
            report.checks = smoke(env, work)
            report.checks.insert(0, Check(f"growth at most {TARGET_MB:g} MB",
                                          report.growth_mb <= TARGET_MB,
                                          f"{report.growth_mb} MB"))
    if args.json:
        print(json.dumps({**asdict(report), "ok": report.ok}, indent=2))
    else:
        print_report(report)
    return 0 if report.ok else 1


def print_report(report: Report) -> None:
    what = f"sentra-lang[{report.extra}]" if report.extra else "sentra-lang (plain)"
    print(f"{'install':<26} {'site-packages MB':>17} {'vs empty venv':>14} {'distributions':>14}")
    print(f"{'empty venv (baseline)':<26} {report.baseline_mb:>17.1f} {'1.00x':>14} {'-':>14}")
    ratio = report.installed_mb / report.baseline_mb
    print(f"{what:<26} {report.installed_mb:>17.1f} {ratio:>13.2f}x "
          f"{len(report.distributions_added):>14}")
    print(f"growth: {report.growth_mb:.1f} MB (target: at most {TARGET_MB:g} MB for the plain "
          f"install); install took {report.install_seconds:.1f} s")
    print(f"added: {', '.join(report.distributions_added)}")
    for check in report.checks:
        print(f"  {'ok  ' if check.ok else 'FAIL'} {check.name}")
        if check.detail and not check.ok:
            print("       " + check.detail.replace("\n", "\n       "))


if __name__ == "__main__":
    sys.exit(main())
