"""Events the planner loop streams. Each has a `type` tag, so `event.model_dump_json()` is a ready SSE payload
and `parse_event(data)` turns one back into its class."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from lector.llm.backend import Usage
from lector.llm.messages import Message

StopReason = Literal["done", "budget", "cancelled", "error"]
"""Why a turn ended: `done` the model answered (or gave no answer, which the final message then says);
`budget` the step budget, or a guard against repeated calls, forced a final answer without tools;
`cancelled` the caller stopped it; `error` the model failed."""


class StepStarted(BaseModel):
    """A model call begins. `final` marks the forced last call made without tools."""

    type: Literal["step"] = "step"
    step: int
    final: bool = False


class TextDelta(BaseModel):
    """New visible text from the model (only the new part, never the whole message again)."""

    type: Literal["text"] = "text"
    text: str
    step: int = 0


class PromptProgress(BaseModel):
    """The model is reading a long prompt before it writes: `done` of `total` tokens read."""

    type: Literal["prompt_progress"] = "prompt_progress"
    done: int
    total: int
    step: int = 0


class ToolCallStarted(BaseModel):
    type: Literal["tool_call_started"] = "tool_call_started"
    call_id: str
    name: str
    arguments: str
    """The raw JSON text the model wrote; it may be invalid (then the call finishes with an error)."""
    step: int = 0


class ToolCallFinished(BaseModel):
    type: Literal["tool_call_finished"] = "tool_call_finished"
    call_id: str
    name: str
    content: str
    """The full result text (the model may be shown a shortened copy)."""
    error: bool = False
    images: list[str] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list)
    source: str | None = None
    elapsed: float = 0.0
    """Seconds the call ran."""
    step: int = 0


class CallRetried(BaseModel):
    """The model wrote a tool call that could not be used; it is told why and asked again (`describe` says so)."""

    type: Literal["call_retried"] = "call_retried"
    step: int
    error: str

    def describe(self) -> str:
        return f"The model wrote a tool call that could not be used ({self.error}); it was asked to write it again."


class ErrorEvent(BaseModel):
    """Something went wrong that the person should see (a model server down, an overflowing prompt)."""

    type: Literal["error"] = "error"
    message: str
    kind: str | None = None
    """The error's class name, e.g. "BackendUnavailableError" or "ContextOverflowError"."""


class Final(BaseModel):
    """The last event of every turn that is not torn down by task cancellation."""

    type: Literal["final"] = "final"
    message: Message
    """The final assistant message (text only)."""
    messages: list[Message] = Field(default_factory=list)
    """Every message this turn added: assistant tool-call messages, tool results, and the final answer."""
    usage: Usage = Field(default_factory=Usage)
    """Tokens summed over all the turn's model calls."""
    steps: int = 0
    """Model calls made."""
    stopped_reason: StopReason = "done"

    @property
    def text(self) -> str:
        return self.message.content


Event = Annotated[
    StepStarted | TextDelta | PromptProgress | ToolCallStarted | ToolCallFinished | CallRetried | ErrorEvent | Final,
    Field(discriminator="type"),
]

_EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(Event)


def parse_event(data: str | bytes | dict[str, Any]) -> Event:
    """An event from its JSON text or dict (the inverse of `event.model_dump_json()`)."""
    if isinstance(data, dict):
        return _EVENT_ADAPTER.validate_python(data)
    return _EVENT_ADAPTER.validate_json(data)
