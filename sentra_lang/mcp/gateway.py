"""The gateway's message loop: the MCP client on our standard input and output, the wrapped
server as a child process (the `mcp` SDK's stdio client), every message passed through except
the tool calls a decision refuses.

* `tools/call` requests are decided before they are forwarded: the tool name is the action
  type, the arguments are the fields. A call that is not allowed is answered here with an MCP
  tool error (`isError`) carrying the reason, and never reaches the server. A call whose
  parameters are not a tool call's is refused with a JSON-RPC error, never forwarded.
* A call held for review is answered at once with its ticket; with a review wait, it waits in
  a task of its own for the operator's verdict (polling the ticket as the SDK's guard does),
  then goes on if the verdict allows it, else is answered here. A client's cancellation of it
  ends the wait, unanswered.
* `tools/list` answers lose the tools the policy can never allow, when asked to hide them.
* Everything else (initialisation, resources, prompts, completions, logging, notifications,
  ping, progress, the server's own requests and the client's answers) passes unchanged, in
  order. A cancellation of a call answered here is not forwarded (the server never saw it).

Messages from the client are handled one at a time, in order, so a call is forwarded only
after its decision and nothing overtakes it, except that a call waiting for its verdict is
overtaken by the messages that follow it. Standard input is read by a daemon thread, so the
gateway stops at once when the wrapped server ends, without waiting for the client's next line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import re
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import anyio
import mcp.types as types
from anyio.abc import ObjectReceiveStream, ObjectSendStream, TaskGroup
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.message import SessionMessage
from pydantic import ValidationError
from sentra_runtime import Decision, Engine
from sentra_runtime.client import PolicyEngine, RemoteEngine
from sentra_runtime.guard import POLL_SECONDS
from sentra_runtime.review import PENDING
from sentra_runtime.wire import fail_closed

from sentra_lang.mcp.verdicts import refusal_result

logger = logging.getLogger("sentra_lang.mcp")

TOOLS_CALL = "tools/call"
TOOLS_LIST = "tools/list"
CANCELLED = "notifications/cancelled"
ANSWERED_REMEMBERED = 1024
"""How many ids of calls answered here are remembered, to drop their cancellations."""
QUEUED_LINES = 64

Message = types.JSONRPCRequest | types.JSONRPCNotification | types.JSONRPCResponse | \
    types.JSONRPCError
VerdictLookup = Callable[[str], tuple[str, Decision | None]]
"""Where a review ticket stands: ``(status, the verdict's decision or None)``."""


@dataclass(frozen=True)
class Held:
    """A call held for review that waits for its verdict (the gateway's review wait)."""

    request: types.JSONRPCRequest
    decision: Decision
    wait: anyio.CancelScope
    """Cancelled by the client's cancellation of the call."""


class Gateway:
    """Decides each tool call of one agent with ``decider`` (an engine or a remote one), and
    hides from tool lists the tools ``hidden`` names (``None``: hide nothing). A call held for
    review waits up to ``review_wait`` seconds for the operator's verdict, asking every
    ``poll_seconds`` (0: answered at once). ``run`` needs asyncio's event loop
    (``asyncio.run``)."""

    def __init__(self, decider: PolicyEngine, agent_id: str,
                 hidden: Callable[[str], bool] | None = None, *, offload: bool = True,
                 review_wait: float = 0.0, poll_seconds: float = POLL_SECONDS) -> None:
        if not (math.isfinite(review_wait) and review_wait >= 0):
            raise ValueError(f"review_wait must be a finite number of seconds, at least 0, "
                             f"not {review_wait}")
        if not (math.isfinite(poll_seconds) and poll_seconds > 0):
            raise ValueError(f"poll_seconds must be a finite number of seconds above 0, not "
                             f"{poll_seconds}")
        self.decider = decider
        self.agent_id = agent_id
        self.hidden = hidden
        self.offload = offload
        """Decide in a worker thread (a remote engine, which may wait for its deadline), so that
        the server's messages keep flowing meanwhile. An embedded engine decides in the event
        loop: a decision takes about 0.1 ms on SQLite, less than handing it to a thread."""
        self.verdict_lookup = verdict_lookup(decider) if review_wait > 0 else None
        """The runtime's own lookup of a ticket's verdict (the one a guard's ``wait`` polls);
        None: held calls are answered at once."""
        self.review_wait = review_wait if self.verdict_lookup is not None else 0.0
        self.poll_seconds = poll_seconds
        self._lists: set[types.RequestId] = set()
        self._answered: deque[types.RequestId] = deque(maxlen=ANSWERED_REMEMBERED)
        self._waiting: dict[types.RequestId, anyio.CancelScope] = {}

    async def run(self, server: StdioServerParameters) -> bool:
        """Serve until the client or the server ends the session; whether the client did."""
        upstream = _Upstream(sys.stdin.fileno(), sys.stdout.buffer)
        client_ended = False
        async with stdio_client(server) as (server_read, server_write), \
                anyio.create_task_group() as tasks:
            async def from_client() -> None:
                nonlocal client_ended
                client_ended = await self._from_client(upstream, server_write, tasks)
                tasks.cancel_scope.cancel()

            async def from_server() -> None:
                nonlocal client_ended
                await self._from_server(server_read, upstream)
                client_ended = upstream.gone
                tasks.cancel_scope.cancel()

            tasks.start_soon(from_client)
            tasks.start_soon(from_server)
        return client_ended or upstream.gone

    # -- client to server ------------------------------------------------------------------------

    async def _from_client(self, upstream: _Upstream, server: ObjectSendStream[SessionMessage],
                           tasks: TaskGroup) -> bool:
        """Pass the client's messages on until one side ends; whether it was the client. A call
        that waits for its verdict waits in a task of ``tasks``."""
        while (line := await upstream.read()) is not None:
            try:
                parsed = types.JSONRPCMessage.model_validate_json(line)
            except ValidationError as error:
                await self._unreadable(upstream, line, error)
                continue
            answer = await self._handle(parsed.root)
            if isinstance(answer, Held):
                self._waiting[answer.request.id] = answer.wait
                tasks.start_soon(self._await_verdict, answer, upstream, server, tasks)
            elif answer is not None:
                await upstream.write(answer)
            elif not self._dropped(parsed.root):
                try:
                    await server.send(SessionMessage(parsed))
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return False   # the server has ended
            if upstream.gone:
                return True
        return True

    async def _handle(self, message: Message) -> Message | Held | None:
        """The answer to give the client here (the message then goes no further), a call to
        hold until its verdict, or None (the message goes on)."""
        if isinstance(message, types.JSONRPCRequest):
            if message.method == TOOLS_CALL:
                if message.id in self._waiting:
                    return _error(message.id, types.INVALID_REQUEST, f"request id {message.id!r} "
                                  "is in use by a call that waits for its review verdict")
                return await self._decide(message)
            if _looks_like_a_tool_call(message.method):
                return _error(message.id, types.METHOD_NOT_FOUND,
                              f"method `{message.method}` not found (did you mean `tools/call`?)")
            if message.method == TOOLS_LIST and self.hidden is not None:
                self._lists.add(message.id)
        return None

    def _dropped(self, message: Message) -> bool:
        """A tool call sent as a notification (it would run undecided), or the cancellation of
        a call the server never saw (that of a call waiting for its verdict ends the wait)."""
        if not isinstance(message, types.JSONRPCNotification):
            return False
        if _looks_like_a_tool_call(message.method):
            logger.warning("sentra-lang mcp-proxy: dropped `%s` sent as a notification: a tool "
                           "call must be a request", message.method)
            return True
        if message.method != CANCELLED:
            return False
        request_id = (message.params or {}).get("requestId")
        waiting = None if isinstance(request_id, bool) or not isinstance(request_id, (str, int)) \
            else self._waiting.pop(request_id, None)
        if waiting is not None:
            waiting.cancel()
            return True
        return request_id in self._answered

    async def _decide(self, request: types.JSONRPCRequest) -> Message | Held | None:
        """None when the call may go on; a call held for review to wait for its verdict;
        otherwise the answer that refuses it."""
        try:
            params = types.CallToolRequestParams.model_validate(request.params or {})
        except ValidationError as error:
            return _error(request.id, types.INVALID_PARAMS,
                          f"invalid tools/call parameters: {_first_problem(error)}")
        arguments = params.arguments or {}
        decision = (await anyio.to_thread.run_sync(self._evaluate, params.name, arguments)
                    if self.offload else self._evaluate(params.name, arguments))
        if decision.allowed:
            return None
        logger.info("sentra-lang mcp-proxy: %s %s of agent %r: %s", decision.label, params.name,
                    self.agent_id, decision.reason)
        if self.review_wait and decision.outcome == "review" and decision.ticket is not None:
            return Held(request, decision, anyio.CancelScope())
        return self._refuse(request.id, decision)

    def _refuse(self, request_id: types.RequestId, decision: Decision,
                status: str = PENDING) -> types.JSONRPCResponse:
        self._answered.append(request_id)
        return types.JSONRPCResponse(jsonrpc="2.0", id=request_id, result=refusal_result(
            decision, self.review_wait, status))

    async def _await_verdict(self, held: Held, upstream: _Upstream,
                             server: ObjectSendStream[SessionMessage],
                             tasks: TaskGroup) -> None:
        """Wait for the verdict on ``held``'s ticket; then forward the call if the verdict
        allows it, else answer it here. Nothing when the client cancelled the call."""
        request = held.request
        try:
            with held.wait:
                status, verdict = await self._verdict_within(held.decision.ticket or "")
        finally:
            if self._waiting.get(request.id) is held.wait:
                del self._waiting[request.id]
        if held.wait.cancel_called:
            logger.info("sentra-lang mcp-proxy: the client cancelled call %r, which waited for "
                        "the verdict on ticket %s", request.id, held.decision.ticket)
            return
        if verdict is not None and verdict.allowed:
            logger.info("sentra-lang mcp-proxy: ticket %s approved: forwarding call %r",
                        held.decision.ticket, request.id)
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await server.send(SessionMessage(types.JSONRPCMessage(request)))
            return
        if verdict is not None:
            logger.info("sentra-lang mcp-proxy: ticket %s: %s", held.decision.ticket,
                        verdict.reason)
        await upstream.write(self._refuse(request.id, verdict or held.decision, status))
        if upstream.gone:
            tasks.cancel_scope.cancel()

    async def _verdict_within(self, ticket: str) -> tuple[str, Decision | None]:
        """The ticket's status and verdict once it has one (or ended without one), or
        ``pending`` and None at the end of the review wait; polled every
        :attr:`poll_seconds`, as a guard's ``wait`` polls (sentra_runtime.guard.awaited)."""
        deadline = anyio.current_time() + self.review_wait
        while True:
            status, verdict = await self._lookup(ticket)
            if verdict is not None or status != PENDING:
                return status, verdict
            left = deadline - anyio.current_time()
            if left <= 0:
                return PENDING, None
            await anyio.sleep(min(self.poll_seconds, left))

    async def _lookup(self, ticket: str) -> tuple[str, Decision | None]:
        """Where the ticket stands; still pending when it cannot be read now (the wait goes
        on, and at its end the call gets the review answer)."""
        lookup = self.verdict_lookup
        assert lookup is not None
        try:
            if self.offload:
                return await anyio.to_thread.run_sync(lookup, ticket, abandon_on_cancel=True)
            return lookup(ticket)
        except Exception as error:   # an embedded store that fails: wait on
            logger.warning("sentra-lang mcp-proxy: cannot read review ticket %s (%s: %s)",
                           ticket, type(error).__name__, error)
            return PENDING, None

    def _evaluate(self, tool: str, arguments: dict[str, Any]) -> Decision:
        try:
            return self.decider.evaluate(self.agent_id, tool, arguments)
        except Exception as error:   # an embedded store that fails: the call is refused
            logger.exception("sentra-lang mcp-proxy: deciding %s failed", tool)
            return fail_closed(self.agent_id, tool, f"Fail closed: the gateway could not "
                                                    f"decide ({type(error).__name__}: {error})")

    async def _unreadable(self, upstream: _Upstream, line: bytes, error: ValidationError) -> None:
        """A line that is not a JSON-RPC message: answered with an error when it has an id
        (so the client does not wait forever), never forwarded."""
        logger.warning("sentra-lang mcp-proxy: a message from the client is not JSON-RPC, not "
                       "forwarded: %s", _first_problem(error))
        request_id = _request_id(line)
        if request_id is not None:
            await upstream.write(_error(request_id, types.INVALID_REQUEST,
                                        "not a JSON-RPC 2.0 message"))

    # -- server to client ------------------------------------------------------------------------

    async def _from_server(self, server: ObjectReceiveStream[SessionMessage | Exception],
                           upstream: _Upstream) -> None:
        async for item in server:
            if isinstance(item, Exception):
                logger.warning("sentra-lang mcp-proxy: a message from the server is not "
                               "JSON-RPC, not forwarded: %s", item)
                continue
            message = item.message.root
            if isinstance(message, (types.JSONRPCResponse, types.JSONRPCError)) \
                    and message.id in self._lists:
                self._lists.discard(message.id)
                if isinstance(message, types.JSONRPCResponse):
                    message.result = self._visible(message.result)
            await upstream.write(message)
            if upstream.gone:
                return

    def _visible(self, result: dict[str, Any]) -> dict[str, Any]:
        tools = result.get("tools")
        if self.hidden is None or not isinstance(tools, list):
            return result
        hidden = self.hidden
        return {**result, "tools": [tool for tool in tools if not (
            isinstance(tool, dict) and isinstance(tool.get("name"), str)
            and hidden(tool["name"]))]}


def verdict_lookup(decider: PolicyEngine) -> VerdictLookup | None:
    """The runtime's lookup of a review ticket's verdict for ``decider``: the same one its
    guard polls (``Asker.verdict``); None for an engine the runtime does not know."""
    if isinstance(decider, (Engine, RemoteEngine)):
        return decider.verdict
    return None


_STRUCTURE = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[\]{}]', re.DOTALL)
"""A JSON string (skipped whole, whatever brackets it holds) or a bracket."""


def _request_id(line: bytes) -> types.RequestId | None:
    """The id of the JSON object ``line``, read from its top level only: what its nested
    values hold (nesting thousands deep, integers of thousands of digits) and bytes that are
    not UTF-8 must not keep a request that the gateway refuses from being answered. None when
    it has no string or integer id."""
    text = line.decode("utf-8", "replace")
    flat, kept, depth = [], 0, 0
    for token in _STRUCTURE.finditer(text):
        if token.group() in ("[", "{"):
            depth += 1
            if depth == 2:   # a nested value: written as null, its content skipped
                flat.append(text[kept:token.start()] + "null")
        elif token.group() in ("]", "}"):
            depth -= 1
            if depth == 1:
                kept = token.end()
    try:
        value = json.loads("".join(flat) + text[kept:], parse_int=_short_int)
    except (ValueError, RecursionError):   # not JSON; or a nested value left open
        return None
    request_id = value.get("id") if isinstance(value, dict) else None
    return request_id if isinstance(request_id, (str, int)) \
        and not isinstance(request_id, bool) else None


def _short_int(digits: str) -> int | None:
    """An integer of JSON text, or None past what Python converts
    (``sys.get_int_max_str_digits``)."""
    try:
        return int(digits)
    except ValueError:
        return None


def _looks_like_a_tool_call(method: str) -> bool:
    """``tools/call`` spelled in any case or with white space: a lenient server might run it."""
    return "".join(method.split()).lower() == TOOLS_CALL


def _error(request_id: types.RequestId, code: int, message: str) -> types.JSONRPCError:
    return types.JSONRPCError(jsonrpc="2.0", id=request_id,
                              error=types.ErrorData(code=code, message=message))


def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem.get("loc", ()))
    return f"{where}: {problem.get('msg', '')}" if where else str(problem.get("msg", ""))


class _Upstream:
    """The client's side: JSON-RPC lines on standard input and output.

    Input is read by a daemon thread and handed to the event loop, at most
    :data:`QUEUED_LINES` lines ahead, so a read that waits for the client never keeps the
    gateway from stopping. Output is written from the event loop, one line per message, in
    order (a client that stops reading stops the gateway, as it would stop the server).
    """

    def __init__(self, reader: int, writer: BinaryIO) -> None:
        self._writer = writer
        self.gone = False
        """The client stopped reading (its end of standard output is closed)."""
        self._loop = asyncio.get_running_loop()
        self._lines: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._room = threading.BoundedSemaphore(QUEUED_LINES)
        threading.Thread(target=self._read_all, args=(reader,), daemon=True,
                         name="sentra-lang mcp-proxy stdin").start()

    def _read_all(self, reader: int) -> None:
        """Lines from the file descriptor ``reader``, read with ``os.read``: a daemon thread
        blocked in a buffered file's read would hold its lock when the interpreter exits."""
        line = bytearray()
        try:
            while chunk := os.read(reader, 65536):
                start = 0
                while (end := chunk.find(b"\n", start)) >= 0:
                    line += chunk[start:end]
                    self._put(line)
                    start = end + 1
                line += chunk[start:]
        except OSError as error:
            logger.warning("sentra-lang mcp-proxy: standard input failed: %s", error)
        self._put(line)
        self._hand(None)

    def _put(self, line: bytearray) -> None:
        if line.strip():
            self._room.acquire()
            self._hand(bytes(line))
        line.clear()

    def _hand(self, item: bytes | None) -> None:
        with contextlib.suppress(RuntimeError):   # the loop is closed: the gateway has ended
            self._loop.call_soon_threadsafe(self._lines.put_nowait, item)

    async def read(self) -> bytes | None:
        """The next line from the client; None at its end."""
        line = await self._lines.get()
        if line is not None:
            self._room.release()
        return line

    async def write(self, message: Message) -> None:
        line = types.JSONRPCMessage(message).model_dump_json(by_alias=True, exclude_none=True)
        try:
            self._writer.write((line + "\n").encode("utf-8"))
            self._writer.flush()
        except OSError:   # a broken pipe: the client has gone
            self.gone = True
