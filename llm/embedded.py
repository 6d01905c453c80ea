"""The embedded backend: GGUF models run in-process by llama.cpp through xllamacpp.

One engine (an `xllamacpp.Server`) serves several requests at once through its parallel slots, with
prompt caching so a repeated prefix (system prompt, tool specs, earlier turns) is not evaluated again.
Engine calls block, so each request runs in its own thread and hands its chunks to the event loop
through a queue. Engines are shared: backends built with the same settings in one process use one
loaded model.

The engine also opens an HTTP listener on a random loopback port (xllamacpp always does); it is locked
with a random API key and used here only for tokenizing.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import secrets
import threading
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from lector.llm import openai_wire
from lector.llm.backend import ChatOptions, PromptRead
from lector.llm.call_gate import DEFAULT_THRESHOLD
from lector.llm.errors import ContextOverflowError, LLMError
from lector.llm.messages import Message, ToolSpec
from lector.llm.models import DEFAULT_MODEL, resolve_model
from lector.llm.prompt_calling import PromptCallingBackend, PromptRequest, RawChunk
from lector.llm.threads import ThreadChoice, resolve_threads

log = logging.getLogger(__name__)
_END = object()


@dataclass(frozen=True)
class EngineConfig:
    """What makes two engines interchangeable. Threads are not part of it: the first load chooses them."""

    path: str
    n_ctx: int
    n_parallel: int
    n_batch: int
    cache_ram_mib: int


@dataclass
class _Engine:
    """A loaded model: the xllamacpp server, its loopback address and key, and who is using it."""

    config: EngineConfig
    threads: ThreadChoice
    server: Any
    address: str
    api_key: str
    http: httpx.Client
    users: int = 0
    running: set[threading.Event] = field(default_factory=set)
    """One cancel flag per request in flight."""
    idle: threading.Condition = field(default_factory=threading.Condition)

    def close(self) -> None:
        """Stop requests in flight (at their next token), wait for them, then free the model."""
        with self.idle:
            for flag in self.running:
                flag.set()
            self.idle.wait_for(lambda: not self.running, timeout=30)
        self.http.close()
        self.server = None  # the C++ destructor stops the engine's loop and joins its threads


_engines: dict[EngineConfig, _Engine] = {}
_engines_lock = threading.Lock()


@atexit.register
def _close_all_engines() -> None:
    with _engines_lock:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        engine.close()


def _load_engine(config: EngineConfig, threads: ThreadChoice) -> _Engine:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = config.path
    params.n_ctx = config.n_ctx
    params.n_parallel = config.n_parallel
    params.kv_unified = True  # one KV pool: any single request may use the whole context
    params.n_batch = config.n_batch
    params.cache_prompt = True
    params.cache_ram_mib = config.cache_ram_mib
    params.use_jinja = True
    params.verbosity = 0
    params.cpuparams.n_threads = threads.threads
    params.cpuparams.poll = threads.poll
    params.cpuparams_batch.n_threads = threads.batch_threads
    params.cpuparams_batch.poll = threads.poll
    api_key = secrets.token_urlsafe(32)
    params.api_keys = [api_key]
    params.cors_origins = ""
    try:
        server = xllamacpp.Server(params)
    except Exception as exc:
        raise LLMError(f"the embedded engine could not load {config.path}: {exc}") from exc
    address = server.listening_address
    auth = {"Authorization": f"Bearer {api_key}"}
    http = httpx.Client(base_url=address, headers=auth, timeout=60, trust_env=False)
    return _Engine(config=config, threads=threads, server=server, address=address, api_key=api_key, http=http)


def _acquire_engine(config: EngineConfig, requested_threads: int | None) -> _Engine:
    with _engines_lock:
        engine = _engines.get(config)
        if engine is None:
            threads = resolve_threads(requested_threads)
            log.info("loading %s on %s", Path(config.path).name, threads.describe())
            engine = _engines[config] = _load_engine(config, threads)
        engine.users += 1
        return engine


def _release_engine(engine: _Engine) -> None:
    with _engines_lock:
        engine.users -= 1
        if engine.users > 0:
            return
        _engines.pop(engine.config, None)
    engine.close()


def _error_from_engine(err: dict[str, Any]) -> LLMError:
    message = str(err.get("message") or err)
    if err.get("type") == "exceed_context_size_error":
        return ContextOverflowError(
            f"the prompt does not fit the model's context: {err.get('n_prompt_tokens', '?')} tokens for a "
            f"context of {err.get('n_ctx', '?')}; shorten the conversation or the documents in it"
        )
    return LLMError(f"embedded engine error: {message}")


def prompt_read(progress: Any, n_batch: int) -> PromptRead | None:
    """The engine's report of how far it has read the prompt (`return_progress`: one report as it starts, then one
    per batch), or None when there is none or the prompt left to read fits one batch, so is read in one go."""
    if not isinstance(progress, dict):
        return None
    cached = int(progress.get("cache", 0))
    todo = int(progress.get("total", 0)) - cached
    if todo <= n_batch:
        return None
    return PromptRead(done=min(todo, max(0, int(progress.get("processed", 0)) - cached)), total=todo)


class EmbeddedBackend(PromptCallingBackend):
    """A GGUF model in-process: a catalogue name (joined and verified on first use) or a .gguf path.

    Tool calls are prompt-based (`llm.prompt_calling`); a forced call and `json_schema` are held by the
    engine's grammar. In tool_choice 'auto', a reply to a user's message goes through the call gate
    (`llm.call_gate`): `call_gate` is its threshold on the probability that the reply's first token starts a
    call; set it to None for a free reply.

    `n_ctx` is the context window shared by `n_parallel` slots (any one request may use all of it).
    `n_threads=None` takes $LECTOR_THREADS, else the cores free when the model loads (`llm.threads`).
    With `lazy=True` the model loads on first use, or when `load()` is called (from a thread, to preload).
    """

    lark_grammar = True
    first_token_probs = True
    call_gate: float | None = DEFAULT_THRESHOLD

    def __init__(
        self,
        name_or_path: str | os.PathLike[str] = DEFAULT_MODEL,
        n_ctx: int = 8192,
        n_parallel: int = 4,
        n_threads: int | None = None,
        *,
        n_batch: int = 2048,
        cache_ram_mib: int = 1024,
        lazy: bool = False,
        progress: bool = True,
        temperature: float = 0.2,
        prompt_cache: bool = True,
    ) -> None:
        self.model = os.fspath(name_or_path)
        self.name = Path(self.model).stem if self.model.endswith(".gguf") else self.model
        self.context_size = n_ctx
        self.parallel_slots = n_parallel
        self._settings = {"n_ctx": n_ctx, "n_parallel": n_parallel, "n_batch": n_batch, "cache_ram_mib": cache_ram_mib}
        self._requested_threads = n_threads
        self._progress = progress
        self.prompt_cache = prompt_cache
        """Reuse the KV cache of a slot's previous prompt prefix; off only to time requests cold (benchmarks)."""
        self.temperature = temperature
        """Sampling temperature when a request sets none: low, because small models call tools and quote
        evidence more reliably when they sample less."""
        self._engine: _Engine | None = None
        self._load_lock = threading.Lock()
        self._closed = False
        self.last_timings: dict[str, Any] | None = None
        """Engine timings (prompt_per_second, predicted_per_second...) of the latest finished request."""
        if not lazy:
            self._get_engine()

    # -- engine lifetime -------------------------------------------------------------------------

    def _get_engine(self) -> _Engine:
        if self._engine is not None:
            return self._engine
        with self._load_lock:
            if self._closed:
                raise LLMError(f"backend {self.name} is closed")
            if self._engine is None:
                path = resolve_model(self.model, progress=self._progress)
                config = EngineConfig(path=str(path.resolve()), **self._settings)
                self._engine = _acquire_engine(config, self._requested_threads)
            return self._engine

    def load(self) -> None:
        self._get_engine()

    @property
    def threads(self) -> ThreadChoice | None:
        """The engine's thread settings once it is loaded."""
        return self._engine.threads if self._engine is not None else None

    def runtime(self) -> str:
        threads = self.threads
        return f"in process, {threads.describe()}" if threads is not None else ""

    def close(self) -> None:
        with self._load_lock:
            self._closed = True
            engine, self._engine = self._engine, None
        if engine is not None:
            _release_engine(engine)

    def __enter__(self) -> EmbeddedBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def engine(self) -> Any:
        """The underlying `xllamacpp.Server` (for benchmarks and diagnostics)."""
        return self._get_engine().server

    # -- tokens ----------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        engine = self._get_engine()
        try:
            reply = engine.http.post("/tokenize", json={"content": text, "add_special": False})
            reply.raise_for_status()
        except httpx.HTTPError as exc:
            raise LLMError(f"the embedded engine could not tokenize: {exc}") from exc
        return list(reply.json()["tokens"])

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text)) if text else 0

    # -- chat ------------------------------------------------------------------------------------

    def build_request(
        self, messages: list[Message], tools: list[ToolSpec] | None = None, options: ChatOptions | None = None
    ) -> dict[str, Any]:
        """The exact engine request `astream` sends (for benchmarks against the raw engine)."""
        options = options or ChatOptions()
        return self._engine_request(self.prompt_request(messages, tools, options), options)

    def _engine_request(self, request: PromptRequest, options: ChatOptions) -> dict[str, Any]:
        """An OpenAI-style body, plus llama.cpp's own fields: prompt caching and a grammar from a JSON schema."""
        body = openai_wire.request_body(request.messages, options)
        body["temperature"] = options.temperature if options.temperature is not None else self.temperature
        body["cache_prompt"] = self.prompt_cache
        body["return_progress"] = True
        if request.schema is not None:
            body["json_schema"] = request.schema
        elif request.grammar is not None:
            body["grammar"] = request.grammar
        if request.probe_tokens:
            body.update(logprobs=True, top_logprobs=request.probe_tokens)
        return body

    async def raw_stream(self, request: PromptRequest, options: ChatOptions) -> AsyncGenerator[RawChunk, None]:
        chunks = self._chunks(self._engine_request(request, options))
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                if chunk.get("timings"):
                    self.last_timings = chunk["timings"]
                content = openai_wire.read_chunk(chunk)
                read = prompt_read(chunk.get("prompt_progress"), self._settings["n_batch"])
                yield RawChunk(
                    text=content.text,
                    usage=content.usage,
                    finish_reason=content.finish_reason,
                    prompt_read=read,
                    top_tokens=content.top_tokens,
                )

    async def _chunks(self, request: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """Run one engine request in a thread; yield its chunks as they come. Closing stops generation."""
        engine = self._engine if self._engine is not None else await asyncio.to_thread(self._get_engine)
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[Any] = asyncio.Queue()
        cancelled = threading.Event()

        def post(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(chunks.put_nowait, item)
            except RuntimeError:  # the consumer's loop is gone
                cancelled.set()

        def on_chunk(chunk: Any) -> bool:
            post(chunk)
            return cancelled.is_set()  # True asks the engine to stop this request

        def run() -> None:
            try:
                engine.server.handle_chat_completions(request, on_chunk)
            except BaseException as exc:  # handed to the consumer
                post(LLMError(f"embedded engine failed: {exc}"))
            finally:
                with engine.idle:
                    engine.running.discard(cancelled)
                    engine.idle.notify_all()
                post(_END)

        with engine.idle:
            engine.running.add(cancelled)
        threading.Thread(target=run, name="lector-embedded", daemon=True).start()
        try:
            while (chunk := await chunks.get()) is not _END:
                if isinstance(chunk, BaseException):
                    raise chunk
                if not isinstance(chunk, dict):
                    raise LLMError(f"embedded engine sent an unexpected reply: {chunk!r}")
                if "error" in chunk:
                    err = chunk["error"]
                    raise _error_from_engine(err if isinstance(err, dict) else {"message": err})
                yield chunk
            if cancelled.is_set():
                raise LLMError("the embedded backend was closed while this request was running")
        finally:
            cancelled.set()
