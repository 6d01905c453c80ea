"""The model calls of one agent turn: stream each reply as text events while collecting its calls, usage and
errors, and sum the usage over the turn."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field

from lector.agent.aio import Cancelled, Canceller, close_quietly, next_or_none
from lector.agent.events import PromptProgress, TextDelta
from lector.agent.stop_rules import Replied
from lector.llm.backend import Backend, ChatOptions, Delta, Usage
from lector.llm.errors import LLMError
from lector.llm.messages import Message, ToolCall, ToolSpec


class ModelFailed(Exception):
    """The backend raised; the turn ends with an ErrorEvent."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause

    @property
    def message(self) -> str:
        """The error as the person reads it."""
        exc = self.cause
        if isinstance(exc, LLMError):
            return f"Model error: {exc}" if str(exc) else f"Model error: {type(exc).__name__}"
        return f"Model error: {type(exc).__name__}: {exc}"


@dataclass
class ModelReply:
    """One reply as it streams in. `recorded` says whether the loop has accounted for its text, so that a turn
    torn down mid-reply keeps the partial text exactly once."""

    parts: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None
    call_error: str | None = None
    recorded: bool = False

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def add(self, delta: Delta) -> None:
        if delta.text:
            self.parts.append(delta.text)
        self.tool_calls.extend(delta.tool_calls)
        if delta.usage is not None:
            self.usage = delta.usage
        self.finish_reason = delta.finish_reason or self.finish_reason
        self.call_error = delta.tool_call_error or self.call_error

    def replied(self) -> Replied:
        return Replied(self.text, self.tool_calls, self.call_error, self.finish_reason)

    def unrecorded_text(self) -> str:
        """The partial text not yet accounted for, which then counts as accounted for."""
        text = "" if self.recorded else self.text
        self.recorded = True
        return text


class ModelCalls:
    """Calls `backend` with `tools` and `options`; a forced tool choice applies until the model has made a call,
    not to every step."""

    def __init__(
        self, backend: Backend, tools: list[ToolSpec] | None, options: ChatOptions, canceller: Canceller
    ) -> None:
        self.backend = backend
        self.tools = tools
        self.options = options
        self.canceller = canceller
        self.usage = Usage()
        """Tokens summed over the turn's calls."""

    async def stream(
        self, prompt: list[Message], reply: ModelReply, step: int, *, with_tools: bool
    ) -> AsyncGenerator[TextDelta | PromptProgress, None]:
        """Stream one call into `reply`, yielding its text as it comes (and how far a long prompt has been read,
        before); raises ModelFailed when the backend fails (what streamed so far stays in `reply`). Without tools
        the model is told to call none."""
        tools, options = (self.tools, self.options) if with_tools else (None, self._options("none"))
        stream: AsyncIterator[Delta] | None = None
        error: Exception | None = None
        try:
            stream = self.backend.astream(prompt, tools, options)
            while (delta := await self.canceller.run(next_or_none(stream))) is not None:
                reply.add(delta)
                if delta.text:
                    yield TextDelta(text=delta.text, step=step)
                elif delta.prompt_read is not None:
                    yield PromptProgress(done=delta.prompt_read.done, total=delta.prompt_read.total, step=step)
        except Cancelled:
            raise
        except Exception as exc:  # any backend failure
            error = exc
        finally:
            if stream is not None:
                await close_quietly(stream)
        self.usage += reply.usage or Usage()
        if error is not None:
            raise ModelFailed(error)
        if with_tools and reply.tool_calls and self.options.tool_choice not in ("auto", "none"):
            self.options = self._options("auto")

    def _options(self, tool_choice: str) -> ChatOptions:
        return self.options.model_copy(update={"tool_choice": tool_choice})
