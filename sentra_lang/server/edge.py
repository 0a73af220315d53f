"""The server's edge: what every HTTP request must be before a route sees it.

:class:`RequestEdge` is the outermost ASGI middleware. In order, it refuses:

1. a ``Host`` header that names no allowed host (DNS rebinding), none, or more than one: 400;
2. a path or query string that is not UTF-8 once percent-decoded: 422;
3. for a method with a body (``POST``, ``PUT``, ``PATCH``): a body that is not declared as JSON
   (``application/json`` or ``application/*+json``; a request without a body may omit the
   type): 415, so a web page cannot post a "simple" cross-site request (``text/plain``, a
   form);
4. a body over the limit, declared or chunked: 413;
5. a body that is not UTF-8 or not JSON: 422; JSON whose strings hold lone surrogates (``"\\ud800"``
   cannot be stored or answered as UTF-8) or whose numbers are not finite (``NaN``, ``1e999``):
   422 naming the field.

The body, read whole here (the limit keeps it small), goes on to the application; its parsed JSON
is left in ``scope`` (:data:`PARSED`) for the lean ``/agent-action`` path. Nothing behind the edge
sees a request it refuses, so nothing is written for one. See docs/server.md, "The edge".
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import urllib.parse
from collections.abc import Iterable, Iterator
from typing import Any

from sentra_runtime import jsontext
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
ANY_HOST = "*"
PARSED = "sentra.json"
"""The ``scope`` key under which the edge leaves a request body's parsed JSON."""
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
"""The methods whose bodies the edge reads and checks (the others carry none here)."""
MAX_REPORTED = 10
"""At most this many field errors in one 422 (a hostile body may hold thousands)."""

Loc = tuple[str | int, ...]


class RequestEdge:
    """ASGI middleware: the checks of the module docstring, before the application."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, allowed_hosts: Iterable[str]) -> None:
        self.app = app
        self.limit = max_body_bytes
        hosts = {normal_host(host) for host in allowed_hosts}
        self.any_host = ANY_HOST in hosts
        self.hosts = frozenset(hosts - {ANY_HOST})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        hosts = header_values(headers, b"host")
        if len(hosts) > 1 or not self.any_host and (
                not hosts or host_name(hosts[0]) not in self.hosts):
            await answer(send, 400, {"detail": _host_refusal(hosts)})
            return
        problems = address_problems(scope)
        if problems:
            await answer(send, 422, {"detail": problems})
            return
        if scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = header(headers, b"content-length")
        chunked = header(headers, b"transfer-encoding") is not None
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await answer(send, 413, self._too_large())
            return
        has_body = chunked or (declared is not None and int(declared) > 0)
        kinds = header_values(headers, b"content-type")   # one, and JSON: both sides see it
        if (has_body or kinds) and (len(kinds) != 1 or not is_json_type(kinds[0])):
            await answer(send, 415, {"detail": _type_refusal(kinds)})
            return
        try:
            body = await self._body(receive)
        except ClientLeft:
            return
        if body is None:
            await answer(send, 413, self._too_large())
            return
        if body:
            parsed, problems = parse_body(body)
            if problems:
                await answer(send, 422, {"detail": problems}, close=False)
                return
            scope[PARSED] = parsed
        await self.app(scope, _replay(body, receive), send)

    async def _body(self, receive: Receive) -> bytes | None:
        """The whole body; ``None`` past the limit. Raises :class:`ClientLeft`."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise ClientLeft
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self) -> dict[str, str]:
        return {"detail": f"request body larger than {self.limit} bytes"}


class ClientLeft(Exception):
    """The client disconnected before its body was read."""


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` that gives the whole ``body`` once, then what the server sends."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def again() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return again


async def answer(send: Send, status: int, content: Any, *, close: bool = True) -> None:
    """A JSON answer; ``close`` also closes the connection (when the rest of a refused body is
    unread, the connection cannot carry another request)."""
    body = json.dumps(content, ensure_ascii=False).encode("utf-8")
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def header_values(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    """Every value of the header ``name``, in order."""
    return [value for key, value in headers if key == name]


# -- hosts --------------------------------------------------------------------------------------

def is_loopback(host: str) -> bool:
    """Whether a bind address (``--host``) is a loopback one: ``localhost``, 127.0.0.0/8, ``::1``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, extra: Iterable[str]) -> list[str]:
    """The Host header names a server bound to ``host`` answers: the loopback names, the bound
    address (unless it is a wildcard) and the ``extra`` ones (``--allowed-host``)."""
    hosts = [*LOOPBACK_HOSTS, *extra]
    bound = host.strip("[]")
    if bound not in ("0.0.0.0", "::", ""):
        hosts.append(bound)
    return hosts


def normal_host(host: str) -> str:
    """An allowed-host entry as compared: lower case, IPv6 without brackets."""
    return host.strip().lower().removeprefix("[").removesuffix("]")


def host_name(value: bytes) -> str:
    """The host of a ``Host`` header value, without its port, lower-cased."""
    text = value.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    return text.rpartition(":")[0] if text.count(":") == 1 else text


def _host_refusal(hosts: list[bytes]) -> str:
    if not hosts:
        return "the request has no Host header"
    if len(hosts) > 1:   # RFC 9112, 3.2: a server must refuse it (a proxy may read another)
        return f"the request has {len(hosts)} Host headers; HTTP allows one"
    shown = hosts[0].decode("latin-1")
    return (f"host `{shown}` is not allowed: the server answers only the hosts it was told "
            "(sentra-lang serve --allowed-host NAME), against DNS rebinding")


# -- content types ------------------------------------------------------------------------------

def is_json_type(value: bytes | None) -> bool:
    """``application/json`` or ``application/<something>+json``, with no charset but UTF-8."""
    if value is None:
        return False
    kind, *parameters = value.decode("latin-1").split(";")
    kind = kind.strip().lower()
    if kind != "application/json" and not (kind.startswith("application/")
                                           and kind.endswith("+json")):
        return False
    for parameter in parameters:
        name, _, setting = parameter.partition("=")
        if name.strip().lower() == "charset" and \
                setting.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


def _type_refusal(kinds: list[bytes]) -> str:
    said = "no content type" if not kinds else " and ".join(
        f"`{kind.decode('latin-1')}`" for kind in kinds)
    return (f"a request body must be JSON (`Content-Type: application/json`), not {said}: "
            "other types are what a web page can post across sites")


# -- text and numbers ---------------------------------------------------------------------------

def address_problems(scope: Scope) -> list[dict[str, Any]]:
    """422 details for a path or query string that is not UTF-8 once percent-decoded."""
    problems: list[dict[str, Any]] = []
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    if not _utf8(urllib.parse.unquote_to_bytes(raw_path)):
        problems.append(_text_error(("path",), "the path is not UTF-8 once percent-decoded",
                                    raw_path.decode("latin-1")))
    query = scope.get("query_string", b"")
    if query:
        for pair in query.split(b"&"):
            name, _, value = pair.partition(b"=")
            for part in (name, value):
                if not _utf8(urllib.parse.unquote_to_bytes(part.replace(b"+", b" "))):
                    shown = name.decode("latin-1")
                    problems.append(_text_error(("query", shown), "the query parameter is not "
                                                "UTF-8 once percent-decoded", pair.decode("latin-1")))
                    break
    return problems[:MAX_REPORTED]


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def parse_body(body: bytes) -> tuple[Any, list[dict[str, Any]]]:
    """The body's JSON and the 422 details of what makes it unacceptable (none when it is)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, [{"type": "utf8", "loc": ["body"], "input": None,
                       "msg": f"the body is not UTF-8 (invalid byte at offset {error.start})"}]
    try:
        parsed = jsontext.loads(text)
    except jsontext.JSONTextError as error:
        where: list[str | int] = ["body"] if error.position is None else ["body", error.position]
        return None, [_invalid_json(where, error.problem)]
    if _SUSPECT.search(text) is None:
        return parsed, []
    return parsed, list(_value_problems(parsed))[:MAX_REPORTED]


_SUSPECT = re.compile(r"\\u|NaN|Infinity|[0-9][eE]|[0-9]{300}")
"""What JSON text needs to hold for its parsed value to have a lone surrogate (only an escape
gives one: the text itself is UTF-8) or a number that is not finite (``NaN``, ``Infinity``, or
a magnitude past 1e308, which takes an exponent or some 309 digits). Text without any of them
is not walked (:func:`_value_problems`); text with them is, and may still be fine."""


def _invalid_json(loc: list[str | int], problem: str) -> dict[str, Any]:
    return {"type": "json_invalid", "loc": loc, "input": {}, "msg": "JSON decode error",
            "ctx": {"error": problem}}


def _value_problems(parsed: Any) -> Iterator[dict[str, Any]]:
    """Lone surrogates in keys and strings, and non-finite numbers, anywhere in ``parsed``."""
    pending: list[tuple[Loc, Any]] = [(("body",), parsed)]
    while pending:
        loc, value = pending.pop()
        if isinstance(value, str):
            if _has_surrogate(value):
                yield _text_error(loc, "the string holds a lone surrogate, which is not text",
                                  value)
        elif isinstance(value, float):
            if not math.isfinite(value):
                yield {"type": "finite_number", "loc": [*map(_shown, loc)],
                       "msg": "Input should be a finite number", "input": str(value)}
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                if _has_surrogate(key):
                    yield _text_error((*loc, key), "the key holds a lone surrogate, which is "
                                      "not text", key)
                pending.append(((*loc, key), item))
        elif isinstance(value, list):
            pending.extend(((*loc, index), item) for index, item in reversed(list(enumerate(value))))


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _shown(part: str | int) -> str | int:
    """A location part or input as an answer can carry it: lone surrogates as ``\\udXXX``."""
    if isinstance(part, str):
        return part.encode("utf-8", "backslashreplace").decode("utf-8")
    return part


def _text_error(loc: Loc, message: str, value: str) -> dict[str, Any]:
    return {"type": "unicode", "loc": [*map(_shown, loc)], "msg": message,
            "input": _shown(value)}
