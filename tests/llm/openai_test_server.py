"""A real OpenAI-compatible HTTP server for the HTTP backend's tests (FastAPI + uvicorn on 127.0.0.1).

It is not a model and not a mock of the client: the client talks real HTTP and SSE to it. Each request
picks a scripted behaviour by its model name, `SCENARIO` or `SCENARIO:KEY` (the key separates the
counters of scenarios that fail a few times before succeeding; for `script:KEY` it names the text to
stream, set in `server.scripts[KEY]`). Three server flavours live under
path prefixes, differing only in their extra endpoints:

  /vllm/v1/...      POST /vllm/tokenize in vLLM's form ({"prompt"} -> {"count", "tokens", "max_model_len"}),
                    /models reports max_model_len
  /llamacpp/v1/...  POST /llamacpp/tokenize in llama.cpp's form ({"content"} -> {"tokens"})
  /plain/v1/...     no /tokenize (like OpenAI or Ollama)

Every request is recorded in `server.requests` so tests can check what the client sent.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

TEXT_PIECES = ["Hello", " from", " the", " test", " server."]
JSON_CALL_REPLY = 'I will add them.\n```json\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n```'
TAGGED_CALLS_REPLY = (
    '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>\n'
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
)
FORCED_CALL_REPLY = '{"name": "add", "arguments": {"a": 4, "b": 5}}'
MAX_MODEL_LEN = 4096
SERVED_MODEL = "served-model"
API_KEY = "sekret"


@dataclass
class Recorded:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "code": status, **extra}}, status_code=status)


class OpenAITestServer:
    def __init__(self, slow_seconds: float = 3.0) -> None:
        self.slow_seconds = slow_seconds
        self.requests: list[Recorded] = []
        self.scripts: dict[str, str] = {}
        """Reply texts for the `script:KEY` scenario, streamed three characters at a time."""
        self.attempts: dict[str, int] = defaultdict(int)
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = self._build_app()

    def url(self, flavor: str = "vllm") -> str:
        return f"http://127.0.0.1:{self.port}/{flavor}/v1"

    def chat_requests(self, model: str) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/chat/completions") and r.model == model]

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> OpenAITestServer:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app, log_level="critical", lifespan="off", timeout_graceful_shutdown=1, access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> OpenAITestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- the app

    def _build_app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/{flavor}/v1/models")
        async def models(flavor: str) -> Response:
            if flavor == "vllm":
                data = [{"id": SERVED_MODEL, "object": "model", "max_model_len": MAX_MODEL_LEN}]
            else:
                data = [{"id": SERVED_MODEL, "object": "model"}]
            return JSONResponse({"object": "list", "data": data})

        @app.post("/{flavor}/tokenize")
        async def tokenize(flavor: str, request: Request) -> Response:
            body = await request.json()
            self.requests.append(Recorded(request.url.path, body, dict(request.headers)))
            if flavor == "vllm":
                if "prompt" not in body:
                    return JSONResponse({"object": "error", "message": "field required: prompt"}, 400)
                tokens = list(range(len(str(body["prompt"]).split())))
                return JSONResponse({"count": len(tokens), "tokens": tokens, "max_model_len": MAX_MODEL_LEN})
            if flavor == "llamacpp":
                tokens = list(range(len(str(body.get("content", "")).split())))
                return JSONResponse({"tokens": tokens})
            return JSONResponse({"detail": "Not Found"}, 404)

        @app.post("/{flavor}/v1/chat/completions")
        async def chat(flavor: str, request: Request) -> Response:
            body = await request.json()
            self.requests.append(Recorded(request.url.path, body, dict(request.headers)))
            return await self._respond(body, request)

        return app

    async def _respond(self, body: dict[str, Any], request: Request) -> Response:
        model = str(body.get("model", ""))
        scenario, _, key = model.partition(":")
        self.attempts[model] += 1
        attempt = self.attempts[model]
        usage = bool((body.get("stream_options") or {}).get("include_usage"))

        if scenario == "auth" and request.headers.get("authorization") != f"Bearer {API_KEY}":
            return _error(401, "Incorrect API key provided", type="invalid_request_error", code="invalid_api_key")
        if scenario == "nosuch":
            return JSONResponse(
                {"object": "error", "message": f"The model `{model}` does not exist.", "code": 404}, 404
            )
        if scenario == "429" and attempt == 1:
            return JSONResponse(
                {"error": {"message": "Rate limit reached", "type": "rate_limit_error"}},
                status_code=429,
                headers={"Retry-After": "0.3"},
            )
        if scenario == "500x2" and attempt <= 2:
            return _error(500, "internal error: scheduler hiccup")
        if scenario == "always-503":
            return _error(503, "model is loading")
        if scenario == "overflow-vllm":
            return JSONResponse(
                {
                    "object": "error",
                    "message": "This model's maximum context length is 4096 tokens. However, you requested "
                    "5120 tokens (4096 in the messages, 1024 in the completion). Please reduce the length.",
                    "type": "BadRequestError",
                    "param": None,
                    "code": 400,
                },
                status_code=400,
            )
        if scenario == "overflow-llamacpp":
            return _error(
                400,
                "the request exceeds the available context size, try increasing it",
                type="exceed_context_size_error",
                n_prompt_tokens=9000,
                n_ctx=8192,
            )
        if scenario == "overflow-openai":
            return _error(400, "Input is too large.", type="invalid_request_error", code="context_length_exceeded")
        if scenario == "bad-request":
            return _error(400, "temperature must be non-negative", type="invalid_request_error")
        if scenario in ("no-tools", "no-tools-json") and "tools" in body:
            return _error(400, "tools param requires --jinja flag", type="invalid_request_error")
        if scenario == "slow":
            await asyncio.sleep(self.slow_seconds)

        return StreamingResponse(self._stream(scenario, key, usage), media_type="text/event-stream")

    async def _stream(self, scenario: str, key: str, usage: bool) -> AsyncIterator[bytes]:
        def event(data: dict[str, Any] | str) -> bytes:
            return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode()

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return event({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [choice]})

        yield b": keep-alive comment\n\n"
        yield chunk({"role": "assistant", "content": ""})

        if scenario == "tool-calls":
            fragments = [
                {
                    "index": 0,
                    "id": "call_w",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                },
                {"index": 0, "function": {"arguments": '{"city": "Pa'}},
                {"index": 0, "function": {"arguments": 'ris"}'}},
                {
                    "index": 1,
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "add", "arguments": '{"a": 2,'},
                },
                {"index": 1, "function": {"arguments": ' "b": 3}'}},
            ]
            for fragment in fragments:
                yield chunk({"tool_calls": [fragment]})
            yield chunk({}, "tool_calls")
            pieces: list[str] = []
        elif scenario in ("json-call", "no-tools"):
            pieces = [JSON_CALL_REPLY[i : i + 7] for i in range(0, len(JSON_CALL_REPLY), 7)]
        elif scenario == "tagged-calls":
            pieces = [TAGGED_CALLS_REPLY[i : i + 5] for i in range(0, len(TAGGED_CALLS_REPLY), 5)]
        elif scenario == "script":
            script = self.scripts[key]
            pieces = [script[i : i + 3] for i in range(0, len(script), 3)]
        elif scenario == "no-tools-json":
            pieces = [FORCED_CALL_REPLY[i : i + 6] for i in range(0, len(FORCED_CALL_REPLY), 6)]
        elif scenario == "stream-error":
            yield event({"error": {"message": "This model's maximum context length is 4096 tokens", "code": 400}})
            return
        else:
            pieces = TEXT_PIECES

        for i, piece in enumerate(pieces):
            yield chunk({"content": piece})
            if scenario == "drop" and i == 1:
                raise RuntimeError("test server drops the connection mid-reply")
            if scenario == "stall" and i == 1:
                await asyncio.sleep(self.slow_seconds)
        if pieces:
            yield chunk({}, "stop")
        if usage and scenario != "text-nousage":
            yield event(
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion.chunk",
                    "choices": [],
                    "usage": {"prompt_tokens": 17, "completion_tokens": 5, "total_tokens": 22},
                }
            )
        yield event("[DONE]")
