"""The writing speed a document answer shows counts the time the model spends writing, not the time it reads its
prompt (SCRIPTED model: it replays text; the pause before its first piece stands in for reading a prompt)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from lector.llm.backend import ChatOptions, Delta
from lector.llm.messages import Message, ToolSpec
from lector.llm.scripted import ScriptedBackend
from lector.webui.document_answers import MeteredBackend


class SlowToStart(ScriptedBackend):
    """Waits `reading` seconds before its first piece, as an engine reading a long prompt does."""

    def __init__(self, reading: float) -> None:
        super().__init__(default="one two three four five six seven eight", delay=0.02, chunk_size=4)
        self.reading = reading

    async def astream(
        self, messages: list[Message], tools: list[ToolSpec] | None = None, options: ChatOptions | None = None
    ) -> AsyncIterator[Delta]:
        await asyncio.sleep(self.reading)
        async for delta in super().astream(messages, tools, options):
            yield delta


async def _drain(metered: MeteredBackend) -> None:
    async for _ in metered.astream([Message.user("q")]):
        pass


def test_the_time_before_the_first_piece_is_not_writing_time() -> None:
    metered = MeteredBackend(SlowToStart(reading=0.5))
    asyncio.run(_drain(metered))
    asyncio.run(_drain(metered))
    assert metered.calls == 2
    assert 0.05 < metered.writing_s < 0.5, metered.writing_s
