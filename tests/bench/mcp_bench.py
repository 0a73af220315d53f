"""Benchmark: what the MCP gateway adds to a tool call.

    python tests/bench/mcp_bench.py [--calls 1000] [--db]

Opens two MCP client sessions (the `mcp` SDK's ClientSession over stdio) at once: one straight
to the test suite's FastMCP server (tests/mcp/fake_tools_server.py), one to `sentra-lang
mcp-proxy tests/mcp/tools.sentra` wrapping another copy of it; then calls the `echo` tool
(allowed by the policy) on each in turn, ``--calls`` times, so that the machine's noise falls on
both alike. Prints p50, p90 and mean per call and what the gateway adds. Target: at most 2 ms
added at p50. ``--db`` gives the gateway a SQLite store (the default: in memory).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

ROOT = Path(__file__).resolve().parents[2]
FAKE_SERVER = ROOT / "tests" / "mcp" / "fake_tools_server.py"
POLICY = ROOT / "tests" / "mcp" / "tools.sentra"


async def open_session(stack: AsyncExitStack, params: StdioServerParameters) -> ClientSession:
    quiet = stack.enter_context(open(os.devnull, "w"))  # noqa: SIM115  (closed by the stack)
    read, write = await stack.enter_async_context(stdio_client(params, errlog=quiet))
    session = await stack.enter_async_context(ClientSession(read, write))
    await session.initialize()
    return session


async def measure(calls: int, db: str | None) -> dict[str, list[float]]:
    direct = StdioServerParameters(command=sys.executable, args=[str(FAKE_SERVER)])
    store = ["--db", db] if db else []
    gated = StdioServerParameters(command=sys.executable, args=[
        "-m", "sentra_lang", "mcp-proxy", str(POLICY), "--agent-id", "bench", *store, "--",
        sys.executable, str(FAKE_SERVER)], cwd=str(ROOT))
    times: dict[str, list[float]] = {"direct": [], "through the gateway": []}
    async with AsyncExitStack() as stack:
        sessions = {"direct": await open_session(stack, direct),
                    "through the gateway": await open_session(stack, gated)}
        for session in sessions.values():   # warm up
            for _ in range(30):
                await session.call_tool("echo", {"text": "warm"})
        for _ in range(calls):
            for name, session in sessions.items():
                started = time.perf_counter()
                result = await session.call_tool("echo", {"text": "hello"})
                times[name].append(time.perf_counter() - started)
                assert not result.isError, result
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--db", action="store_true", help="the gateway on a SQLite store")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        times = asyncio.run(measure(args.calls, os.path.join(folder, "g.db") if args.db
                                    else None))
    print(f"{'session':<22} {'calls':>6} {'p50 ms':>7} {'p90 ms':>7} {'mean ms':>8}")
    for name, values in times.items():
        ordered = sorted(values)
        print(f"{name:<22} {len(values):>6} {statistics.median(values) * 1e3:>7.2f} "
              f"{ordered[int(0.9 * len(ordered))] * 1e3:>7.2f} "
              f"{statistics.fmean(values) * 1e3:>8.2f}")
    added = statistics.median(times["through the gateway"]) - statistics.median(times["direct"])
    print(f"the gateway adds {added * 1e3:.2f} ms at p50 (target at most 2 ms), "
          f"store: {'SQLite' if args.db else 'memory'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
