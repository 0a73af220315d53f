"""Language server benchmark: hover and diagnostics on the shipped policies, over the protocol.

    python tests/bench/lsp_bench.py [--edits 30]

A real `sentra-lang lsp` process driven by pygls' LSP client (tests/editors/lsp_client.py), so
every figure is a full JSON-RPC round trip over pipes. The baseline, measured in the same run,
is the round trip of a trivial request (hover on a document that is not open: the server
answers `null` at once). Cases, per shipped file:

- hover: on every rule id, field and action the file names, the document unchanged since its
  last analysis (the usual case: the cursor rests on a name);
- hover after an edit: one hover right after each change, so the file is analysed first;
- diagnostics after an edit: from sending `didChange` to receiving the `publishDiagnostics`
  of that version, with the default delay (50 ms of quiet, as an editor runs it) and with no
  delay (the server's own work).

The target is 200 ms for hover and for diagnostics: the `max` columns.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.editors.lsp_client import LspSession  # noqa: E402

FILES = sorted(p for p in (ROOT / "policies").glob("*") if p.suffix in (".sentra", ".sentra-test"))
NAMES = re.compile(r"\b(?:as|rule)\s+([A-Z][A-Z0-9_]*)|\b([a-z_]+(?:\.[a-z_]+)*)\s*(?:[:=<>!]|in\b)")
TARGET_MS = 200.0


def milliseconds(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return (time.perf_counter() - start) * 1000


def positions(text: str) -> list[tuple[int, int]]:
    """Where the file names a rule id or a field: (line, character) of the name's middle."""
    found = []
    for match in NAMES.finditer(text):
        group = 1 if match.group(1) else 2
        offset = (match.start(group) + match.end(group)) // 2
        line = text.count("\n", 0, offset)
        found.append((line, offset - (text.rfind("\n", 0, offset) + 1)))
    return found


def row(name: str, samples: list[float], baseline: float) -> str:
    p50, worst = statistics.median(samples), max(samples)
    return (f"| {name} | {len(samples)} | {p50:.1f} | {worst:.1f} | {p50 / baseline:.1f}x |"
            f" {'yes' if worst <= TARGET_MS else 'no'} |")


def measure(session: LspSession, edits: int) -> dict[str, list[float]]:
    missing = (ROOT / "policies" / "not-open.sentra").as_uri()
    for _ in range(20):
        session.hover(missing, 0, 0)                                  # warm up
    results: dict[str, list[float]] = {
        "baseline": [milliseconds(lambda: session.hover(missing, 0, 0)) for _ in range(200)]}
    for path in FILES:
        text = path.read_text(encoding="utf-8")
        address = session.open(path, text)
        session.diagnostics(address, version=1)
        spots = positions(text)
        results[f"hover {path.name}"] = [
            milliseconds(lambda spot=spot, address=address: session.hover(address, *spot))
            for spot in spots]
        end = (text.count("\n"), 0)
        after_edit, diagnostics = [], []
        for number in range(edits):
            # append a comment line, then take it away: every edit changes the text
            edit = ("# edit\n", end, end) if number % 2 == 0 else ("", end, (end[0] + 1, 0))
            start = time.perf_counter()
            version = session.change(address, edit[0], start=edit[1], end=edit[2])
            session.diagnostics(address, version=version)
            diagnostics.append((time.perf_counter() - start) * 1000)
            version = session.change(address, " ", start=(end[0], 0), end=(end[0], 0))
            spot = spots[number % len(spots)]
            after_edit.append(milliseconds(
                lambda spot=spot, address=address: session.hover(address, *spot)))
            session.diagnostics(address, version=version)
            session.change(address, "", start=(end[0], 0), end=(end[0], 1))
            session.diagnostics(address)
        results[f"hover after an edit {path.name}"] = after_edit
        results[f"diagnostics after an edit {path.name}"] = diagnostics
        session.close_document(address)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--edits", type=int, default=30, help="edits per file (default 30)")
    args = parser.parse_args()
    print("| case | n | p50 ms | max ms | p50 / baseline | max <= 200 ms |")
    print("|---|---:|---:|---:|---:|---|")
    for label, options in (("", {}), (" (no delay)", {"diagnosticsDelay": 0})):
        session = LspSession(options=options)
        try:
            results = measure(session, args.edits)
        finally:
            session.close()
        baseline = statistics.median(results["baseline"])
        for name, samples in results.items():
            if name == "baseline" and label:
                continue
            if label and not name.startswith("diagnostics"):
                continue
            print(row(name + label, samples, baseline))


if __name__ == "__main__":
    main()
