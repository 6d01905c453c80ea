"""Level 2 past its budget (retrieval/level2.py): with nothing verified, a sub-question of Level 3 stops instead
of answering from unread chunks. SCRIPTED model only."""

from __future__ import annotations

import json
from pathlib import Path

from lector.llm.backend import ChatOptions
from lector.llm.messages import Message
from lector.llm.scripted import ScriptedBackend
from lector.retrieval.budget import Budget
from lector.retrieval.context import ReadingContext
from lector.retrieval.keywords import KeywordCache
from lector.retrieval.level2 import READ_SCHEMA, Level2Config, level2
from lector.retrieval.library import Library
from lector.retrieval.reading_types import Answer


def nothing_verified(messages: list[Message], tools: object, options: ChatOptions) -> str:
    if options.json_schema == READ_SCHEMA:
        return json.dumps({"relevant": False, "quotes": []})
    return json.dumps({"answer": "a guess [1]", "evidence": [1]})


async def _answer(tmp_path: Path, unread_answer: bool) -> Answer:
    lib = Library(cache_dir=tmp_path)
    lib.add_text("\n\n".join(f"The mill {i} grinds barley for the valley." for i in range(400)), "mills.txt")
    ctx = ReadingContext(lib, ScriptedBackend(default=nothing_verified), keyword_cache=KeywordCache())
    ctx.meter.limit(Budget(max_calls=1))
    config = Level2Config(use_model_keywords=False, unread_answer_past_budget=unread_answer)
    return await level2(ctx, "Which mill grinds barley?", config)


async def test_past_the_budget_nothing_verified_is_not_found(tmp_path) -> None:
    stopped = await _answer(tmp_path / "a", unread_answer=False)
    assert not stopped.found and stopped.usage.llm_calls == 1
    answered = await _answer(tmp_path / "b", unread_answer=True)
    assert answered.usage.llm_calls == 2
