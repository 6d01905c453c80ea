"""The FastAPI application: chat API, OpenAI-compatible API, pages API, and the static chat page."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from lector.llm.backend import Backend
from lector.tools.base import Tool
from lector.webui import chat_api, documents_api, openai_api, pages_api
from lector.webui.config import ServerConfig
from lector.webui.guard import Guard
from lector.webui.http_errors import install_error_handlers
from lector.webui.ingest import Ingester
from lector.webui.state import AppState, ModelLoad

STATIC = Path(__file__).parent / "static"


def create_app(
    config: ServerConfig | None = None,
    *,
    backend: Backend | None = None,
    backend_factory: Callable[[str | None], Backend] | None = None,
    extra_tools: list[Tool] | None = None,
    on_model_ready: Callable[[ModelLoad], None] | None = None,
) -> FastAPI:
    """The app (FastAPI wrapped in the guard). `backend` overrides the configured model (tests, benches).

    The model starts loading in the background when the app starts (`GET /api/status` tells how far it is);
    `on_model_ready` hears when it is ready or failed.
    """
    config = config or ServerConfig()
    state = AppState(config, backend=backend, backend_factory=backend_factory, extra_tools=extra_tools)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ingester = Ingester(state)
        app.state.ingester = ingester
        ingester.start()
        state.preload(on_model_ready)
        yield
        await ingester.stop()
        state.close()

    app = FastAPI(
        title="Lector",
        version="0.1.0",
        description="Chat with tools, long-document questions, and a library of saved web pages. "
        "Every route but /health needs 'Authorization: Bearer <token>'.",
        lifespan=lifespan,
        docs_url=None,  # served below from vendored Swagger UI: FastAPI's page loads it from a CDN
        redoc_url=None,
    )
    app.state.lector = state

    install_error_handlers(app)

    @app.get("/health", tags=["meta"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/status", tags=["meta"])
    def status() -> dict[str, Any]:
        """Whether the model is loading, ready or failed, its name, and a message (how it runs, or why it failed)."""
        return {"model": state.model.as_json()}

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/docs", include_in_schema=False)
    def docs() -> FileResponse:
        return FileResponse(STATIC / "docs.html")

    app.include_router(chat_api.router)
    app.include_router(openai_api.router)
    app.include_router(pages_api.router)
    app.include_router(documents_api.router)
    if STATIC.exists():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")

    app.add_middleware(
        Guard,
        token=state.token,
        allowed_hosts=config.host_allowlist(),
        max_body=config.max_body_bytes,
        max_upload=config.max_upload_bytes,
        rate_per_minute=config.rate_per_minute,
        burst=config.rate_burst,
    )
    # Added last, so it runs first: CORS answers preflights before the guard asks for a token.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=config.cors_origins(),
        allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-Lector-Token"],
    )
    return app
