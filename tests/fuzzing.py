"""A seeded fuzzer for everything a user can feed a `.sentra` or `.sentra-test` file to.

Inputs are mutations of the shipped policies and suites (token edits, byte damage, hostile
fragments such as 3,000 `not`s or a 5,000-digit number) and token soup. Each input runs through
the real command line in this process (`sentra_lang.cli.main`); a run passes when it returns an
exit code. An exception (a traceback a user would see) or a case over the time limit (a hang)
is a finding, kept with the bytes that caused it.
"""

from __future__ import annotations

import contextlib
import io
import random
import re
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from sentra_lang.cli import main

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"

_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|-?\d+(?:\.\d+)?|[A-Za-z_]\w*|->|[=!<>]=|\s+|.',
                    re.DOTALL)
WORDS = [
    "policy", "version", "input", "let", "action", "otherwise", "import", "when", "as", "risk",
    "threat", "description", "normalize", "enum", "set", "allow", "block", "shutdown", "and",
    "or", "not", "in", "exists", "starts_with", "ends_with", "contains", "true", "false",
    "bool", "int", "number", "string", "lower", "upper", "trim", "risk_threshold", "strikes",
    "action_type", "suite", "for", "scenario", "cases", "property", "defaults", "agent",
    "reset", "all", "state", "rule", "reason", "status", "with", "tags", "examples", "where",
    "never", "always", "sequence", "allowed", "blocked", "none", "applied", "projected",
    "cumulative", "amount", "context", "EXPORT_DATA", "X", "Y",
]
PUNCTUATION = ["{", "}", "(", ")", "[", "]", ",", ":", ".", "=", "==", "!=", "<", "<=", ">",
               ">=", "->", "?", '"', "#", "\\", ";", "@", "\n", "\t", " ", "+", "-", "*", "/"]
LITERALS = ['"x"', '"external"', '""', '"{amount}"', '"\\q"', "0", "-1", "2.5", "100", "101",
            "1e5", "9" * 5000, "0." + "1" * 200]
HOSTILE = [
    "not " * 3000 + "x", "(" * 3000 + "x" + ")" * 3000, "[" * 3000 + "]" * 3000, "{" * 500,
    "x + " * 3000 + "x > 1", "-" * 3000 + "x", "x * (" * 1500 + "x" + ")" * 1500, "x / 0 > 1",
    "x / (1 - 1) > 1", "x * 0." + "9" * 99 + " > 1e5",
    "}" * 500, "9" * 5000, '"' + "a" * 100_000, "\ufeff", "\x00", "\r\n", "\u2028",
    'import "/proc/self/environ"\n', 'import "/dev/zero"\n', 'import "../../etc/passwd"\n',
    'import "lib/workspace.sentra"\n', 'import "missing.sentra"\n',
    "".join(f"let L{i} = L{i + 1}\n" for i in range(300)),
    "".join(f"let D{i} = D{i + 1} and D{i + 1}\n" for i in range(40)),
    " and ".join(f"(f{i} or g{i})" for i in range(12)),
]


@dataclass
class Finding:
    kind: str  # "traceback" | "hang"
    command: list[str]
    detail: str
    input: Path


@dataclass
class Report:
    cases: int = 0
    runs: int = 0
    seconds: float = 0.0
    exit_codes: dict[int, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"{self.cases} inputs, {self.runs} runs in {self.seconds:.1f} s; exit codes "
                 f"{dict(sorted(self.exit_codes.items()))}; {len(self.findings)} findings"]
        lines += [f"  {f.kind}: {' '.join(f.command)} ({f.input}): {f.detail}"
                  for f in self.findings[:10]]
        return "\n".join(lines)


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def mutate(text: str, rng: random.Random) -> bytes:
    """One mutant of `text`: token edits, a hostile fragment, byte damage, or a mix."""
    strategy = rng.random()
    if strategy < 0.45:
        mutated = _edit_tokens(text, rng, rng.randint(1, 4))
    elif strategy < 0.65:
        mutated = _substitute(text, rng)
    elif strategy < 0.75:
        mutated = _insert(text, rng, rng.choice(HOSTILE))
    elif strategy < 0.9:
        return _damage_bytes(text.encode(), rng)
    else:
        mutated = _edit_tokens(_insert(text, rng, rng.choice(HOSTILE)), rng, 2)
    return mutated.encode("utf-8", errors="surrogatepass")


def _substitute(text: str, rng: random.Random) -> str:
    """A token replaced by a hostile one of its kind, where the grammar still takes it: a
    number by 5,000 digits, a name by a 3,000-deep condition or a chain of `let`s, a value by
    3,000 nested lists, a string by 100,000 characters."""
    items = tokens(text)
    kinds = {"number": [i for i, t in enumerate(items) if re.fullmatch(r"-?\d+(\.\d+)?", t)],
             "name": [i for i, t in enumerate(items) if re.fullmatch(r"[a-z_]\w*", t)
                      and t not in WORDS],
             "string": [i for i, t in enumerate(items) if t.startswith('"') and len(t) > 1]}
    kind = rng.choice([k for k, found in kinds.items() if found] or ["none"])
    if kind == "none":
        return text
    index = rng.choice(kinds[kind])
    token = items[index]
    if kind == "number":
        items[index] = rng.choice(["9" * 5000, "-" + "1" * 4301, "0." + "1" * 5000,
                                   "[" * 3000 + token + "]" * 3000])
    elif kind == "string":
        items[index] = rng.choice(['"' + "x" * 100_000 + '"', "[" * 3000 + token + "]" * 3000,
                                   '"' + "\\q" * 1000 + '"'])
    else:
        chain = "".join(f"let C{i} = C{i + 1}\n" for i in range(1000)) + f"let C1000 = {token}\n"
        choice = rng.randrange(4)
        if choice == 0:
            items[index] = "not " * 3000 + token
        elif choice == 1:
            items[index] = f"({token} and " * 1500 + token + ")" * 1500
        elif choice == 2:
            items[index] = "C0"
            items.insert(0, chain)
        else:
            items[index] = " or ".join([token] * 300)
    return "".join(items)


def soup(rng: random.Random) -> bytes:
    """Random tokens of the languages, or random bytes."""
    if rng.random() < 0.2:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 400)))
    pool = WORDS + PUNCTUATION + LITERALS
    return "".join(rng.choice(pool) + rng.choice([" ", " ", "\n", ""])
                   for _ in range(rng.randint(1, 200))).encode()


def _edit_tokens(text: str, rng: random.Random, edits: int) -> str:
    items = tokens(text)
    pool = WORDS + PUNCTUATION + LITERALS
    for _ in range(edits):
        if not items:
            items.append(rng.choice(pool))
            continue
        index = rng.randrange(len(items))
        operation = rng.randrange(5)
        if operation == 0:
            del items[index]
        elif operation == 1:
            items[index] = rng.choice(pool)
        elif operation == 2:
            items.insert(index, rng.choice(pool))
        elif operation == 3:
            items.insert(index, items[rng.randrange(len(items))])
        else:
            other = rng.randrange(len(items))
            items[index], items[other] = items[other], items[index]
    return "".join(items)


def _insert(text: str, rng: random.Random, fragment: str) -> str:
    where = rng.randint(0, len(text))
    return text[:where] + fragment + text[where:]


def _damage_bytes(data: bytes, rng: random.Random) -> bytes:
    damaged = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        where = rng.randint(0, len(damaged))
        choice = rng.randrange(4)
        if choice == 0 and damaged:
            damaged[min(where, len(damaged) - 1)] = rng.randrange(256)
        elif choice == 1:
            damaged[where:where] = rng.choice([b"\xef\xbb\xbf", b"\x00", b"\xff\xfe", b"\xc3",
                                               b"\xed\xa0\x80", b"\r", b"\x1b[31m"])
        elif choice == 2:
            del damaged[where:]
        else:
            damaged[where:where] = damaged[where:where + rng.randint(1, 200)]
    return bytes(damaged)


class Hang(BaseException):
    """A case ran past its time limit (a BaseException: no `except Exception` swallows it)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def expired(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"over {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_command(args: Sequence[str], report: Report, limit: float) -> int | None:
    """`sentra-lang ARGS` in this process: its exit code, or None after recording a finding."""
    report.runs += 1
    out = io.StringIO()
    try:
        with time_limit(limit), contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = main(list(args))
    except Hang as hang:
        report.findings.append(Finding("hang", list(args), str(hang), Path()))
        return None
    except BaseException as error:  # noqa: BLE001 - every escape is a finding
        report.findings.append(Finding("traceback", list(args),
                                       f"{type(error).__name__}: {error}"[:300], Path()))
        return None
    report.exit_codes[code] = report.exit_codes.get(code, 0) + 1
    return code


Commands = Callable[[Path, int, "int | None"], list[list[str]]]


def fuzz(count: int, seed: int, samples: Sequence[str], workdir: Path, suffix: str,
         commands: Commands, limit: float) -> Report:
    """Feed `count` inputs (mutants of `samples`, and some soup) to the command lines
    `commands(path, index, None)` gives; then to those `commands(path, index, code)` adds
    once the first has exited with `code` (to run the costlier ones where they matter)."""
    rng = random.Random(seed)
    report = Report()
    start = time.perf_counter()
    findings = workdir / "findings"
    for index in range(count):
        data = soup(rng) if rng.random() < 0.1 else mutate(rng.choice(samples), rng)
        path = workdir / f"case{suffix}"
        path.write_bytes(data)
        report.cases += 1
        known = len(report.findings)
        first, *_ = commands(path, index, None)
        code = run_command(first, report, limit)
        for args in commands(path, index, code)[1:]:
            run_command(args, report, limit)
        if len(report.findings) > known:
            findings.mkdir(exist_ok=True)
            kept = findings / f"{index}{suffix}"
            kept.write_bytes(data)
            for finding in report.findings[known:]:
                finding.input = kept
    report.seconds = time.perf_counter() - start
    return report
