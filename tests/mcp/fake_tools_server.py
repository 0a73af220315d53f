"""A small MCP server for the gateway tests, written with the `mcp` SDK (FastMCP), over stdio.

Every tool records its call (name and arguments) as a JSON line in the file named by the
environment variable FAKE_TOOLS_LOG, so a test can tell which calls reached the server.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mcp.server.fastmcp import Context, FastMCP

server = FastMCP("fake-tools")
LOG = Path(os.environ.get("FAKE_TOOLS_LOG", os.devnull))


def record(tool: str, **arguments: Any) -> None:
    with LOG.open("a", encoding="utf-8") as log:
        log.write(json.dumps({"tool": tool, "arguments": arguments}) + "\n")


@server.tool()
def read_file(path: str) -> str:
    """Read a file (pretend)."""
    record("read_file", path=path)
    return f"contents of {path}"


@server.tool()
def change_permission(user: str, role: str) -> str:
    """Give a user a role (pretend)."""
    record("change_permission", user=user, role=role)
    return f"{user} is now {role}"


@server.tool()
def delete_repository(name: str) -> str:
    """Delete a repository (pretend)."""
    record("delete_repository", name=name)
    return f"deleted {name}"


@server.tool()
def summarize(text: str) -> str:
    """A tool the policy does not name: `otherwise` decides it."""
    record("summarize", text=text)
    return text[:20]


@server.tool()
def echo(text: str) -> str:
    """Answer the text (the benchmark's tool)."""
    return text


@server.tool()
async def count(n: int, ctx: Context) -> str:  # type: ignore[type-arg]
    """Count to n, reporting progress and logging each step."""
    record("count", n=n)
    for step in range(1, n + 1):
        await ctx.report_progress(step, n)
        await ctx.info(f"step {step}")
    return f"counted to {n}"


@server.resource("notes://today")
def notes() -> str:
    """A resource, to show that resources pass through."""
    return "buy milk"


@server.prompt()
def review(code: str) -> str:
    """A prompt, to show that prompts pass through."""
    return f"Review this code:\n{code}"


if __name__ == "__main__":
    server.run()
