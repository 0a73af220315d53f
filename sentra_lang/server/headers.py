"""Security headers on every answer the server gives (docs/server.md, "Security headers").

The dashboard shows what agents sent (ids, action types, field values) to an operator who holds
the operator token, so its page gets a strict Content-Security-Policy: scripts, styles and
connections from the server itself only, no inline script, no plugin, no frame around it (its
approve, deny and reset buttons cannot be clickjacked). Every other answer is data, never a
document to run: ``default-src 'none'``. FastAPI's ``/docs`` page (Swagger UI, whose script and
styles come from a CDN) gets only the framing rule. Every answer also gets ``nosniff``,
``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer`` and, unless it is a static asset or
says otherwise, ``Cache-Control: no-store`` (the answers hold operator data: the audit log, the
agents' states).

The middleware is the outermost one, so the edge's refusals and the lean decision path carry the
headers too; a header the answer already sets is left as it is.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DASHBOARD_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; "
                    "style-src-attr 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
                    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
"""The dashboard's page. ``style-src-attr 'unsafe-inline'``: the server-rendered risk bars give
their widths in ``style`` attributes (the first paint needs no script); ``<style>`` elements and
styles from elsewhere stay refused, and no agent text ever reaches an attribute unescaped."""
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'"
"""Every other answer: data, nothing in it may load or run anything, nor be framed."""
FRAMING_POLICY = "frame-ancestors 'none'"
"""FastAPI's own ``/docs`` and ``/redoc`` pages, which load Swagger UI and ReDoc from a CDN."""
DASHBOARD_PATHS = frozenset({"/dashboard"})
API_DOC_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
STATIC_PREFIX = "/static/"
COMMON = ((b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
          (b"referrer-policy", b"no-referrer"))


def content_security_policy(path: str) -> str:
    """The Content-Security-Policy of the answer to ``path``."""
    if path in DASHBOARD_PATHS:
        return DASHBOARD_POLICY
    if path in API_DOC_PATHS:
        return FRAMING_POLICY
    return DATA_POLICY


def _headers(policy: str, *, store: bool) -> tuple[tuple[bytes, bytes], ...]:
    cache = ((b"cache-control", b"no-store"),) if store else ()
    return (*COMMON, (b"content-security-policy", policy.encode()), *cache)


DATA_HEADERS = _headers(DATA_POLICY, store=True)
STATIC_HEADERS = _headers(DATA_POLICY, store=False)
HEADERS_BY_PATH = {path: _headers(content_security_policy(path), store=True)
                   for path in DASHBOARD_PATHS | API_DOC_PATHS}


def security_headers(path: str) -> tuple[tuple[bytes, bytes], ...]:
    """The headers every answer to ``path`` carries (unless it sets one of them itself); made
    once, not per request (a decision's answer passes here too)."""
    if path.startswith(STATIC_PREFIX):
        return STATIC_HEADERS
    return HEADERS_BY_PATH.get(path, DATA_HEADERS)


class SecurityHeaders:
    """ASGI middleware adding :func:`security_headers` to the start of every HTTP answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = security_headers(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(item for item in added if item[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
