"""The FastAPI application: the Sentra-compatible API, ``/v1``, ``/metrics`` and the dashboard,
behind the edge (host, content type, body limit and text checks) and the lean decision path.

The security headers (outermost), the edge, the store-fault answers and the lean
``POST /agent-action`` path run in front of FastAPI's own middleware stack
(:class:`DecisionApp`), so a plain decision request does not pass through FastAPI's and
Starlette's layers at all; every other request goes on through them as before, with the
store-fault answers again around the routes."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from sentra_runtime.explain import jsonable
from starlette.types import ASGIApp, Receive, Scope, Send

from sentra_lang import __version__
from sentra_lang.server import compat, dashboard, impact, models, native
from sentra_lang.server.auth import OperatorAuth, ReadAuth, read_security
from sentra_lang.server.edge import LOOPBACK_HOSTS, RequestEdge
from sentra_lang.server.events import EventBroadcast
from sentra_lang.server.faults import FaultTally, StoreFaults
from sentra_lang.server.gate import Gate
from sentra_lang.server.headers import SecurityHeaders
from sentra_lang.server.lean import LeanAgentAction
from sentra_lang.server.metrics import CONTENT_TYPE, Metrics
from sentra_lang.server.store import LogFollower, Reads

HERE = Path(__file__).parent
MAX_BODY_BYTES = 64 * 1024
SECURITY_SCHEMES = {
    "operatorToken": {"type": "http", "scheme": "bearer",
                       "description": "the operator token: resets and reload; reads too"},
    "readToken": {"type": "http", "scheme": "bearer",
                   "description": "the read token (`--read-token-file`): events, agents, policy, "
                                  "metrics, the Impact view and the dashboard's snapshot; the "
                                  "stream also takes it as `?access_token=`"},
}


def create_app(policy: str | os.PathLike[str], db: str | os.PathLike[str] = "sentra.db", *,
               operator_token: str | None = None, read_token: str | None = None,
               allowed_hosts: Iterable[str] = LOOPBACK_HOSTS,
               max_body_bytes: int = MAX_BODY_BYTES,
               metrics_dir: str | os.PathLike[str] | None = None,
               db_answer_timeout: float | None = None) -> FastAPI:
    """The decision server for the policy file ``policy`` (``.sentra`` or a compiled ``.json``
    table) with state and audit log in ``db``: a SQLite file or a ``postgresql://`` URL, which
    other processes and instances may share.

    ``allowed_hosts`` are the names the ``Host`` header may give (``"*"``: any);
    ``metrics_dir`` is the folder the workers of one ``serve --workers N`` share their counters
    in; ``db_answer_timeout`` bounds each wait for a PostgreSQL database's answer (``None``:
    the store's default, 15 s). Raises :class:`~sentra_lang.server.gate.PolicyRefused` when the policy does not compile.
    """
    gate = Gate(policy, db, answer_timeout=db_answer_timeout)
    operator = OperatorAuth(operator_token)
    reader = ReadAuth(read_token, operator_token)
    reads = Reads()
    faults = FaultTally()
    metrics = Metrics(gate, faults, metrics_dir)
    broadcast = EventBroadcast(gate, lambda record: native.record_view(
        record, gate.policy.risk_threshold), Reads())   # its own thread: pages do not delay it
    follower = LogFollower(gate)
    follower.moved.append(broadcast.log_moved)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        broadcast.start()
        follower.start()
        metrics.start()
        try:
            yield
        finally:
            follower.stop()
            metrics.stop()
            await broadcast.close()
            gate.close()

    app = DecisionApp(title="sentra-lang decision server", version=__version__, lifespan=lifespan,
                  description="The Sentra-compatible API, the native `/v1` API, metrics and a "
                              "live dashboard over one compiled policy. See docs/server.md.",
                  generate_unique_id_function=_operation_id)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.state.gate = gate
    app.state.metrics = metrics
    app.state.broadcast = broadcast
    app.state.follower = follower
    impacts = impact.Impact(gate)
    app.include_router(compat.router(gate, operator, reader, reads))
    app.include_router(native.router(gate, operator, reader, broadcast, metrics, reads))
    app.include_router(impact.router(impacts, reader, reads))
    app.include_router(dashboard.router(gate, impacts, reader, reads))

    @app.get("/metrics", tags=["native v1"], response_class=PlainTextResponse,
             summary="Prometheus metrics", operation_id="metrics",
             responses=models.errors(*models.EDGE, 401),
             openapi_extra={"security": read_security(reader)})
    async def prometheus(_: str = Depends(reader)) -> PlainTextResponse:
        return PlainTextResponse(await reads.run(metrics.render), media_type=CONTENT_TYPE)

    @app.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
    async def dashboard_page() -> HTMLResponse:
        return HTMLResponse(await reads.run(dashboard.page, gate, impacts, reader.required))

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    app.add_middleware(StoreFaults, tally=faults)   # the routes: 503 while the database is down
    app.front = SecurityHeaders(RequestEdge(
        StoreFaults(LeanAgentAction(app.stack, gate=gate), tally=faults),
        max_body_bytes=max_body_bytes, allowed_hosts=allowed_hosts))
    return app


class DecisionApp(FastAPI):
    """FastAPI behind :attr:`front`: the security headers (outermost), the edge, the
    store-fault answers and the lean path, which hand every request they do not answer to
    FastAPI's own stack (:meth:`stack`)."""

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is None:
            await self.stack(scope, receive, send)
        else:
            await self.front(scope, receive, send)

    async def stack(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI's application: its middleware stack and routes."""
        await super().__call__(scope, receive, send)


def _operation_id(route: APIRoute) -> str:
    """Routes name their operation ids; this is only the fallback: the function's name."""
    return route.name


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with the bearer schemes and the error models the routes name."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version,
                               description=app.description, routes=app.routes)
        components = document.setdefault("components", {})
        components["securitySchemes"] = SECURITY_SCHEMES
        components.setdefault("schemas", {}).update(models.error_schemas())
        app.openapi_schema = document
    return app.openapi_schema


async def _invalid_request(request: Request, error: Exception) -> JSONResponse:
    """FastAPI's 422 answer, with non-finite numbers in ``input`` spelled as text (JSON has none)."""
    assert isinstance(error, RequestValidationError)
    return JSONResponse(status_code=422, content={"detail": jsonable(jsonable_encoder(error.errors()))})

