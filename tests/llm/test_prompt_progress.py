"""How far the model has read a long prompt: the engine's `prompt_progress` reports, as `Delta.prompt_read`, and
as the agent's PromptProgress event. One test runs the real 0.5B model on the embedded engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from lector.agent.events import PromptProgress, TextDelta
from lector.agent.loop import run_agent
from lector.llm.backend import ChatOptions, Delta, PromptRead
from lector.llm.embedded import EmbeddedBackend, prompt_read
from lector.llm.messages import Message
from lector.llm.prompt_calling import RawChunk, read_reply
from lector.tools.registry import ToolRegistry
from tests.llm.reading_slowly import SlowReading


def test_an_engine_report_becomes_tokens_read_of_those_left_to_read() -> None:
    assert prompt_read({"total": 2384, "cache": 0, "processed": 512, "time_ms": 6684}, 256) == PromptRead(
        done=512, total=2384
    )
    assert prompt_read({"total": 3000, "cache": 1000, "processed": 1000}, 256) == PromptRead(done=0, total=2000)
    assert prompt_read({"total": 3000, "cache": 1000, "processed": 2024}, 256) == PromptRead(done=1024, total=2000)


def test_no_report_for_a_prompt_read_in_one_batch_or_without_one() -> None:
    assert prompt_read({"total": 2000, "cache": 0, "processed": 0}, 2048) is None
    assert prompt_read({"total": 3000, "cache": 2900, "processed": 2900}, 256) is None, "mostly cached"
    assert prompt_read(None, 256) is None and prompt_read("odd", 256) is None


async def test_read_reply_passes_the_reports_on_before_the_text() -> None:
    async def raw() -> AsyncGenerator[RawChunk, None]:
        yield RawChunk(prompt_read=PromptRead(done=0, total=900))
        yield RawChunk(prompt_read=PromptRead(done=512, total=900))
        yield RawChunk(text="Hello")
        yield RawChunk(finish_reason="stop")

    deltas = [d async for d in read_reply(raw(), None, "auto")]
    assert [d.prompt_read for d in deltas[:2]] == [PromptRead(done=0, total=900), PromptRead(done=512, total=900)]
    assert [d.text for d in deltas] == ["", "", "Hello", ""] and deltas[-1].finish_reason == "stop"


async def test_the_agent_streams_prompt_progress_before_the_answer() -> None:
    backend = SlowReading(["Hi there."], total=900, pause=0.0)
    events = [e async for e in run_agent(backend, [Message.user("hello")], ToolRegistry([]))]
    progress = [e for e in events if isinstance(e, PromptProgress)]
    assert [(p.done, p.total) for p in progress] == [(0, 900), (300, 900), (600, 900)]
    assert all(p.step == 1 for p in progress)
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert events.index(progress[-1]) < first_text


@pytest.mark.model
def test_the_embedded_engine_reports_reading_a_long_prompt() -> None:
    backend = EmbeddedBackend("qwen2.5-coder-0.5b", n_ctx=2048, n_parallel=1, n_batch=256, prompt_cache=False)
    text = " ".join(f"Note {i}: the lamp of tower {i % 7} was lit at dusk." for i in range(70))
    try:
        deltas: list[Delta] = asyncio.run(_collect(backend, text))
    finally:
        backend.close()
    reads = [d.prompt_read for d in deltas if d.prompt_read is not None]
    total = reads[0].total
    assert total > 512 and all(r.total == total for r in reads)
    assert [r.done for r in reads] == sorted(r.done for r in reads) and reads[0].done == 0 and len(reads) >= 3
    assert reads[1].done == 256, "one report per batch"
    first_text = next(i for i, d in enumerate(deltas) if d.text)
    assert all(d.prompt_read is None for d in deltas[first_text:])


async def _collect(backend: EmbeddedBackend, text: str) -> list[Delta]:
    messages = [Message.user(text + "\nWhich tower is note 5 about?")]
    return [d async for d in backend.astream(messages, None, ChatOptions(max_tokens=4))]
