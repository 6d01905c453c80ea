"""A compound question over a real document with the REAL default model (Qwen2.5-Coder-1.5B): the answer gives
both parts, although the small model stops after the first one when only asked to answer every part."""

from __future__ import annotations

from lector.agent.reader import aask
from lector.llm.embedded import EmbeddedBackend
from lector.retrieval.keywords import KeywordCache
from lector.retrieval.library import Library


async def test_both_parts_of_a_compound_question_are_answered(default_model: EmbeddedBackend, tmp_path) -> None:
    farm = [
        f"In year {i} the mill ground barley for the village, and the farmer sold it at market." for i in range(300)
    ]
    farm.insert(170, "The farm cat was called Smudge, and his fur was a dusty grey. He slept in the mill.")
    lib = Library(cache_dir=tmp_path)
    lib.add_text("\n\n".join(farm), "farm.txt")

    answer = await aask(
        lib,
        "What was the farm cat's name, and what colour was its fur?",
        backend=default_model,
        keyword_cache=KeywordCache(),
    )

    assert "Smudge" in answer.answer and "grey" in answer.answer.lower(), answer.answer
    assert "(1)" not in answer.answer and "(2)" not in answer.answer
    assert answer.citations and "Smudge" in answer.citations[0].text
