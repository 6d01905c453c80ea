"""Lector's long-document reader as an MCP server: tools `index`, `search`, `ask` (with citations), `documents`.

One Library per server process, cached by content hash in the cache folder ($LECTOR_CACHE or
~/.cache/lector unless given). The model loads on the first `ask` (`search` needs none), or in the
background from the start with `server.reader.preload()` (what `lector mcp` does).

    server = build_mcp_server(cache_dir=None, model="qwen2.5-coder-0.5b")
    server.run()                                           # stdio
    app = http_app(server, ServerConfig(port=8766))        # streamable HTTP at /mcp, behind the Guard
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings

from lector.llm.backend import Backend
from lector.retrieval.levels import parse_level
from lector.webui.config import ServerConfig
from lector.webui.guard import Guard

if TYPE_CHECKING:
    from lector.retrieval.library import Library

MAX_K = 50
MAX_REQUEST_BYTES = 4_000_000

INSTRUCTIONS = (
    "Lector reads long documents. Call `index` with file paths (PDF, Word, HTML, text, ...) first, then "
    "`search` for the passages that match a query, or `ask` a question and get an answer with citations "
    "(source, character offsets, page, quoted text). `documents` lists what is indexed."
)


class Reader:
    """The state behind the tools: one Library and a model loaded on first use or preloaded."""

    def __init__(
        self,
        cache_dir: str | os.PathLike[str] | None = None,
        model: str | None = None,
        backend: Backend | None = None,
        library: Library | None = None,
    ) -> None:
        if library is None:
            from lector.retrieval.library import Library

            library = Library(cache_dir=cache_dir)
        self.library = library
        self.model = model
        self._backend = backend
        self._owns_backend = backend is None
        self._backend_lock = threading.Lock()

    def _load(self) -> Backend:
        with self._backend_lock:
            if self._backend is None:
                from lector.llm.factory import make_backend

                self._backend = make_backend(self.model)
            return self._backend

    async def backend(self) -> Backend:
        """The model, loaded now in a thread, or the one a preload is loading (waited for, in a thread)."""
        return await anyio.to_thread.run_sync(self._load)

    def preload(self) -> threading.Thread:
        """Load the model in a background thread, so that the first `ask` does not wait for it."""

        def run() -> None:
            try:
                backend = self._load()
            except Exception as exc:  # `ask` will report it as well
                print(f"lector mcp: the model could not be loaded: {exc}", file=sys.stderr, flush=True)
                return
            runtime = backend.runtime()
            print(
                f"lector mcp: model {backend.name} ready{': ' + runtime if runtime else ''}",
                file=sys.stderr,
                flush=True,
            )

        thread = threading.Thread(target=run, name="lector-preload", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        if self._owns_backend and self._backend is not None:
            self._backend.close()
            self._backend = None

    def _known(self, doc_ids: list[str] | None) -> list[str] | None:
        if not doc_ids:
            if len(self.library) == 0:
                raise ToolError("no documents are indexed yet: call `index` with file paths first")
            return None
        unknown = [d for d in doc_ids if d not in self.library]
        if unknown:
            raise ToolError(f"unknown doc_ids: {', '.join(unknown)} (see `documents`)")
        return doc_ids

    async def index(self, paths: list[str]) -> dict[str, Any]:
        from lector.retrieval.library import walk_paths

        if not paths:
            raise ToolError("give at least one path")
        files = walk_paths([os.path.expanduser(p) for p in paths])
        result = await anyio.to_thread.run_sync(lambda: self.library.add_files(files, progress=False))
        documents = [self._info(d) for d in dict.fromkeys(result.doc_ids)]
        return {"documents": documents, "errors": result.errors}

    def _info(self, doc_id: str) -> dict[str, Any]:
        info = self.library.document(doc_id)
        return {
            "doc_id": info.doc_id,
            "source": info.source,
            "format": info.format,
            "chars": info.chars,
            "tokens": info.tokens,
            "chunks": info.chunks,
        }

    async def documents(self) -> dict[str, Any]:
        return {"documents": [self._info(d.doc_id) for d in self.library.documents()]}

    async def search(self, query: str, k: int, doc_ids: list[str] | None) -> dict[str, Any]:
        if not query.strip():
            raise ToolError("the query is empty")
        ids = self._known(doc_ids)
        k = max(1, min(int(k), MAX_K))
        hits = await anyio.to_thread.run_sync(lambda: self.library.search(query, k=k, doc_ids=ids))
        return {
            "hits": [
                {
                    "rank": h.rank,
                    "score": round(float(h.score), 4),
                    "doc_id": h.chunk.doc_id,
                    "source": h.chunk.source,
                    "chunk_id": h.chunk.chunk_id,
                    "start": h.chunk.start,
                    "end": h.chunk.end,
                    "page": h.chunk.page,
                    "section": h.chunk.section,
                    "text": h.chunk.text,
                }
                for h in hits
            ]
        }

    async def ask(self, question: str, level: str, doc_ids: list[str] | None) -> dict[str, Any]:
        from lector.agent.reader import aask

        if not question.strip():
            raise ToolError("the question is empty")
        try:
            chosen = parse_level(level)
        except ValueError as exc:
            raise ToolError(str(exc)) from None
        ids = self._known(doc_ids)
        backend = await self.backend()
        answer = await aask(self.library, question, chosen, backend=backend, doc_ids=ids)
        result: dict[str, Any] = answer.to_json_dict()
        return result


def build_mcp_server(
    cache_dir: str | os.PathLike[str] | None = None,
    model: str | None = None,
    *,
    backend: Backend | None = None,
    library: Library | None = None,
) -> MCPServer[Any]:
    """An MCPServer whose tools read documents with one Library; `reader` is kept on it as `server.reader`."""
    reader = Reader(cache_dir=cache_dir, model=model, backend=backend, library=library)
    server: MCPServer[Any] = MCPServer("lector", instructions=INSTRUCTIONS, log_level="WARNING")

    @server.tool()
    async def index(paths: list[str]) -> dict[str, Any]:
        """Index documents so they can be searched and asked about. Returns their doc_ids.

        Args:
            paths: files or folders on the machine running Lector (folders are walked)
        """
        return await reader.index(paths)

    @server.tool()
    async def search(query: str, k: int = 5, doc_ids: list[str] | None = None) -> dict[str, Any]:
        """Find the passages of the indexed documents that best match a query (BM25), best first.

        Args:
            query: keywords or a question
            k: how many passages to return (1-50)
            doc_ids: only these documents (default: all indexed documents)
        """
        return await reader.search(query, k, doc_ids)

    @server.tool()
    async def ask(question: str, level: str = "auto", doc_ids: list[str] | None = None) -> dict[str, Any]:
        """Answer a question from the indexed documents, with citations (source, offsets, page, quoted text).

        Args:
            question: the question
            level: "auto" (default), "0" or "direct" (read the whole document when it fits), "1" (retrieve),
                "2" (read candidate passages), "3" (reason step by step over sub-questions)
            doc_ids: only these documents (default: all indexed documents)
        """
        return await reader.ask(question, level, doc_ids)

    @server.tool()
    async def documents() -> dict[str, Any]:
        """List the indexed documents."""
        return await reader.documents()

    server.reader = reader  # type: ignore[attr-defined]
    return server


def http_app(server: MCPServer[Any], config: ServerConfig) -> Any:
    """The streamable HTTP app (endpoint /mcp) behind Lector's Guard: Host allowlist and bearer token."""
    app: Any = server.streamable_http_app(
        host=config.host,
        max_request_body_size=MAX_REQUEST_BYTES,
        # the Guard checks the Host header against the same allowlist as `lector serve`
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    return Guard(
        app,
        token=config.resolved_token(),
        allowed_hosts=config.host_allowlist(),
        max_body=MAX_REQUEST_BYTES,
        max_upload=MAX_REQUEST_BYTES,
        rate_per_minute=config.rate_per_minute,
        burst=config.rate_burst,
    )
