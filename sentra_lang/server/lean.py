"""The lean path of ``POST /agent-action`` and ``POST /v1/decide``: plain requests decided
without FastAPI's routing, dependency solving and pydantic models.

:class:`LeanAgentAction` is ASGI middleware behind the edge (:mod:`sentra_lang.server.edge`),
which has read the body, checked it and parsed its JSON. For either path with
``Content-Type: application/json`` the lean path takes the request only when every value already
has the request model's type (``/agent-action``: strings, a finite number or null for
``amount``, an object for ``policy_context``; ``/v1/decide``: string ``agent_id`` and ``action``,
an object for ``fields``, no other key) and fits the policy's declared types; it decides and
answers byte for byte what the FastAPI route answers. Anything else (a wrong type, a numeric
string, a value the policy refuses) goes on to the FastAPI route, so every 422 is the route's
own. Nothing is written for a request the lean path hands on.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.exceptions import RequestValidationError
from sentra_runtime.sentra_api import REQUEST_FIELDS
from starlette.types import ASGIApp, Receive, Scope, Send

from sentra_lang.server.compat import NotANumber, decide_values, read_number
from sentra_lang.server.edge import PARSED, header
from sentra_lang.server.gate import Gate
from sentra_lang.server.native import decide_request

PATH = "/agent-action"
V1_PATH = "/v1/decide"
_NUMBER_FIELDS = ("amount",)
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None,
                           separators=(",", ":")).encode
"""What Starlette's ``JSONResponse`` renders with, so the bytes are the route's."""


async def plain_event(gate: Gate, data: Any) -> bytes | None:
    """The encoded event for a plain request (its parsed JSON, already checked by the edge:
    text is Unicode, numbers are finite); ``None`` when the route must answer it (nothing was
    written then)."""
    if data.__class__ is not dict:
        return None
    get = data.get
    agent_id = get("agent_id")
    action_type = get("action_type")
    if agent_id.__class__ is not str or action_type.__class__ is not str:
        return None
    sent: dict[str, Any] = {}
    for name in REQUEST_FIELDS:
        if name not in data:
            continue
        value = data[name]
        if value is not None:
            kind = value.__class__
            if name in _NUMBER_FIELDS:
                if kind is not int and kind is not float or not _finite(value):
                    return None
            elif kind is not str:
                return None
        sent[name] = value
    context = get("policy_context", _ABSENT)
    if context is _ABSENT:
        context = {}
    elif context.__class__ is not dict:
        return None
    extra = None
    if len(data) > len(sent) + 2 + ("policy_context" in data):   # keys beyond the request's
        extra = {key: value for key, value in data.items() if key not in _REQUEST_KEYS}
    try:
        event = await decide_values(gate, agent_id, action_type, sent, context, extra)
    except RequestValidationError:
        return None
    return _encode(event).encode("utf-8")


async def plain_decision(gate: Gate, data: Any) -> bytes | None:
    """The encoded answer for a plain ``/v1/decide`` request (its parsed JSON, already checked
    by the edge); ``None`` when the route must answer it (nothing was written then)."""
    if data.__class__ is not dict:
        return None
    agent_id = data.get("agent_id")
    action = data.get("action")
    fields = data.get("fields", _ABSENT)
    if fields is _ABSENT:
        fields = {}
    elif fields.__class__ is not dict:
        return None
    if agent_id.__class__ is not str or action.__class__ is not str \
            or len(data) != 2 + ("fields" in data):   # another key: the route refuses it
        return None
    try:
        answer = await decide_request(gate, agent_id, action, fields)
    except RequestValidationError:
        return None
    return _encode(answer).encode("utf-8")


_ABSENT: Any = object()
_REQUEST_KEYS = frozenset(("agent_id", "action_type", "policy_context", *REQUEST_FIELDS))


def _finite(number: int | float) -> bool:
    try:
        read_number(number)
    except NotANumber:
        return False
    return True


class LeanAgentAction:
    """ASGI middleware: the lean path of ``POST /agent-action`` and ``POST /v1/decide`` (see
    the module docstring)."""

    def __init__(self, app: ASGIApp, gate: Gate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lean = _LEAN.get(scope["path"]) if scope["type"] == "http" else None
        if lean is None or scope["method"] != "POST" or PARSED not in scope \
                or not _plain_json(scope["headers"]):
            await self.app(scope, receive, send)
            return
        answer = await lean(self.gate, scope[PARSED])
        if answer is None:
            await self.app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(answer)).encode()),
                                (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer})


_LEAN = {PATH: plain_event, V1_PATH: plain_decision}
"""The lean path of each path it serves."""


def _plain_json(headers: list[tuple[bytes, bytes]]) -> bool:
    kind = header(headers, b"content-type")
    return kind is not None and kind.split(b";", 1)[0].strip().lower() == b"application/json"
