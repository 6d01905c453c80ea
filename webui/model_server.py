"""An OpenAI-compatible API for one raw backend (the embedded model): any OpenAI client can use it.

Routes: POST /v1/chat/completions (streamed or not; native `tools`/`tool_choice` become the backend's
prompt-based calling, and calls come back as proper `tool_calls`), GET /v1/models, GET /v1/usage
(request and token counters, for benchmarks), POST /tokenize (llama.cpp's form, so clients count tokens
with the model's own tokenizer) and GET /health. Every route but /health sits behind `webui.guard.Guard`.

Requests are not serialised here: each one streams from the backend on its own, so the embedded engine
spreads them over its parallel slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from lector.llm import openai_wire
from lector.llm.backend import Backend, ChatOptions, Delta, ReplyTotal, Usage
from lector.llm.errors import BackendUnavailableError, ContextOverflowError, LLMError
from lector.llm.messages import Message, ToolSpec
from lector.webui.guard import Guard
from lector.webui.http_errors import install_error_handlers
from lector.webui.sse import SSE_HEADERS

ALIASES = ("default", "lector-embedded")
"""Model ids accepted besides the backend's own name."""
FIRST_DELTA_WAIT_S = 3.0
"""A streamed request waits this long for the backend's first piece before sending headers, so that an
immediate failure (a prompt over the window) is still a proper HTTP error rather than an error event."""


class APIError(Exception):
    """An OpenAI-style error response."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        param: str | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.kind = kind

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def error_from_llm(exc: LLMError) -> APIError:
    if isinstance(exc, ContextOverflowError):
        return APIError(400, str(exc), "context_length_exceeded", "messages")
    if isinstance(exc, BackendUnavailableError):
        return APIError(503, str(exc), "model_unavailable", kind="server_error")
    return APIError(500, str(exc), "model_error", kind="server_error")


class ChatRequest(BaseModel):
    model: str = "default"
    messages: list[dict[str, Any]] = Field(default_factory=list)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = 1
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None

    model_config = {"extra": "allow"}


@dataclass
class RequestRecord:
    seq: int
    started: float
    elapsed_s: float
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None
    stream: bool
    tools: int
    error: str | None = None
    prompt: str | None = None
    """The messages' text, kept only when the server records prompts (benchmarks measure recall on it)."""


@dataclass
class UsageLog:
    """Counters over every finished request, and the latest records (for `GET /v1/usage?since=SEQ`)."""

    keep: int = 10_000
    record_prompts: bool = False
    requests: int = 0
    errors: int = 0
    usage: Usage = field(default_factory=Usage)
    in_flight: int = 0
    records: deque[RequestRecord] = field(default_factory=deque)

    def add(self, record: RequestRecord) -> None:
        self.requests += 1
        record.seq = self.requests
        self.errors += record.error is not None
        self.usage = self.usage + Usage(prompt_tokens=record.prompt_tokens, completion_tokens=record.completion_tokens)
        self.records.append(record)
        while len(self.records) > self.keep:
            self.records.popleft()

    def report(self, since: int = 0) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "in_flight": self.in_flight,
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "last_seq": self.requests,
            "records": [r.__dict__ for r in self.records if r.seq > since],
        }


# ------------------------------------------------------------------------------ request translation


def parse_messages(raw: list[dict[str, Any]]) -> list[Message]:
    if not raw:
        raise APIError(400, "'messages' must be a non-empty list of chat messages", param="messages")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or "role" not in item:
            raise APIError(400, f"messages[{i}] needs a 'role'", param=f"messages[{i}]")
        if item["role"] == "developer":
            item = {**item, "role": "system"}
        try:
            out.append(Message.from_openai(item))
        except Exception as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise APIError(400, f"messages[{i}] is not a valid chat message: {detail}", param=f"messages[{i}]") from exc
    return out


def parse_tools(raw: list[dict[str, Any]] | None) -> list[ToolSpec] | None:
    try:
        return openai_wire.tools_from_json(raw)
    except openai_wire.WireFormatError as exc:
        raise APIError(400, str(exc), param=exc.param) from exc


def parse_tool_choice(raw: str | dict[str, Any] | None, tools: list[ToolSpec] | None) -> str:
    try:
        choice = openai_wire.tool_choice_from_json(raw)
    except openai_wire.WireFormatError as exc:
        raise APIError(400, str(exc), param=exc.param) from exc
    if choice == "required" and not tools:
        raise APIError(400, "tool_choice 'required' needs 'tools'", param="tool_choice")
    if choice not in ("auto", "none", "required") and choice not in {t.name for t in tools or []}:
        raise APIError(400, f"tool_choice names {choice!r}, which is not among 'tools'", param="tool_choice")
    return choice


def parse_options(body: ChatRequest, tools: list[ToolSpec] | None) -> ChatOptions:
    if body.n != 1:
        raise APIError(400, "only n=1 is supported", param="n")
    stop = [body.stop] if isinstance(body.stop, str) else body.stop
    try:
        schema = openai_wire.schema_from_response_format(body.response_format)
    except openai_wire.WireFormatError as exc:
        raise APIError(400, str(exc), param=exc.param) from exc
    return ChatOptions(
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        stop=stop or None,
        seed=body.seed,
        tool_choice=parse_tool_choice(body.tool_choice, tools),
        json_schema=schema,
    )


def prompt_text(messages: list[Message]) -> str:
    return "\n".join(m.content for m in messages)


# ------------------------------------------------------------------------------ the reply


class Completion(ReplyTotal):
    """One request's identity and what it has produced so far."""

    def __init__(self, ident: openai_wire.CompletionId) -> None:
        super().__init__()
        self.ident = ident

    def finish(self) -> str:
        """The finish reason to report."""
        if self.tool_calls:
            return "tool_calls"
        return self.finish_reason if self.finish_reason in ("stop", "length", "content_filter") else "stop"

    def whole(self) -> dict[str, Any]:
        return self.ident.whole(self.text, self.tool_calls, self.finish(), self.usage)


# ------------------------------------------------------------------------------ the app


class ModelServer:
    """The routes' state: the backend, the model ids it answers to, and the usage log."""

    def __init__(self, backend: Backend, model_id: str | None = None, *, record_prompts: bool = False) -> None:
        self.backend = backend
        self.model_id = model_id or backend.name
        self.accepted = {self.model_id, backend.name, *ALIASES}
        self.log = UsageLog(record_prompts=record_prompts)

    def check_model(self, model: str) -> None:
        if model not in self.accepted:
            raise APIError(
                404,
                f"the model {model!r} does not exist; this server offers {self.model_id!r}",
                "model_not_found",
                "model",
            )

    def models(self) -> dict[str, Any]:
        entry = {
            "id": self.model_id,
            "object": "model",
            "created": 0,
            "owned_by": "lector",
            "max_model_len": self.backend.context_size,
            "parallel_slots": self.backend.parallel_slots,
        }
        return {"object": "list", "data": [entry]}

    async def complete(self, body: ChatRequest) -> Any:
        self.check_model(body.model)
        messages = parse_messages(body.messages)
        tools = parse_tools(body.tools)
        options = parse_options(body, tools)
        done = Completion(openai_wire.CompletionId("chatcmpl-" + uuid.uuid4().hex, int(time.time()), self.model_id))
        record = RequestRecord(
            seq=0,
            started=time.time(),
            elapsed_s=0.0,
            prompt_tokens=0,
            completion_tokens=0,
            finish_reason=None,
            stream=body.stream,
            tools=len(tools or []),
            prompt=prompt_text(messages) if self.log.record_prompts else None,
        )
        deltas = self.backend.astream(messages, tools, options)
        self.log.in_flight += 1
        if body.stream:
            return await self._stream(body, deltas, done, record)
        try:
            async for delta in deltas:
                done.add(delta)
        except LLMError as exc:
            self._finish(record, done, exc)
            raise error_from_llm(exc) from exc
        except BaseException as exc:  # the client went away
            self._finish(record, done, exc)
            raise
        self._finish(record, done)
        return done.whole()

    def _finish(self, record: RequestRecord, done: Completion, error: BaseException | None = None) -> None:
        self.log.in_flight -= 1
        record.elapsed_s = round(time.time() - record.started, 3)
        record.prompt_tokens = done.usage.prompt_tokens
        record.completion_tokens = done.usage.completion_tokens
        record.finish_reason = done.finish() if error is None else None
        record.error = None if error is None else (str(error) or type(error).__name__)
        self.log.add(record)

    async def _stream(
        self, body: ChatRequest, deltas: AsyncIterator[Delta], done: Completion, record: RequestRecord
    ) -> StreamingResponse:
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        iterator = deltas.__aiter__()

        async def next_delta() -> Delta | None:
            try:
                return await iterator.__anext__()
            except StopAsyncIteration:
                return None

        first: asyncio.Task[Delta | None] = asyncio.ensure_future(next_delta())
        try:
            await asyncio.wait_for(asyncio.shield(first), FIRST_DELTA_WAIT_S)
        except TimeoutError:
            pass
        except LLMError as exc:
            self._finish(record, done, exc)
            raise error_from_llm(exc) from exc

        async def events() -> AsyncIterator[str]:
            error: BaseException | None = None
            try:
                yield done.ident.chunk({"role": "assistant", "content": ""})
                delta = await first
                while delta is not None:
                    for piece in self._pieces(done, delta):
                        yield piece
                    delta = await next_delta()
                yield done.ident.chunk({}, done.finish())
                if include_usage:
                    yield done.ident.usage_chunk(done.usage)
                yield openai_wire.SSE_DONE
            except LLMError as exc:
                error = exc
                yield openai_wire.sse(error_from_llm(exc).body())
                yield openai_wire.SSE_DONE
            except BaseException as exc:  # the client went away: stop the generation
                error = exc
                raise
            finally:
                if not first.done():
                    first.cancel()
                with contextlib.suppress(BaseException):
                    await _aclose(deltas)
                self._finish(record, done, error)

        return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)

    @staticmethod
    def _pieces(done: Completion, delta: Delta) -> list[str]:
        before = len(done.tool_calls)
        done.add(delta)
        out = []
        if delta.text:
            out.append(done.ident.chunk({"content": delta.text}))
        for i, call in enumerate(delta.tool_calls, start=before):
            out.append(done.ident.chunk({"tool_calls": [openai_wire.tool_call_json(call, i)]}))
        return out

    async def tokenize(self, request: Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except ValueError as exc:
            raise APIError(400, "request body is not valid JSON") from exc
        text = data.get("content") if isinstance(data, dict) else None
        if not isinstance(text, str):
            raise APIError(400, "'content' must be a string", param="content")
        tokenize = getattr(self.backend, "tokenize", None)
        try:
            if callable(tokenize):
                tokens = await asyncio.to_thread(tokenize, text)
                return {"tokens": tokens, "count": len(tokens)}
            return {"tokens": [], "count": await asyncio.to_thread(self.backend.count_tokens, text)}
        except LLMError as exc:
            raise error_from_llm(exc) from exc


async def _aclose(agen: Any) -> None:
    close = getattr(agen, "aclose", None)
    if close is not None:
        await close()


def create_model_app(
    backend: Backend,
    *,
    model_id: str | None = None,
    token: str | None,
    allowed_hosts: set[str],
    max_body: int = 8_000_000,
    rate_per_minute: int = 6000,
    burst: int = 1000,
    record_prompts: bool = False,
) -> Guard:
    """The API for `backend`, behind the guard (Host allowlist, bearer token, rate and body limits)."""
    server = ModelServer(backend, model_id, record_prompts=record_prompts)
    app = FastAPI(
        title="Lector model server",
        description="An OpenAI-compatible API for one model. Every route but /health needs "
        "'Authorization: Bearer <token>'.",
    )
    app.state.model_server = server

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    install_error_handlers(app, lambda status, message: APIError(status, message).body(), validation_status=400)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return server.models()

    @app.get("/v1/models/{model}")
    def model(model: str) -> dict[str, Any]:
        server.check_model(model)
        return dict(server.models()["data"][0])

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatRequest) -> Any:
        return await server.complete(body)

    @app.get("/v1/usage")
    def usage(since: int = 0) -> dict[str, Any]:
        return server.log.report(since)

    @app.post("/tokenize")
    async def tokenize(request: Request) -> dict[str, Any]:
        return await server.tokenize(request)

    return Guard(
        app,  # type: ignore[arg-type]
        token=token,
        allowed_hosts=allowed_hosts,
        max_body=max_body,
        max_upload=max_body,
        upload_paths=(),
        rate_per_minute=rate_per_minute,
        burst=burst,
    )
