"""Bearer tokens: the operator token (resets, reload) and the optional read token (event, agent,
policy and metrics reads), compared in constant time on their UTF-8 bytes.

Operator actions are refused (403) when the server has no operator token: an operator action is
never open to anyone who can reach the port. Reads are open when the server has no read token;
the operator token opens reads too. See docs/server.md, "Tokens".
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request
from sentra_runtime.remote import token_problem

OPERATOR = "operator"
"""The operator name written to the audit log for token-authenticated resets."""
READER = "reader"

OPERATOR_SECURITY: list[dict[str, list[str]]] = [{"operatorToken": []}]


def read_security(reader: ReadAuth) -> list[dict[str, list[str]]]:
    """A read's OpenAPI security: the read or the operator token; none when reads are open."""
    return [{"readToken": []}, {"operatorToken": []}, *([] if reader.required else [{}])]


class TokenRefused(ValueError):
    """A configured token that could never be sent or matched (surrounding white space, control
    characters, empty)."""


def checked_token(token: str, source: str) -> str:
    """``token`` when a client can send it as ``Authorization: Bearer <token>``; raises
    :class:`TokenRefused` naming ``source`` otherwise.

    Surrounding white space is refused rather than stripped: HTTP trims it from header values,
    so such a token could never match, and stripping it silently would accept a token the
    operator did not write.
    """
    if not token:
        raise TokenRefused(f"the token from {source} is empty")
    problem = token_problem(token)
    if problem is not None:
        raise TokenRefused(f"the token from {source} {problem}")
    return token


def bearer(request: Request) -> bytes | None:
    """The raw bytes of the request's ``Authorization: Bearer`` credentials (``None`` without
    them). Raw bytes, because Starlette decodes header values as latin-1 and a token is compared
    as UTF-8."""
    headers: list[tuple[bytes, bytes]] = request.scope["headers"]
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credentials = value.partition(b" ")
            if scheme.lower() == b"bearer":
                return credentials.strip(b" \t")
            return None
    return None


def _matches(given: bytes | None, token: bytes | None) -> bool:
    return given is not None and token is not None and hmac.compare_digest(given, token)


def _refused(what: str) -> HTTPException:
    return HTTPException(401, f"{what} token missing or wrong: send `Authorization: Bearer "
                              "<token>`", headers={"WWW-Authenticate": "Bearer"})


class OperatorAuth:
    """A FastAPI dependency that admits a request carrying the operator token."""

    def __init__(self, token: str | None) -> None:
        self.token = token.encode("utf-8") if token else None

    async def __call__(self, request: Request) -> str:
        if self.token is None:
            raise HTTPException(403, "operator actions are disabled: the server has no operator "
                                     "token (--operator-token-file, SENTRA_OPERATOR_TOKEN or "
                                     "--operator-token)")
        if not _matches(bearer(request), self.token):
            raise _refused("operator")
        return OPERATOR


class ReadAuth:
    """A FastAPI dependency for reads: open without a read token; with one, the read token or
    the operator token. The event stream also takes the token as ``?access_token=``, because a
    browser's ``EventSource`` cannot send headers."""

    def __init__(self, token: str | None, operator_token: str | None) -> None:
        self.token = token.encode("utf-8") if token else None
        self.operator = operator_token.encode("utf-8") if operator_token else None

    @property
    def required(self) -> bool:
        return self.token is not None

    def admits(self, given: bytes | None) -> bool:
        return self.token is None or _matches(given, self.token) or _matches(given, self.operator)

    async def __call__(self, request: Request) -> str:
        given = bearer(request)
        if given is None and request.url.path.endswith("/stream"):
            query = request.query_params.get("access_token")
            given = None if query is None else query.encode("utf-8")
        if not self.admits(given):
            raise _refused("read")
        return READER
