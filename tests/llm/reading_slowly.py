"""A SCRIPTED model (not a language model) that reports reading its prompt, in thirds, before each reply."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from lector.llm.backend import ChatOptions, Delta, PromptRead
from lector.llm.messages import Message, ToolSpec
from lector.llm.scripted import ScriptedBackend


class SlowReading(ScriptedBackend):
    """Replays its replies like ScriptedBackend, each after three prompt reports (0, 1/3, 2/3 of `total` tokens)
    spaced `pause` seconds apart."""

    def __init__(self, replies: list[Any] | None = None, *, total: int, pause: float, **kwargs: Any) -> None:
        super().__init__(replies, **kwargs)
        self.total = total
        self.pause = pause

    async def astream(
        self, messages: list[Message], tools: list[ToolSpec] | None = None, options: ChatOptions | None = None
    ) -> AsyncIterator[Delta]:
        for third in range(3):
            yield Delta(prompt_read=PromptRead(done=third * self.total // 3, total=self.total))
            await asyncio.sleep(self.pause)
        async for delta in super().astream(messages, tools, options):
            yield delta
