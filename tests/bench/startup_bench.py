"""Start-up benchmark: how long until the command line answers, next to `python -c pass`.

    python tests/bench/startup_bench.py [--repeat 9]

Measures, in one run and interleaved so machine noise hits every row alike:
- `python -c pass`, the baseline (the interpreter alone);
- `sentra-lang --version`;
- `sentra-lang check` of one small policy;
- `sentra-lang serve` until `GET /health` answers (when the `server` extra is installed).

Prints the median and the best of `--repeat` runs for each, the median minus the baseline
(what sentra-lang itself costs) and the targets of issue 17: `--version` under 0.3 s and
`check` under 0.6 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

SMALL_POLICY = '''policy refunds version "1" {
  risk_threshold 100
}

input {
  amount: number
  currency: string normalize upper = "USD"
}

action REFUND {
  when amount > 500 block risk 40 as BIG_REFUND threat "Financial Overreach" "Too large."
  allow risk 5 as REFUND "Refund of {amount} {currency} issued."
}

otherwise block as UNKNOWN_ACTION "Unknown action."
'''
TARGETS = {"--version": 0.3, "check one file": 0.6, "serve until /health": 2.0}


def cli() -> list[str]:
    """The installed `sentra-lang` script next to this interpreter, else `python -m`."""
    script = Path(sys.executable).with_name("sentra-lang")
    return [str(script)] if script.exists() else [sys.executable, "-m", "sentra_lang"]


def run(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_until_health(policy: Path, folder: Path) -> float:
    port = free_port()
    database = folder / f"state-{port}.db"
    start = time.perf_counter()
    process = subprocess.Popen([*cli(), "serve", str(policy), "--port", str(port), "--db",
                                str(database)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as answer:
                    if answer.status == 200:
                        return time.perf_counter() - start
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError("serve exited before answering /health") from None
                time.sleep(0.01)
    finally:
        process.terminate()
        process.wait(timeout=10)


def server_installed() -> bool:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sentra-startup-"))
    policy = folder / "refunds.sentra"
    policy.write_text(SMALL_POLICY, encoding="utf-8")
    cases: dict[str, Callable[[], float]] = {
        "python -c pass": lambda: run([sys.executable, "-c", "pass"]),
        "--version": lambda: run([*cli(), "--version"]),
        "check one file": lambda: run([*cli(), "check", str(policy)]),
    }
    if server_installed():
        cases["serve until /health"] = lambda: serve_until_health(policy, folder)
    for case in cases.values():  # warm the file system cache and the bytecode
        case()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeat):
        for name, case in cases.items():
            times[name].append(case())
    shutil.rmtree(folder, ignore_errors=True)
    baseline = statistics.median(times["python -c pass"])
    print(f"load average {os.getloadavg()[0]:.2f}; {args.repeat} runs each, interleaved")
    print(f"{'command':<22} {'median s':>9} {'best s':>8} {'minus baseline':>15} "
          f"{'x baseline':>11} {'target s':>9}")
    for name, values in times.items():
        median = statistics.median(values)
        target = TARGETS.get(name)
        print(f"{name:<22} {median:>9.3f} {min(values):>8.3f} {median - baseline:>15.3f} "
              f"{median / baseline:>11.1f} {'' if target is None else f'{target:.1f}':>9}")


if __name__ == "__main__":
    main()
