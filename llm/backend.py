"""The backend interface: one async streaming method; sync and collecting helpers derive from it."""

from __future__ import annotations

import asyncio
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

from pydantic import BaseModel, Field

from lector.llm.messages import Message, ToolCall, ToolSpec

ToolChoice = Literal["auto", "none", "required"] | str
"""'auto', 'none', 'required', or the name of the one tool the model must call."""


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class PromptRead(BaseModel):
    """How far the engine has read a long prompt: `done` of the `total` tokens it has to read (a cached prefix
    is not counted)."""

    done: int
    total: int


class Delta(BaseModel):
    """One piece of a streamed reply.

    `text` is new visible text (never the whole message again). `tool_calls` holds calls that
    are complete. The last delta of a stream carries `usage` and `finish_reason`.
    """

    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None
    tool_call_error: str | None = None
    """Why text that looked like a tool call could not be used (e.g. invalid JSON); the agent tells the model."""
    prompt_read: PromptRead | None = None
    """Set, on a delta without text, while the engine reads a long prompt (engines that report it)."""


class ReplyTotal:
    """The deltas of one reply added up: its text, calls, usage and finish reason so far."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self.tool_calls: list[ToolCall] = []
        self.usage = Usage()
        self.finish_reason: str | None = None

    def add(self, delta: Delta) -> None:
        if delta.text:
            self._text.append(delta.text)
        self.tool_calls.extend(delta.tool_calls)
        if delta.usage is not None:
            self.usage = delta.usage
        self.finish_reason = delta.finish_reason or self.finish_reason

    @property
    def text(self) -> str:
        return "".join(self._text)


class ChatOptions(BaseModel):
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    seed: int | None = None
    tool_choice: ToolChoice = "auto"
    json_schema: dict[str, Any] | None = None
    """Constrain the whole reply to JSON matching this schema (grammar where the engine has one)."""


class ChatResult(BaseModel):
    message: Message
    usage: Usage = Field(default_factory=Usage)
    finish_reason: str | None = None


class Backend(ABC):
    """A model. Subclasses implement `astream`; capabilities are plain attributes."""

    name: str = "backend"
    context_size: int = 8192
    native_tools: bool = False
    parallel_slots: int = 1

    @abstractmethod
    def astream(
        self,
        messages: list[Message],
        tools: list[ToolSpec] | None = None,
        options: ChatOptions | None = None,
    ) -> AsyncIterator[Delta]:
        """Stream the reply to `messages` as deltas."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens in `text`, by this model's own tokenizer."""

    async def achat(
        self,
        messages: list[Message],
        tools: list[ToolSpec] | None = None,
        options: ChatOptions | None = None,
    ) -> ChatResult:
        total = ReplyTotal()
        async for delta in self.astream(messages, tools, options):
            total.add(delta)
        message = Message.assistant(total.text, total.tool_calls)
        return ChatResult(message=message, usage=total.usage, finish_reason=total.finish_reason)

    def stream(
        self,
        messages: list[Message],
        tools: list[ToolSpec] | None = None,
        options: ChatOptions | None = None,
    ) -> Iterator[Delta]:
        return iterate_in_thread(self.astream(messages, tools, options))

    def chat(
        self,
        messages: list[Message],
        tools: list[ToolSpec] | None = None,
        options: ChatOptions | None = None,
    ) -> ChatResult:
        return run_sync(self.achat(messages, tools, options))

    def load(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Load the model now (blocking), so that the first request does not wait; the default has nothing to load."""

    def runtime(self) -> str:
        """How the model runs here (threads...), for status lines; empty when there is nothing to say."""
        return ""

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release engine resources; the default holds none."""


class WrappedBackend(Backend):
    """A backend around `inner`: its capabilities and tokenizer; `astream` passes through unless a subclass adds
    to it."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name
        self.context_size = inner.context_size
        self.native_tools = inner.native_tools
        self.parallel_slots = inner.parallel_slots

    def astream(
        self, messages: list[Message], tools: list[ToolSpec] | None = None, options: ChatOptions | None = None
    ) -> AsyncIterator[Delta]:
        return self.inner.astream(messages, tools, options)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


_DONE = object()


def iterate_in_thread(agen: AsyncIterator[Any]) -> Iterator[Any]:
    """Drive an async iterator on a private event loop in a thread, yielding its items synchronously.

    Closing the returned iterator early cancels the async side.
    """
    items: queue.Queue[Any] = queue.Queue(maxsize=64)
    loop = asyncio.new_event_loop()
    task_holder: dict[str, asyncio.Task[None]] = {}

    async def pump() -> None:
        try:
            async for item in agen:
                await asyncio.to_thread(items.put, item)
        except BaseException as exc:  # handed to the consumer, re-raised there
            if isinstance(exc, asyncio.CancelledError) and hasattr(agen, "aclose"):
                await agen.aclose()  # unwind it now, outermost first, not in shutdown_asyncgens' any order
            items.put(exc)
            return
        items.put(_DONE)

    def run() -> None:
        task_holder["task"] = loop.create_task(pump())
        try:
            loop.run_until_complete(task_holder["task"])
        except asyncio.CancelledError:
            pass
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                if isinstance(item, asyncio.CancelledError):
                    return
                raise item
            yield item
    finally:
        task = task_holder.get("task")
        if task is not None and not task.done():
            loop.call_soon_threadsafe(task.cancel)
            while thread.is_alive():  # unblock a producer waiting on a full queue
                try:
                    items.get(timeout=0.05)
                except queue.Empty:
                    pass
        thread.join(timeout=5)


def run_sync(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, even when called inside a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")
