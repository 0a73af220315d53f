"""Benchmark: how long `sentra-lang serve` takes until `GET /health` answers.

    python tests/bench/serve_start_bench.py [--rounds 5] [--policy policies/sentra.sentra]

Each round, in the same run, times (wall clock, new processes, a fresh SQLite file):

- ``python -c pass`` (the interpreter alone: the baseline);
- ``python -c "import sentra_lang.server.app"`` (the server's imports);
- ``python -m sentra_lang serve POLICY`` until ``/health`` answers on loopback.

Prints the median and the best of each, and each against the baseline. The goal: `/health`
within 2 s.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def serve_until_health(policy: Path, folder: str) -> float:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "sentra_lang", "serve", str(policy), "--port", str(port),
         "--db", os.path.join(folder, f"start-{port}.db")],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
                return time.perf_counter() - started
            except OSError:
                if process.poll() is not None or time.perf_counter() - started > 60:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.005)
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--policy", type=Path, default=ROOT / "policies" / "sentra.sentra")
    args = parser.parse_args()
    if not 0 < args.rounds <= 50:
        parser.error("--rounds must be 1..50")
    runs: dict[str, list[float]] = {"python -c pass": [], "import the server": [],
                                    "serve until /health": []}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            runs["python -c pass"].append(timed([sys.executable, "-c", "pass"]))
            runs["import the server"].append(
                timed([sys.executable, "-c", "import sentra_lang.server.app"]))
            runs["serve until /health"].append(serve_until_health(args.policy, folder))
    baseline = statistics.median(runs["python -c pass"])
    print(f"{args.rounds} rounds, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"policy {args.policy.name}")
    for name, seconds in runs.items():
        median = statistics.median(seconds)
        print(f"{name:<22} median {median:6.3f} s   best {min(seconds):6.3f} s   "
              f"{median / baseline:5.1f}x python -c pass")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
