"""Operator authentication: a bearer token, compared in constant time.

Operator actions (reset, reload) are refused when the server has no token configured: an
operator action is never open to anyone who can reach the port.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request

OPERATOR = "operator"
"""The operator name written to the audit log for token-authenticated resets."""


class OperatorAuth:
    """A FastAPI dependency that admits a request carrying the operator token."""

    def __init__(self, token: str | None) -> None:
        self.token = token.encode("utf-8") if token else None

    def __call__(self, request: Request) -> str:
        if self.token is None:
            raise HTTPException(403, "operator actions are disabled: the server has no operator "
                                     "token (--operator-token or SENTRA_OPERATOR_TOKEN)")
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        given = credentials.strip().encode("utf-8")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given, self.token):
            raise HTTPException(401, "operator token missing or wrong: send "
                                     "`Authorization: Bearer <token>`",
                                headers={"WWW-Authenticate": "Bearer"})
        return OPERATOR
