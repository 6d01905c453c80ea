"""An OpenAI-compatible endpoint: model `lector`, with Lector's tools running on the server side."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, ValidationError

from lector.agent.assistant import default_system_prompt
from lector.agent.events import Final
from lector.agent.loop import run_agent
from lector.llm.backend import ChatOptions
from lector.llm.messages import Message
from lector.llm.openai_wire import SSE_DONE, CompletionId
from lector.tools.base import ToolContext
from lector.webui.chat_api import state_of
from lector.webui.sse import SSE_HEADERS

router = APIRouter(prefix="/v1", tags=["openai"])
MODEL_ID = "lector"


class ChatCompletionIn(BaseModel):
    model: str = MODEL_ID
    messages: list[dict[str, Any]] = Field(..., min_length=1)
    stream: bool = False
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int = Field(1, ge=1, le=1, description="one choice per request")

    model_config = {"extra": "allow"}

    def options(self) -> ChatOptions:
        stop = [self.stop] if isinstance(self.stop, str) else self.stop
        limit = self.max_completion_tokens or self.max_tokens
        return ChatOptions(temperature=self.temperature, top_p=self.top_p, max_tokens=limit, seed=self.seed, stop=stop)


CLIENT_TOOLS = ("tools", "tool_choice", "functions", "function_call")
"""Fields of a request that would hand the model the client's own tools, which this endpoint does not run."""


def one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}" for e in exc.errors()[:3])
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


@router.get("/models")
def models() -> dict[str, Any]:
    return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "lector"}]}


@router.post("/chat/completions", response_model=None)
async def chat_completions(body: ChatCompletionIn, request: Request) -> Any:
    if body.model != MODEL_ID:
        raise HTTPException(404, f"unknown model {body.model!r}; this server offers {MODEL_ID!r}")
    given = [name for name in CLIENT_TOOLS if (body.model_extra or {}).get(name) not in (None, [], "auto", "none")]
    if given:
        raise HTTPException(
            400,
            f"this endpoint runs Lector's own tools and cannot call yours ({', '.join(given)}); "
            "send tool requests to `lector serve-model`, whose /v1/chat/completions returns tool_calls",
        )
    state = state_of(request)
    try:
        messages = [Message.from_openai(m) for m in body.messages]
    except Exception as exc:
        raise HTTPException(400, f"messages are not valid chat messages: {one_line(exc)}") from exc
    if messages[0].role != "system":
        messages.insert(0, Message.system(default_system_prompt()))
    ctx = ToolContext(
        conversation_id="openai-" + uuid.uuid4().hex, user_texts=[m.content for m in messages if m.role == "user"]
    )
    events = run_agent(
        state.backend(), messages, state.registry, ctx=ctx, max_steps=state.config.max_steps, options=body.options()
    )
    ident = CompletionId("chatcmpl-" + uuid.uuid4().hex, int(time.time()), MODEL_ID)

    if not body.stream:
        final: Final | None = None
        async for event in events:
            if isinstance(event, Final):
                final = event
        assert final is not None
        return ident.whole(final.text, [], "stop", final.usage)

    async def stream() -> AsyncIterator[str]:
        yield ident.chunk({"role": "assistant", "content": ""})
        async for event in events:
            if event.type == "text":
                yield ident.chunk({"content": event.text})
            elif isinstance(event, Final):
                yield ident.chunk({}, "stop")
        yield SSE_DONE

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)
