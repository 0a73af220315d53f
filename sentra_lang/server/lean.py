"""The lean path of ``POST /agent-action``: plain requests decided without FastAPI's routing,
dependency solving and pydantic models.

:class:`LeanAgentAction` is ASGI middleware in front of the application. For ``POST
/agent-action`` it reads the body, parses it with :func:`json.loads` and takes the request only
when every value already has the request model's type (strings, a finite number or null for
``amount``, an object for ``policy_context``) and fits the policy's declared types; it decides and
answers with the pre-encoded event, byte for byte what the FastAPI route answers. Anything else
(malformed JSON, a wrong type, a numeric string, a value the policy refuses, another content
type) goes on to the FastAPI route with the body it has read, so every 422 is the route's own.
Nothing is written for a request the lean path hands on.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sentra_lang.server.compat import decide_values
from sentra_lang.server.gate import Gate

PATH = "/agent-action"
_OPTIONAL_STRINGS = ("target", "notification_type")
_DEFAULTED_STRINGS = ("data_classification", "destination_type")
_JSON_TYPES = (b"application/json",)
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None,
                           separators=(",", ":")).encode
"""What Starlette's ``JSONResponse`` renders with, so the bytes are the route's."""


def plain_event(gate: Gate, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes | None:
    """The encoded event for a plain request; ``None`` when the route must answer it (nothing
    was written then)."""
    for name, header in headers:
        if name == b"content-type":
            if header.split(b";", 1)[0].strip().lower() not in _JSON_TYPES:
                return None
            break
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if data.__class__ is not dict:
        return None
    get = data.get
    agent_id = get("agent_id")
    action_type = get("action_type")
    if agent_id.__class__ is not str or action_type.__class__ is not str:
        return None
    strings: list[str | None] = []
    for key in _OPTIONAL_STRINGS:
        value = get(key)
        if value is not None and value.__class__ is not str:
            return None
        strings.append(value)
    for key in _DEFAULTED_STRINGS:
        value = get(key, "internal")
        if value is not None and value.__class__ is not str:
            return None
        strings.append(value)
    amount = get("amount")
    if amount is not None:
        if amount.__class__ is not float and amount.__class__ is not int:
            return None
        try:
            amount = float(amount)
        except OverflowError:
            return None
        if not math.isfinite(amount):
            return None
    context = get("policy_context", _ABSENT)
    if context is _ABSENT:
        context = {}
    elif context.__class__ is not dict:
        return None
    try:
        event = decide_values(gate, agent_id, action_type, strings[0], amount, strings[1],
                              strings[2], strings[3], context)
    except RequestValidationError:
        return None
    return _encode(event).encode("utf-8")


_ABSENT: Any = object()


class LeanAgentAction:
    """ASGI middleware: the lean path of ``POST /agent-action`` (see the module docstring)."""

    def __init__(self, app: ASGIApp, gate: Gate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        message = await receive()
        if message["type"] != "http.request":
            await self.app(scope, _replay(message, receive), send)
            return
        body = message.get("body", b"")
        if message.get("more_body", False):
            chunks = [body]
            while message.get("more_body", False):
                message = await receive()
                if message["type"] != "http.request":
                    await self.app(scope, _replay(message, receive), send)
                    return
                chunks.append(message.get("body", b""))
            body = b"".join(chunks)
        answer = plain_event(self.gate, scope["headers"], body)
        if answer is None:
            await self.app(scope, _replay({"type": "http.request", "body": body,
                                           "more_body": False}, receive), send)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(answer)).encode()),
                                (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer})


def _replay(first: Message, receive: Receive) -> Receive:
    """``receive`` that gives ``first`` again, then what the server sends."""
    pending = [first]

    async def again() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return again
