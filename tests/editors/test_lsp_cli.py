"""`sentra-lang lsp` as a command: the transport flag, standard streams (its missing extra is
tested with the others, tests/test_packaging.py)."""

from __future__ import annotations

import subprocess

import pytest

from tests.editors.lsp_client import server_command

pytestmark = pytest.mark.slow

def test_the_server_ends_when_its_editor_goes_away() -> None:
    """Standard input closed without `exit` (the editor crashed): no server is left behind,
    and nothing but the protocol was ever written to standard output."""
    done = subprocess.run([*server_command(), "--stdio"], input=b"", capture_output=True,
                          timeout=60)
    assert done.returncode == 0 and done.stdout == b""


def test_a_message_that_is_not_json_rpc_does_not_end_the_server() -> None:
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}'
    garbage = b"Content-Length: 5\r\n\r\nnope!"
    stream = garbage + b"Content-Length: %d\r\n\r\n" % len(body) + body
    done = subprocess.run([*server_command()], input=stream, capture_output=True, timeout=60)
    assert b'"id": 1' in done.stdout and b'"capabilities"' in done.stdout
    assert done.returncode == 0
