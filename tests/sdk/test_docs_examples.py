"""The examples of docs/integrations.md and docs/troubleshooting.md run as documented.

Each page's `sentra` blocks that start with a file name comment (`# refunds.sentra`) are written
to a fresh folder and compiled next to themselves (`refunds.json`); each `python` block runs
there as a program, and what it prints must equal the `text` block under it. A program that
names `http://127.0.0.1:8000` talks to a real decision server on the page's first policy, with
the operator and read tokens in `operator.token` and `read.token`. `sentra-lang` command lines
must parse, and the MCP client configurations must start a working gateway.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sentra_lang.cli import build_parser
from sentra_lang.policy_file import load_policy_file
from tests.server.conftest import Server

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = ("integrations.md", "troubleshooting.md")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
DOC_URL = "http://127.0.0.1:8000"
OPERATOR_TOKEN = "operator-token-for-the-docs"
READ_TOKEN = "read-token-for-the-docs"


def fences(page: str) -> list[tuple[str, str]]:
    return [(match.group(1), match.group(2))
            for match in FENCE.finditer((DOCS / page).read_text("utf-8"))]


@dataclass
class Program:
    page: str
    index: int
    code: str
    expected: str | None


def programs() -> list[Program]:
    found = []
    for page in PAGES:
        blocks = fences(page)
        for index, (language, text) in enumerate(blocks):
            if language == "python":
                after = blocks[index + 1] if index + 1 < len(blocks) else ("", "")
                found.append(Program(page, index, text,
                                     after[1] if after[0] == "text" else None))
    return found


@dataclass
class Folder:
    """A page's folder: its policies compiled, the tokens written, a server when needed."""

    path: Path
    policies: list[Path]
    servers: list[Server] = field(default_factory=list)

    def url(self) -> str:
        if not self.servers:
            self.servers.append(Server(self.policies[0], self.path / "served.db",
                                       OPERATOR_TOKEN, read_token=READ_TOKEN))
        return self.servers[0].url


def named_policies() -> dict[str, str]:
    """The pages' policies that start with their file name (troubleshooting.md uses the ones
    integrations.md shows), in page order."""
    return {name.group(1): text for page in PAGES for language, text in fences(page)
            if language == "sentra" and (name := re.match(r"# ([\w-]+\.sentra)\n", text))}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Folder]]:
    made = {}
    for page in PAGES:
        path = tmp_path_factory.mktemp(page.removesuffix(".md"))
        policies = []
        for name, text in named_policies().items():
            source = path / name
            source.write_text(text)
            loaded = load_policy_file(source)
            assert loaded.table is not None, loaded.problems
            source.with_suffix(".json").write_text(json.dumps(loaded.table))
            policies.append(source)
        (path / "operator.token").write_text(OPERATOR_TOKEN + "\n")
        (path / "read.token").write_text(READ_TOKEN + "\n")
        made[page] = Folder(path, policies)
    yield made
    for folder in made.values():
        for server in folder.servers:
            server.stop()


def test_the_pages_have_their_examples() -> None:
    found = programs()
    assert sum(program.page == "integrations.md" for program in found) >= 4
    assert list(named_policies()) == ["refunds.sentra", "held.sentra", "tools.sentra"]
    assert all(program.expected is not None for program in found)
    assert len(found) == len({(program.page, program.index) for program in found})


@pytest.mark.parametrize("program", programs(),
                         ids=lambda program: f"{program.page}#{program.index}")
def test_a_documented_program_prints_what_the_page_shows(program: Program,
                                                         folders: dict[str, Folder]) -> None:
    folder = folders[program.page]
    code, url = program.code, None
    if DOC_URL in code:
        url = folder.url()
        code = code.replace(DOC_URL, url)
    ran = subprocess.run([sys.executable, "-c", code], cwd=folder.path, capture_output=True,
                         text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    printed = ran.stdout if url is None else ran.stdout.replace(url, DOC_URL)
    assert printed == program.expected


def command_lines() -> list[str]:
    return [line for page in PAGES for language, text in fences(page)
            if language == "bash" for line in text.splitlines()
            if line.startswith("sentra-lang ")]


@pytest.mark.parametrize("line", command_lines())
def test_a_documented_command_line_parses(line: str) -> None:
    arguments = build_parser().parse_args(shlex.split(line)[1:])
    assert arguments.run is not None


def configurations(page: Path = DOCS / "integrations.md") -> list[dict[str, Any]]:
    return [json.loads(match.group(2)) for match in FENCE.finditer(page.read_text("utf-8"))
            if match.group(1) == "json"]


def gateway_arguments(configuration: dict[str, Any]) -> list[str]:
    servers = configuration.get("mcpServers") or configuration["servers"]
    (server,) = servers.values()
    assert server["command"] == "sentra-lang"
    return list(server["args"])


def test_both_client_configurations_run_the_gateway_alike() -> None:
    desktop, editor = (gateway_arguments(item) for item in configurations())
    (readme,) = (gateway_arguments(item) for item in configurations(DOCS.parent / "README.md"))
    assert readme == [part for part in desktop if part != "--hide-never-allowed"]
    for arguments in (desktop, editor, readme):
        assert arguments[0] == "mcp-proxy" and "--" in arguments
        parsed = build_parser().parse_args([
            part.replace("${workspaceFolder}", "/work") for part in arguments])
        assert parsed.run is not None


@pytest.mark.slow
def test_the_desktop_configuration_starts_a_working_gateway(folders: dict[str, Folder],
                                                            tmp_path: Path) -> None:
    """The documented arguments, with the page's tools policy, a fresh database and the test
    suite's MCP server in place of the filesystem server."""
    pytest.importorskip("mcp")
    from mcp.client.stdio import StdioServerParameters

    from tests.mcp.conftest import FAKE_SERVER, ROOT, session, text_of

    arguments = gateway_arguments(configurations()[0])
    at = arguments.index("--")
    options = [str(folders["integrations.md"].path / "tools.sentra") if part.endswith(
        "tools.sentra") else str(tmp_path / "tools.db") if part.endswith("tools.db") else part
        for part in arguments[:at]]
    params = StdioServerParameters(command=sys.executable, cwd=str(ROOT), args=[
        "-m", "sentra_lang", *options, "--", sys.executable, str(FAKE_SERVER)])

    async def scenario() -> list[Any]:
        async with session(params) as client:
            names = [tool.name for tool in (await client.list_tools()).tools]
            return [names, await client.call_tool("read_file", {"path": "/home/me/a.md"}),
                    await client.call_tool("read_file", {"path": "/etc/passwd"})]

    names, allowed, refused = asyncio.run(scenario())
    assert names == ["read_file"]   # --hide-never-allowed: the other tools are not on the list
    assert text_of(allowed) == "contents of /home/me/a.md"
    assert refused.isError and text_of(refused) == (
        "Blocked: Reading /etc/passwd is not allowed. (rule BLOCK_SYSTEM_FILES)")
