"""The OpenAI-HTTP backend asks llama.cpp's server how far it has read a prompt (`return_progress`) and turns the
reports into Delta.prompt_read; other servers are not sent the field. The servers here are real HTTP (FastAPI +
uvicorn on 127.0.0.1) that stream canned chunks in llama.cpp's shape; they are not models."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from lector.llm.backend import ChatOptions, PromptRead
from lector.llm.messages import Message
from lector.llm.openai_http import PROGRESS_BATCH, OpenAIBackend
from tests.llm.openai_test_server import free_port

LONG_PROMPT = 3000


def llama_like(owner: str, bodies: list[dict[str, Any]]) -> FastAPI:
    """/v1/models naming `owner`, and a chat stream with llama.cpp's prompt_progress chunks when asked for them."""
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": "m", "object": "model", "owned_by": owner}]})

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> StreamingResponse:
        body = await request.json()
        bodies.append(body)

        async def stream() -> AsyncIterator[str]:
            if body.get("return_progress"):
                for done in (0, 1024, 2048):
                    progress = {"total": LONG_PROMPT + 100, "cache": 100, "processed": 100 + done, "time_ms": 1}
                    yield f"data: {json.dumps({'choices': [], 'prompt_progress': progress})}\n\n"
            for piece in ("Hel", "lo."):
                yield f"data: {json.dumps({'choices': [{'index': 0, 'delta': {'content': piece}}]})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    return app


@pytest.fixture()
def serve() -> Iterator[Any]:
    from tests.webui.live_server import serve_app

    servers: list[Any] = []

    def start(app: FastAPI) -> str:
        port = free_port()
        context = serve_app(app, port)
        servers.append(context)
        return f"{context.__enter__()}/v1"

    yield start
    for context in servers:
        context.__exit__(None, None, None)


async def test_a_llamacpp_server_reports_how_far_it_has_read_the_prompt(serve: Any) -> None:
    bodies: list[dict[str, Any]] = []
    backend = OpenAIBackend(serve(llama_like("llamacpp", bodies)), model="m")
    deltas = [d async for d in backend.astream([Message.user("hello")])]
    assert [d.prompt_read for d in deltas if d.prompt_read is not None] == [
        PromptRead(done=0, total=LONG_PROMPT),
        PromptRead(done=1024, total=LONG_PROMPT),
        PromptRead(done=2048, total=LONG_PROMPT),
    ]
    assert "".join(d.text for d in deltas) == "Hello." and bodies[0]["return_progress"] is True


async def test_other_servers_are_not_sent_return_progress(serve: Any) -> None:
    bodies: list[dict[str, Any]] = []
    backend = OpenAIBackend(serve(llama_like("vllm", bodies)), model="m")
    deltas = [d async for d in backend.astream([Message.user("hello")])]
    assert "return_progress" not in bodies[0] and all(d.prompt_read is None for d in deltas)
    assert "".join(d.text for d in deltas) == "Hello."


async def test_real_llamacpp_server_reports_prompt_progress(small_model: Any) -> None:
    """The llama.cpp server inside the embedded engine (the real 0.5B model): a long prompt is read in batches."""
    engine = small_model._get_engine()
    backend = OpenAIBackend(base_url=engine.address, model="qwen2.5-coder-0.5b", api_key=engine.api_key)
    prompt = " ".join(f"Line {i}: the keeper lit the lamp at dusk." for i in range(250))
    options = ChatOptions(max_tokens=4, temperature=0)
    deltas = [d async for d in backend.astream([Message.user(prompt + "\nWho lit the lamp?")], None, options)]
    assert backend.llamacpp, "llama.cpp's /models says owned_by llamacpp"
    reads = [d.prompt_read for d in deltas if d.prompt_read is not None]
    assert len(reads) >= 2 and reads[0].total > PROGRESS_BATCH, reads
    assert [r.done for r in reads] == sorted(r.done for r in reads) and reads[-1].done <= reads[-1].total
