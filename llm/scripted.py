"""A SCRIPTED model for tests of agent logic: it replays replies you give it. It is not a language model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from lector.llm.backend import Backend, ChatOptions, Delta, Usage
from lector.llm.messages import Message, ToolCall, ToolSpec

Reply = str | Message | Callable[[list[Message], list[ToolSpec] | None, ChatOptions], "str | Message"]


class ScriptedBackend(Backend):
    """Replays `replies` in order (a string, a Message with tool calls, or a function of the prompt).

    Every request is recorded in `requests` so tests can assert what the model was shown.
    `delay` sleeps before each streamed piece, to exercise cancellation and concurrency.
    """

    name = "scripted"

    def __init__(
        self,
        replies: list[Reply] | None = None,
        *,
        default: Reply | None = None,
        delay: float = 0.0,
        chunk_size: int = 8,
        context_size: int = 8192,
        parallel_slots: int = 4,
    ) -> None:
        self.replies = list(replies or [])
        self.default = default
        self.delay = delay
        self.chunk_size = chunk_size
        self.context_size = context_size
        self.parallel_slots = parallel_slots
        self.native_tools = True
        self.requests: list[dict[str, Any]] = []

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4) if text else 0

    def _next(self, messages: list[Message], tools: list[ToolSpec] | None, options: ChatOptions) -> Message:
        if self.replies:
            reply = self.replies.pop(0)
        elif self.default is not None:
            reply = self.default
        else:
            raise AssertionError("scripted model ran out of replies")
        if callable(reply) and not isinstance(reply, Message):
            reply = reply(messages, tools, options)
        return reply if isinstance(reply, Message) else Message.assistant(str(reply))

    async def astream(
        self,
        messages: list[Message],
        tools: list[ToolSpec] | None = None,
        options: ChatOptions | None = None,
    ) -> AsyncIterator[Delta]:
        options = options or ChatOptions()
        self.requests.append({"messages": list(messages), "tools": tools, "options": options})
        reply = self._next(messages, tools, options)
        text = reply.content
        for i in range(0, len(text), self.chunk_size):
            if self.delay:
                await asyncio.sleep(self.delay)
            yield Delta(text=text[i : i + self.chunk_size])
        if self.delay:
            await asyncio.sleep(self.delay)
        prompt = sum(self.count_tokens(m.content) for m in messages)
        usage = Usage(prompt_tokens=prompt, completion_tokens=self.count_tokens(text) + len(reply.tool_calls))
        yield Delta(
            tool_calls=[c.model_copy() for c in reply.tool_calls],
            usage=usage,
            finish_reason="tool_calls" if reply.tool_calls else "stop",
        )


def call(name: str, arguments: str | dict[str, Any] = "{}") -> ToolCall:
    """A tool call for a scripted reply."""
    import json

    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolCall(name=name, arguments=args)
