"""Use the tools of MCP servers (stdio or streamable HTTP) as Lector tools, with the official `mcp` SDK.

    hub = MCPHub("mcp.json")                      # or {"mcpServers": {...}}; see tools/mcp/config.py
    bot = Assistant(tools=["calculator", *hub.tools()])
    ...
    hub.close()                                   # or `with MCPHub(...) as hub:`; also closed at exit

Each server tool becomes `<server>__<tool>` (sanitised to [A-Za-z0-9_-], at most 64 characters) with its
input schema as given; the registry validates arguments before the call. A server with resources also
gets `<server>__read_resource(uri)`, whose description lists them.

Life cycle. Nothing starts when the hub is made. The first `tools()` starts every server in parallel and
lists its tools (each bounded by its startup_timeout); the listing is kept for the hub's life. A server
that fails to start is reported in `hub.errors` and shows up as one tool, `<server>__unavailable`, that
tells the model why. A server that dies is restarted once, on the next call; when it dies again, calls
get a clear error. Every call has a timeout (the server's "timeout", default 60 s); a call that runs past
it is cancelled and the model is told so. None of this raises into the agent: failures come back as
ToolResult errors, and the other tools keep working.

The sessions live in a dedicated event loop on a background thread, so they survive across calls made
from different event loops (the sync Assistant API runs each answer in its own loop).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import hashlib
import json
import logging
import re
import tempfile
import threading
import weakref
from collections.abc import AsyncIterator, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar

import anyio
import jsonschema
from pydantic import BaseModel, ConfigDict, Field

from lector.tools.base import Tool, ToolContext, ToolResult
from lector.tools.mcp.config import MCPServerConfig, load_mcp_config

log = logging.getLogger(__name__)

MAX_NAME = 64
MAX_RESULT_CHARS = 50_000
MAX_LISTED_RESOURCES = 30
CLOSE_TIMEOUT = 10.0
CONNECTION_CLOSED = -32000
"""The JSON-RPC error code the SDK gives pending requests when the transport closes."""

T = TypeVar("T")


class MCPUnavailable(Exception):
    """A server could not be started or reached; the message is meant for the model."""


def tool_name(server: str, tool: str, taken: set[str]) -> str:
    """`<server>__<tool>` with characters outside [A-Za-z0-9_-] replaced, unique, at most 64 characters."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", f"{server}__{tool}")
    salt = 0
    while len(name) > MAX_NAME or name in taken:
        digest = hashlib.sha1(f"{server}\0{tool}\0{salt}".encode()).hexdigest()[:8]
        name = f"{re.sub(r'[^A-Za-z0-9_-]', '_', f'{server}__{tool}')[: MAX_NAME - 9]}_{digest}"
        salt += 1
    taken.add(name)
    return name


def describe_error(exc: BaseException) -> str:
    """One line about an exception, looking inside (anyio) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, FileNotFoundError):
        return f"command not found: {exc.filename or exc}"
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename or exc}"
    message = getattr(exc, "message", None) or str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def usable_schema(schema: Any) -> dict[str, Any]:
    """The tool's input schema as given, or an open object schema when it is not a valid JSON schema."""
    if not isinstance(schema, Mapping):
        return {"type": "object"}
    schema = dict(schema)
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        log.warning("MCP tool schema is not valid (%s); arguments go unchecked", exc.message)
        return {"type": "object"}
    schema.setdefault("type", "object")
    return schema


def _truncate(text: str) -> str:
    if len(text) <= MAX_RESULT_CHARS:
        return text
    return text[:MAX_RESULT_CHARS] + f"\n[… {len(text) - MAX_RESULT_CHARS} more characters cut]"


def _content_to_result(blocks: list[Any], structured: Any, is_error: bool, label: str) -> ToolResult:
    texts: list[str] = []
    images: list[str] = []
    for block in blocks:
        kind = getattr(block, "type", "")
        if kind == "text":
            texts.append(block.text)
        elif kind == "image":
            images.append(f"data:{block.mime_type};base64,{block.data}")
            texts.append(f"[image {len(images)}: {block.mime_type}]")
        elif kind == "resource":
            resource = block.resource
            text = getattr(resource, "text", None)
            texts.append(text if text is not None else f"[binary resource {resource.uri}]")
        elif kind == "resource_link":
            texts.append(f"[resource {block.uri}{': ' + block.description if block.description else ''}]")
        else:
            texts.append(f"[{kind or 'unknown'} content omitted]")
    if not texts and structured is not None:
        texts.append(json.dumps(structured, ensure_ascii=False, default=str))
    content = _truncate("\n".join(texts))
    if is_error:
        return ToolResult(content=f"Error from {label}: {content or 'the tool failed without a message'}", error=True)
    return ToolResult(content=content, images=images)


class _WatchedReadStream:
    """A transport's read stream that notes when the server's side has ended (the process died)."""

    def __init__(self, inner: Any, on_end: Any) -> None:
        self.inner = inner
        self.on_end = on_end

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def receive(self) -> Any:
        try:
            return await self.inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self.on_end()
            raise

    def __aiter__(self) -> _WatchedReadStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.inner.__anext__()
        except StopAsyncIteration:
            self.on_end()
            raise

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def __aenter__(self) -> _WatchedReadStream:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.inner.aclose()


@dataclass
class _Listing:
    tools: list[Any] = field(default_factory=list)
    resources: list[Any] = field(default_factory=list)
    templates: list[Any] = field(default_factory=list)
    has_resources: bool = False


class _Connection:
    """One server: its session task (in the hub's loop), restarts and calls."""

    def __init__(self, cfg: MCPServerConfig, max_restarts: int) -> None:
        self.cfg = cfg
        self.max_restarts = max_restarts
        self.starts = 0
        self.client: Any = None
        self.ended = False
        self.last_error = ""
        self.listing = _Listing()
        self.task: asyncio.Task[None] | None = None
        self.stop: asyncio.Event | None = None
        self.errlog: IO[str] | None = None
        self.lock: asyncio.Lock | None = None

    # starting -------------------------------------------------------------------------------------
    def _stderr_tail(self, limit: int = 400) -> str:
        if self.errlog is None:
            return ""
        try:
            self.errlog.flush()
            self.errlog.seek(0)
            text = self.errlog.read()[-limit:].strip()
        except (OSError, ValueError):
            return ""
        return f" (its stderr ends: {' '.join(text.split())})" if text else ""

    @asynccontextmanager
    async def _transport(self) -> AsyncIterator[Any]:
        cfg = self.cfg
        if cfg.url:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            timeout = httpx2.Timeout(30.0, read=300.0)
            async with httpx2.AsyncClient(headers=cfg.headers, timeout=timeout) as http:
                async with streamable_http_client(cfg.url, http_client=http) as streams:
                    yield streams
            return
        from mcp.client.stdio import StdioServerParameters, get_default_environment, stdio_client

        if self.errlog is not None:
            self.errlog.close()
        self.errlog = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
        params = StdioServerParameters(
            command=cfg.command or "", args=cfg.args, env={**get_default_environment(), **cfg.env}, cwd=cfg.cwd
        )
        async with stdio_client(params, errlog=self.errlog) as (read, write):
            yield _WatchedReadStream(read, self._mark_ended), write

    def _mark_ended(self) -> None:
        self.ended = True

    async def _run(self, ready: asyncio.Future[None], stop: asyncio.Event) -> None:
        from mcp import Client, Implementation

        try:
            info = Implementation(name="lector", version="0.1.0")
            async with Client(self._transport(), client_info=info) as client:
                self.listing = await self._list(client)
                self.client = client
                ready.set_result(None)
                await stop.wait()
        except BaseException as exc:
            self.last_error = describe_error(exc)
            if not ready.done():
                ready.set_exception(MCPUnavailable(self.last_error))
            if not isinstance(exc, Exception):
                raise
        finally:
            self.client = None
            self.ended = True

    async def _list(self, client: Any) -> _Listing:
        listing = _Listing()
        cursor: str | None = None
        for _ in range(100):
            page = await client.list_tools(cursor=cursor)
            listing.tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        if client.server_capabilities.resources is not None:
            listing.has_resources = True
            try:
                listing.resources = list((await client.list_resources()).resources)
                listing.templates = list((await client.list_resource_templates()).resource_templates)
            except Exception as exc:  # resources are a bonus: tools still work without their listing
                log.warning("MCP server %s: listing resources failed: %s", self.cfg.name, describe_error(exc))
        return listing

    async def start(self) -> None:
        self.starts += 1
        self.ended = False
        self.last_error = ""
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self._run(ready, self.stop), name=f"mcp-{self.cfg.name}")
        try:
            await asyncio.wait_for(asyncio.shield(ready), self.cfg.startup_timeout)
        except TimeoutError:
            ready.cancel()
            self.task.cancel()  # its transport shuts the process down in the background
            self.last_error = f"it did not answer within {self.cfg.startup_timeout:g} s"
            raise MCPUnavailable(self.last_error + self._stderr_tail()) from None
        except MCPUnavailable as exc:
            raise MCPUnavailable(f"{exc}{self._stderr_tail()}") from None

    def alive(self) -> bool:
        return self.client is not None and not self.ended and self.task is not None and not self.task.done()

    async def ensure(self) -> Any:
        """The live client, starting the server the first time and restarting it once after it died."""
        if self.lock is None:
            self.lock = asyncio.Lock()
        async with self.lock:
            if self.alive():
                return self.client
            await self.shutdown()
            name = self.cfg.name
            if self.starts > self.max_restarts:
                raise MCPUnavailable(
                    f"MCP server {name!r} stopped again after {self.max_restarts} restart(s) and is not used any "
                    f"more ({self.last_error or 'connection closed'}). Continue without its tools."
                )
            try:
                await self.start()
            except MCPUnavailable as exc:
                verb = "restart" if self.starts > 1 else "start"
                raise MCPUnavailable(f"MCP server {name!r} failed to {verb}: {exc}") from None
            return self.client

    def lost(self, reason: str) -> None:
        """The connection broke during a call: close it; the next call restarts the server (once)."""
        self.ended = True
        self.last_error = reason
        if self.stop is not None:
            self.stop.set()

    async def shutdown(self) -> None:
        if self.stop is not None:
            self.stop.set()
        task, self.task = self.task, None
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), CLOSE_TIMEOUT)
            except (TimeoutError, asyncio.CancelledError, Exception):
                task.cancel()
        self.client = None

    # calling ----------------------------------------------------------------------------------------
    async def request(self, what: str, label: str, fn: Any) -> ToolResult:
        """Run `fn(client)` under the call timeout; every failure becomes a ToolResult error."""
        from mcp import MCPError

        try:
            client = await self.ensure()
        except MCPUnavailable as exc:
            return ToolResult.failure(f"Error: {label} is unavailable: {exc}")
        timeout = self.cfg.timeout
        try:
            return await asyncio.wait_for(fn(client), timeout)
        except TimeoutError:
            return ToolResult.failure(
                f"Error: {label} did not answer within {timeout:g} s; the call was cancelled. "
                "Try something else, or simpler arguments."
            )
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED or self.ended:
                self.lost(f"connection closed during {what}")
                return ToolResult.failure(self._lost_message(label, what))
            return ToolResult.failure(f"Error: {label} failed: {exc.message}"[:500])
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, OSError) as exc:
            self.lost(describe_error(exc))
            return ToolResult.failure(self._lost_message(label, what))
        except Exception as exc:
            log.warning("MCP %s failed", label, exc_info=True)
            return ToolResult.failure(f"Error: {label} failed: {describe_error(exc)}"[:500])

    def _lost_message(self, label: str, what: str) -> str:
        last = self.starts > self.max_restarts
        then = "it will not be restarted again" if last else "it will be restarted on the next call"
        return f"Error: the MCP server behind {label} stopped during {what}; {then}."

    async def call_tool(self, tool: str, args: dict[str, Any], label: str) -> ToolResult:
        async def call(client: Any) -> ToolResult:
            result = await client.call_tool(tool, args)
            return _content_to_result(result.content, result.structured_content, result.is_error, label)

        return await self.request("the call", label, call)

    async def read_resource(self, uri: str, label: str) -> ToolResult:
        async def read(client: Any) -> ToolResult:
            result = await client.read_resource(uri)
            texts: list[str] = []
            images: list[str] = []
            for item in result.contents:
                text = getattr(item, "text", None)
                mime = getattr(item, "mime_type", None) or "application/octet-stream"
                if text is not None:
                    texts.append(text)
                elif mime.startswith("image/"):
                    images.append(f"data:{mime};base64,{item.blob}")
                    texts.append(f"[image: {mime}]")
                else:
                    texts.append(f"[binary content: {mime}, {len(item.blob) * 3 // 4} bytes]")
            return ToolResult(content=_truncate("\n".join(texts)), images=images, source=uri)

        return await self.request("reading a resource", label, read)


class MCPHub:
    """The MCP servers of one configuration, their sessions in a background event loop, and their tools."""

    def __init__(
        self,
        config: Any,
        *,
        max_restarts: int = 1,
        timeout: float | None = None,
        startup_timeout: float | None = None,
    ) -> None:
        self.servers = load_mcp_config(config)
        for cfg in self.servers:
            if timeout is not None:
                cfg.timeout = timeout
            if startup_timeout is not None:
                cfg.startup_timeout = startup_timeout
        self._connections = {cfg.name: _Connection(cfg, max_restarts) for cfg in self.servers}
        self.errors: dict[str, str] = {}
        """Servers that failed to start at listing time -> why."""
        self._tools: list[Tool] | None = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        atexit.register(_close_at_exit, weakref.ref(self))

    # the background loop -----------------------------------------------------------------------------
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise MCPUnavailable("the MCP client is closed")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="lector-mcp", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def _submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        try:
            loop = self._ensure_loop()
        except MCPUnavailable:
            coro.close()
            raise
        return asyncio.run_coroutine_threadsafe(coro, loop)

    async def _in_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await a coroutine that runs in the hub's loop from any other loop (cancellation carries over)."""
        return await asyncio.wrap_future(self._submit(coro))

    # tools ------------------------------------------------------------------------------------------
    def tools(self) -> list[Tool]:
        """Start the servers (first call only) and return their tools. Blocks up to the longest startup_timeout."""
        if self._tools is None:
            self._tools = self._submit(self._start_all()).result()
        return list(self._tools)

    async def atools(self) -> list[Tool]:
        if self._tools is None:
            self._tools = await self._in_loop(self._start_all())
        return list(self._tools)

    async def _start_all(self) -> list[Tool]:
        async def start(conn: _Connection) -> None:
            try:
                await conn.ensure()
            except MCPUnavailable as exc:
                self.errors[conn.cfg.name] = str(exc)
                log.warning("%s", exc)

        await asyncio.gather(*(start(c) for c in self._connections.values()))
        taken: set[str] = set()
        made: list[Tool] = []
        for name, conn in self._connections.items():
            if name in self.errors:
                made.append(UnavailableServerTool(name, self.errors[name], taken))
                continue
            for remote in conn.listing.tools:
                made.append(MCPTool(self, conn.cfg, remote, tool_name(name, remote.name, taken)))
            if conn.listing.has_resources:
                made.append(ReadResourceTool(self, conn.cfg, conn.listing, tool_name(name, "read_resource", taken)))
        return made

    async def call(self, server: str, tool: str, args: dict[str, Any], label: str) -> ToolResult:
        try:
            return await self._in_loop(self._connections[server].call_tool(tool, args, label))
        except MCPUnavailable as exc:
            return ToolResult.failure(f"Error: {label} is unavailable: {exc}")

    async def read_resource(self, server: str, uri: str, label: str) -> ToolResult:
        try:
            return await self._in_loop(self._connections[server].read_resource(uri, label))
        except MCPUnavailable as exc:
            return ToolResult.failure(f"Error: {label} is unavailable: {exc}")

    # closing ----------------------------------------------------------------------------------------
    async def _shutdown_all(self) -> None:
        await asyncio.gather(*(c.shutdown() for c in self._connections.values()), return_exceptions=True)
        for conn in self._connections.values():
            if conn.errlog is not None:
                conn.errlog.close()

    def close(self) -> None:
        """Stop every server (each transport closes stdin, then terminates) and the background loop."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if threading.current_thread() is thread:
            raise RuntimeError("MCPHub.close() called from its own event loop")
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown_all(), loop).result(CLOSE_TIMEOUT + 5)
        except Exception as exc:
            log.warning("closing MCP servers: %s", describe_error(exc))
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        if not thread.is_alive():
            loop.close()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> MCPHub:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> MCPHub:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


def _close_at_exit(ref: weakref.ref[MCPHub]) -> None:
    hub = ref()
    if hub is not None:
        hub.close()


class MCPTool(Tool):
    """One tool of an MCP server."""

    def __init__(self, hub: MCPHub, cfg: MCPServerConfig, remote: Any, name: str) -> None:
        self.hub = hub
        self.server = cfg.name
        self.remote_name: str = remote.name
        self.name = name
        about = remote.description or remote.title or f"The {remote.name!r} tool"
        self.description = f"{about.strip()} (MCP server {cfg.name!r})"
        self.parameters = usable_schema(remote.input_schema)
        # our own per-call timeout (inside) fires first, with the clearer message
        self.timeout = cfg.timeout + cfg.startup_timeout + 5

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        return await self.hub.call(self.server, self.remote_name, args, self.name)


class ReadResourceTool(Tool):
    """Reads a resource of an MCP server by URI; the description lists the server's resources."""

    class Args(BaseModel):
        uri: str = Field(description="the resource URI")

    def __init__(self, hub: MCPHub, cfg: MCPServerConfig, listing: _Listing, name: str) -> None:
        self.hub = hub
        self.server = cfg.name
        self.name = name
        lines = [f"Read a resource of the MCP server {cfg.name!r} by its URI."]
        if listing.resources:
            lines.append("Resources:")
            for res in listing.resources[:MAX_LISTED_RESOURCES]:
                about = res.description or res.title or res.name
                lines.append(f"- {res.uri}" + (f" ({about})" if about else ""))
            if len(listing.resources) > MAX_LISTED_RESOURCES:
                lines.append(f"- … and {len(listing.resources) - MAX_LISTED_RESOURCES} more")
        if listing.templates:
            lines.append("URI templates (fill in the {parts}):")
            for tpl in listing.templates[:MAX_LISTED_RESOURCES]:
                about = tpl.description or tpl.title or tpl.name
                lines.append(f"- {tpl.uri_template}" + (f" ({about})" if about else ""))
        self.description = "\n".join(lines)
        self.timeout = cfg.timeout + cfg.startup_timeout + 5

    async def run(self, args: Args, ctx: ToolContext) -> ToolResult:
        return await self.hub.read_resource(self.server, args.uri, self.name)


class UnavailableServerTool(Tool):
    """Stands in for a server that failed to start, so the model learns why its tools are missing."""

    class Args(BaseModel):
        model_config = ConfigDict(extra="allow")  # any arguments: the answer is the same

    def __init__(self, server: str, error: str, taken: set[str]) -> None:
        self.name = tool_name(server, "unavailable", taken)
        self.error = error
        self.description = (
            f"The MCP server {server!r} could not be started, so its tools are missing: {error[:300]} "
            "Calling this tool only repeats that."
        )
        self.timeout = 5

    async def run(self, args: Args, ctx: ToolContext) -> ToolResult:
        return ToolResult.failure(f"Error: {self.error}")
