"""The FastAPI application: the Sentra-compatible API, ``/v1``, ``/metrics`` and the dashboard."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sentra_runtime.explain import jsonable
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sentra_lang import __version__
from sentra_lang.server import compat, impact, native
from sentra_lang.server.auth import OperatorAuth
from sentra_lang.server.dashboard import snapshot
from sentra_lang.server.events import EventStream
from sentra_lang.server.gate import Gate
from sentra_lang.server.lean import LeanAgentAction
from sentra_lang.server.metrics import CONTENT_TYPE, Metrics

HERE = Path(__file__).parent
MAX_BODY_BYTES = 64 * 1024
TOKEN_VARIABLE = "SENTRA_OPERATOR_TOKEN"


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, before anything reads them whole."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(send)
            return
        received = 0
        started = False

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, sending)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": f"request body larger than {self.limit} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    pass


def create_app(policy: str | os.PathLike[str], db: str | os.PathLike[str] = "sentra.db", *,
               operator_token: str | None = None,
               max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The decision server for the policy file ``policy`` (``.sentra`` or a compiled ``.json``
    table) with state and audit log in the SQLite file ``db``.

    Raises :class:`~sentra_lang.server.gate.PolicyRefused` when the policy does not compile.
    """
    gate = Gate(policy, db)
    operator = OperatorAuth(operator_token)
    metrics = Metrics(gate)
    stream = EventStream(gate, lambda record: native.record_view(record,
                                                                 gate.policy.risk_threshold))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stream.bind(asyncio.get_running_loop())
        try:
            yield
        finally:
            stream.close()
            gate.close()

    app = FastAPI(title="sentra-lang decision server", version=__version__, lifespan=lifespan,
                  description="The Sentra-compatible API, the native `/v1` API, metrics and a "
                              "live dashboard over one compiled policy. See docs/server.md.")
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.state.gate = gate
    app.state.metrics = metrics
    app.include_router(compat.router(gate, operator))
    app.include_router(native.router(gate, operator, stream, metrics))
    impacts = impact.Impact(gate)
    app.include_router(impact.router(impacts))  # audit reads: the same guard as /v1/events

    @app.get("/metrics", tags=["native v1"], response_class=PlainTextResponse,
             summary="Prometheus metrics")
    def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type=CONTENT_TYPE)

    templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                            autoescape=select_autoescape(["html"]))

    @app.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
    def dashboard() -> HTMLResponse:
        served, first = gate.policy, snapshot(gate, impacts)
        page = templates.get_template("dashboard.html").render(
            policy=served, version=__version__, snapshot=first,
            config=json.dumps(_dashboard_config(gate) | {"snapshot": first}).replace("<", "\\u003c"))
        return HTMLResponse(page)

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(LeanAgentAction, gate=gate)
    app.add_middleware(BodyLimit, limit=max_body_bytes)   # outermost: it also limits the lean path
    return app


async def _invalid_request(request: Request, error: Exception) -> JSONResponse:
    """FastAPI's 422 answer, with non-finite numbers in ``input`` spelled as text (JSON has none)."""
    assert isinstance(error, RequestValidationError)
    return JSONResponse(status_code=422, content={"detail": jsonable(jsonable_encoder(error.errors()))})


def _dashboard_config(gate: Gate) -> dict[str, Any]:
    served = gate.policy
    return {"risk_threshold": served.risk_threshold, "strikes": served.strikes,
            "policy": {"name": served.name, "version": served.version, "hash": served.hash}}
