"""Level 1 with the scripted model: packing order and budget, evidence placement, citations."""

from __future__ import annotations

import json
import re

from lector.llm.messages import Message
from lector.llm.scripted import ScriptedBackend
from lector.retrieval.answer_prompt import ANSWER_SYSTEM, JSON_TAIL
from lector.retrieval.citations import compose
from lector.retrieval.context import ReadingContext
from lector.retrieval.keywords import KeywordCache
from lector.retrieval.level1 import Level1Config, level1
from lector.retrieval.library import Library
from lector.retrieval.packing import chunk_cost, evidence_budget, pack
from lector.retrieval.reading_types import Evidence
from lector.retrieval.types import Chunk, Hit

NEEDLE = "The lighthouse keeper Orvald Brenn painted the tower green in the spring of 1887."


def haystack(paragraphs: int = 1500) -> str:
    words = ["weather", "barley", "orchard", "harvest", "river", "market", "mill", "fence", "cattle", "road"]
    return "\n\n".join(
        f"Paragraph {i} is about the {words[i % 10]} and the {words[(i * 3) % 10]} of the valley, "
        f"as seen in the year {1700 + i}."
        + (" A lighthouse stood on the cape." if i % 41 == 0 else "")
        + (" The barn was painted." if i % 53 == 0 else "")
        for i in range(paragraphs)
    )


def library_with_needle(tmp_path, at: float = 0.5) -> tuple[Library, str]:
    text = haystack()
    cut = text.find("\n\n", int(len(text) * at))
    library = Library(cache_dir=tmp_path)
    return library, library.add_text(text[:cut] + "\n\n" + NEEDLE + text[cut:], "valley.txt")


def chunk(i: int, tokens: int = 500) -> Chunk:
    return Chunk(
        doc_id="d", source="d.txt", chunk_id=i, start=i * 1000, end=i * 1000 + 900, text=f"c{i} " * 200, tokens=tokens
    )


def test_pack_keeps_the_best_hits_in_document_order_within_budget() -> None:
    hits = [Hit(chunk=chunk(i), score=10 - r, rank=r) for r, i in enumerate([7, 2, 9, 4], start=1)]
    cost = chunk_cost(ScriptedBackend())
    assert [e.chunk.chunk_id for e in pack(hits, 10_000, cost)] == [2, 4, 7, 9]
    two = pack(hits, 2 * cost(chunk(0)), cost)
    assert [e.chunk.chunk_id for e in two] == [2, 7]  # the two best, back in document order


def test_budget_leaves_room_for_prompt_and_answer_in_an_8k_window() -> None:
    backend = ScriptedBackend(context_size=8192)
    budget = evidence_budget(backend, "What colour is the tower?", answer_reserve=512)
    assert 6500 < budget <= 8192 - 512
    assert evidence_budget(backend, "q", 512, max_evidence_tokens=3000) == 3000


def _keyword_reply(*_: object) -> str:
    return json.dumps({"keywords_en": ["lighthouse", "painted"]})


def _answer_citing_needle(messages: list[Message], *_: object) -> str:
    numbers = re.findall(r"^\[(\d+)\] \(", messages[-1].content, re.M)
    for n in numbers:
        block = messages[-1].content.split(f"[{n}] (", 1)[1].split("\n[", 1)[0]
        if "Orvald" in block:
            return f"The tower was painted green [{n}]."
    return "NOT FOUND"


async def test_level1_answers_with_a_citation_from_evidence_in_the_user_message(tmp_path) -> None:
    library, doc = library_with_needle(tmp_path)
    backend = ScriptedBackend([_keyword_reply, _answer_citing_needle])
    answer = await level1(
        ReadingContext(library, backend, keyword_cache=KeywordCache()),
        "What colour did the keeper paint the lighthouse?",
    )
    assert answer.level == 1 and answer.found and "green" in answer.answer
    assert len(answer.citations) == 1
    cite = answer.citations[0]
    assert "Orvald Brenn" in cite.text and cite.source == "valley.txt"
    assert library.text(doc)[cite.start : cite.end] == cite.text
    assert answer.usage.llm_calls == 2 and answer.usage.prompt_tokens > 0

    system, user = backend.requests[1]["messages"]
    assert system.content == ANSWER_SYSTEM and "Orvald" not in system.content
    assert "Orvald" in user.content
    assert "write NOT FOUND." in user.content and user.content.rstrip().endswith(JSON_TAIL.strip())
    assert user.content.rindex("Question: What colour") > user.content.index("Orvald")
    starts = [int(m) for m in re.findall(r"chunk (\d+)\)", user.content)]
    assert starts == sorted(starts) and len(starts) >= 2  # document order, several chunks


async def test_level1_packs_up_to_the_window_when_uncapped(tmp_path) -> None:
    library, _ = library_with_needle(tmp_path)
    backend = ScriptedBackend([_keyword_reply, "green [1]"], context_size=8192)
    config = Level1Config(k=40, max_evidence_tokens=None, answer_reserve=512, focus_sentences=None)
    await level1(
        ReadingContext(library, backend, keyword_cache=KeywordCache()),
        "What colour did the keeper paint the lighthouse?",
        config,
    )
    prompt = sum(backend.count_tokens(m.content) for m in backend.requests[1]["messages"])
    assert 4000 < prompt <= 8192 - 512


def test_answer_without_numbers_cites_the_best_supporting_evidence() -> None:
    items = [
        Evidence.of_chunk(chunk(1)),
        Evidence.of_chunk(Chunk(doc_id="d", source="d.txt", chunk_id=5, start=0, end=len(NEEDLE), text=NEEDLE)),
    ]
    composed = compose("Orvald Brenn painted it green.", items)
    assert [c.chunk_id for c in composed.citations] == [5]
    assert compose("The tower is green [2] [7].", items).citations[0].chunk_id == 5  # [7] is out of range
    assert not compose("NOT FOUND", items).found
    assert compose("Green [2].", items).text == "Green [1]."  # [n] now points into the citation list


async def test_level1_without_any_match_says_not_found(tmp_path) -> None:
    library, _ = library_with_needle(tmp_path)
    backend = ScriptedBackend([json.dumps({"keywords_en": ["zzyzx"]})])
    answer = await level1(ReadingContext(library, backend, keyword_cache=KeywordCache()), "Where is Qwertyuiop?")
    assert not answer.found and not answer.grounded and answer.citations == []
    assert answer.usage.llm_calls == 1  # the keywords: with no evidence the model is not asked to answer
    assert "keywords_en" in backend.requests[0]["options"].json_schema["properties"]
