"""The decision server: `sentra-lang serve` (FastAPI on uvicorn). See docs/server.md."""

from __future__ import annotations

from sentra_lang.server.app import create_app

__all__ = ["create_app"]
