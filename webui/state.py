"""What the running server holds: settings, the store, models, tools, per-session tool contexts and turns."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lector.llm.backend import Backend
from lector.tools.base import Tool, ToolContext
from lector.tools.registry import ToolRegistry
from lector.webui.config import ServerConfig
from lector.webui.store import Store

log = logging.getLogger(__name__)


@dataclass
class Turn:
    """One running answer: its cancel switch and the queue its events go to."""

    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


@dataclass
class ModelLoad:
    """Where the default model stands: loading in the background, ready, or failed (with why)."""

    name: str
    state: Literal["loading", "ready", "error"] = "loading"
    message: str = ""

    def as_json(self) -> dict[str, str]:
        return {"state": self.state, "name": self.name, "message": self.message}


def lazy_options(spec: str | None) -> dict[str, Any]:
    """make_backend options that defer an embedded model's load to `Backend.load()` (run in the background)."""
    from lector.llm.factory import default_spec

    kind, _, rest = (spec or default_spec()).partition(":")
    return {"lazy": True} if not rest or kind == "embedded" else {}


class AppState:
    def __init__(
        self,
        config: ServerConfig,
        backend: Backend | None = None,
        backend_factory: Callable[[str | None], Backend] | None = None,
        extra_tools: list[Tool] | None = None,
    ) -> None:
        self.config = config
        self.token = config.resolved_token()
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(config.data_dir / "lector.db")
        self.uploads = config.data_dir / "uploads"
        self.uploads.mkdir(exist_ok=True)
        self._backends: dict[str, Backend] = {}
        if backend is not None:
            self._backends[config.model or "default"] = backend
        self._backend_factory = backend_factory
        self._backends_lock = threading.Lock()
        self.model = ModelLoad(name=config.model or _default_name())
        self.mcp_hub: Any = None
        self.registry = self._build_registry(extra_tools or [])
        self.contexts: dict[str, ToolContext] = {}
        self.turns: dict[str, Turn] = {}
        self.library_lock = asyncio.Lock()
        self._library: Any = None

    def _build_registry(self, extra: list[Tool]) -> ToolRegistry:
        from lector.tools.builtin import builtin_tools

        registry = ToolRegistry()
        factories = builtin_tools()
        for name in self.config.tools:
            factory = factories.get(name)
            if factory is None:
                log.warning("unknown tool %r in the server config; skipped", name)
                continue
            try:
                if name == "web_fetch":
                    from lector.tools.web.fetch import WebFetch

                    registry.register(WebFetch(allow_hosts=set(self.config.fetch_allow_hosts)))
                else:
                    registry.register(factory())
            except Exception as exc:  # a tool that can't start here must not stop the server
                log.warning("tool %s unavailable: %s", name, exc)
        for t in extra:
            registry.register(t)
        if self.config.mcp_config is not None:
            from lector.tools.mcp.client import MCPHub

            self.mcp_hub = MCPHub(self.config.mcp_config)
            for t in self.mcp_hub.tools():  # a server that fails to start is logged and stands in as one tool
                registry.register(t)
        return registry

    def backend(self, spec: str | None = None) -> Backend:
        key = spec or self.config.model or "default"
        with self._backends_lock:
            if key not in self._backends:
                if len(self._backends) == 1 and spec is None:
                    return next(iter(self._backends.values()))
                self._backends[key] = self._make_backend(spec or self.config.model)
            return self._backends[key]

    def _make_backend(self, spec: str | None) -> Backend:
        if self._backend_factory is not None:
            return self._backend_factory(spec)
        from lector.llm.factory import make_backend

        return make_backend(spec, **lazy_options(spec))

    def preload(self, on_done: Callable[[ModelLoad], None] | None = None) -> threading.Thread:
        """Load the default model in a background thread; `self.model` tells how far it got."""

        def run() -> None:
            try:
                backend = self.backend()
                self.model.name = backend.name
                backend.load()
                self.model.message = backend.runtime()
                self.model.state = "ready"
            except Exception as exc:  # shown in /api/status and on the page; requests will fail the same way
                self.model.message = f"{type(exc).__name__}: {exc}"
                self.model.state = "error"
                log.warning("the model could not be loaded: %s", self.model.message)
            if on_done is not None:
                on_done(self.model)

        thread = threading.Thread(target=run, name="lector-preload", daemon=True)
        thread.start()
        return thread

    @property
    def library(self) -> Any:
        if self._library is None:
            from lector.retrieval.library import Library

            self._library = Library(cache_dir=self.config.data_dir / "cache")
        return self._library

    def context(self, sid: str) -> ToolContext:
        if sid not in self.contexts:
            self.contexts[sid] = ToolContext(conversation_id=sid)
        ctx = self.contexts[sid]
        ctx.attachments = [Path(d["path"]) for d in self.store.documents(sid, status="ready")]
        return ctx

    def close(self) -> None:
        for turn in self.turns.values():
            turn.cancel.set()
        for b in self._backends.values():
            b.close()
        if self.mcp_hub is not None:
            self.mcp_hub.close()
        self.store.close()


def _default_name() -> str:
    from lector.llm.factory import default_spec

    return default_spec()
