"""Auto with the scripted model: direct when it fits, Level 1, escalation to 2, Level 3 for multi-hop."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from lector.agent.reader import ReaderConfig, aask, ask, ask_events, insufficient, looks_multi_hop
from lector.agent.stepwise import PLAN_SCHEMA, AnswerReady, ChunkRead, LevelChosen
from lector.llm.backend import ChatOptions
from lector.llm.messages import Message
from lector.llm.scripted import ScriptedBackend
from lector.retrieval.budget import Budget
from lector.retrieval.keywords import KeywordCache
from lector.retrieval.level2 import READ_SCHEMA, Level2Config
from lector.retrieval.levels import Level
from lector.retrieval.library import Library
from lector.retrieval.reading_types import Answer, Citation

NEEDLE = "The lighthouse keeper Orvald Brenn painted the tower green in 1887."


def text(paragraphs: int) -> str:
    words = ["weather", "barley", "orchard", "harvest", "river", "market", "mill", "fence", "cattle", "road"]
    paras = [f"Paragraph {i} is about the {words[i % 10]} and the {words[(i * 7) % 10]}." for i in range(paragraphs)]
    paras.insert(paragraphs // 2, NEEDLE)
    return "\n\n".join(paras)


def scripted(level1_reply: str | None = None) -> Callable[..., str]:
    """A SCRIPTED model: keywords, reads, plans, and answers citing the needle; `level1_reply` replaces the
    first answer (Level 1's)."""
    answers: list[str] = []

    def reply(messages: list[Message], tools: object, options: ChatOptions) -> str:
        schema = options.json_schema or {}
        user = messages[-1].content
        if "keywords_en" in schema.get("properties", {}):
            return json.dumps({"keywords_en": ["lighthouse", "painted"]})
        if schema == READ_SCHEMA:
            found = [s for s in re.split(r"(?<=\.)\s+", user) if "Orvald" in s]
            return json.dumps({"relevant": True, "quotes": found[:1]})
        if schema == PLAN_SCHEMA:
            if "Facts found" in user:
                return json.dumps({"action": "answer", "text": "green"})
            return json.dumps({"action": "ask", "text": "What colour was the lighthouse painted?"})
        blocks = re.split(r"^\[(\d+)\] \(", user, flags=re.M)
        numbers = dict(zip(blocks[1::2], blocks[2::2], strict=True))
        hit = next((n for n, block in numbers.items() if "Orvald" in block), None)
        first_answer = not answers
        answers.append(user)
        if first_answer and level1_reply is not None:
            return level1_reply
        if hit is None:
            return "NOT FOUND"
        return f"It was painted green [{hit}]."

    return reply


@pytest.mark.parametrize(
    "question, multi",
    [
        ("Where was the founder of the Zorblat Company born?", True),
        ("What is the capital of the country where Orvald Brenn was born?", True),
        ("Who founded Zorblat, and where was she born?", True),
        ("Who was the founder of the Zorblat Company?", False),
        ("What colour was the lighthouse painted?", False),
        ("When did the mill burn down?", False),
        ("灯塔看守人的妻子出生在哪里？", True),
        ("In what village did the recipient of the 1952 Quillon Medal grow up?", True),
        ("At which school did the spouse of the person who started the Zorblat Company teach?", True),
        ("What did the man who built the bridge do next?", True),
        ("What material was the box that Orvald Brenn used to hide the maps made of?", False),
        ("What is the name of the dog that Elizabeth owned?", False),
    ],
)
def test_multi_hop_heuristic(question: str, multi: bool) -> None:
    assert looks_multi_hop(question) is multi


async def test_a_document_that_fits_is_read_directly(tmp_path) -> None:
    lib = Library(cache_dir=tmp_path)
    doc = lib.add_text(text(40), "short.txt")
    backend = ScriptedBackend(default=scripted())
    answer = await aask(lib, "What colour was the lighthouse painted?", backend=backend)
    assert answer.level == 0 and "green" in answer.answer and answer.usage.llm_calls == 1
    assert answer.citations and "Orvald" in answer.citations[0].text
    prompt = backend.requests[0]["messages"][-1].content
    assert all(c.text.strip()[:40] in prompt for c in lib.chunks(doc))


async def test_level1_answers_when_its_evidence_holds(tmp_path) -> None:
    lib = Library(cache_dir=tmp_path)
    lib.add_text(text(3000), "long.txt")
    backend = ScriptedBackend(default=scripted())
    events = [
        e
        async for e in ask_events(
            lib, "What colour was the lighthouse painted?", backend=backend, keyword_cache=KeywordCache()
        )
    ]
    assert [e.level for e in events if isinstance(e, LevelChosen)] == [1]
    final = events[-1]
    assert isinstance(final, AnswerReady)
    answer = final.answer
    assert answer.level == 1 and "green" in answer.answer and answer.escalated_from == []


@pytest.mark.parametrize(
    "level1_reply, reason",
    [
        ("NOT FOUND", "escalated from Level 1: the model did not find the answer in the evidence"),
        ("It was painted purple [1].", "escalated from Level 1: the answer is not in the cited evidence"),
    ],
)
async def test_escalates_to_level2_when_level1_falls_short(tmp_path, level1_reply: str, reason: str) -> None:
    lib = Library(cache_dir=tmp_path)
    lib.add_text(text(3000), "long.txt")
    backend = ScriptedBackend(default=scripted(level1_reply))
    events = [
        e
        async for e in ask_events(
            lib, "What colour was the lighthouse painted?", backend=backend, keyword_cache=KeywordCache()
        )
    ]
    levels = [e for e in events if isinstance(e, LevelChosen)]
    assert [e.level for e in levels] == [Level.RETRIEVE, Level.READ] and levels[1].reason == reason
    reads = [e for e in events if isinstance(e, ChunkRead)]
    assert reads and any(NEEDLE in q for e in reads for q in e.quotes)
    final = events[-1]
    assert isinstance(final, AnswerReady)
    answer = final.answer
    assert answer.level == 2 and "green" in answer.answer and answer.escalated_from == [Level.RETRIEVE]
    assert answer.level1_answer == level1_reply
    assert answer.citations[0].text == NEEDLE
    assert answer.usage.llm_calls == len(backend.requests)  # the Level 1 attempt is counted too


async def test_multi_hop_questions_go_to_level3(tmp_path) -> None:
    lib = Library(cache_dir=tmp_path)
    lib.add_text(text(3000), "long.txt")
    backend = ScriptedBackend(default=scripted())
    answer = await aask(
        lib,
        "What colour was the tower that the keeper Orvald Brenn looked after?",
        backend=backend,
        keyword_cache=KeywordCache(),
    )
    assert answer.level == 3 and "green" in answer.answer and answer.citations


def test_sync_ask_over_paths_and_forced_levels(tmp_path) -> None:
    path = tmp_path / "long.txt"
    path.write_text(text(3000), encoding="utf-8")
    backend = ScriptedBackend(default=scripted())
    answer = ask(
        [path],
        "What colour was the lighthouse painted?",
        level=2,
        backend=backend,
        cache_dir=tmp_path / "cache",
        config=ReaderConfig(),
    )
    assert answer.level == 2 and answer.citations[0].source.endswith("long.txt")
    with pytest.raises(ValueError):
        ask([path], "What colour?", level="direct", backend=backend, cache_dir=tmp_path / "cache")
    with pytest.raises(ValueError):
        ask([path], "What colour?", level="7", backend=backend, cache_dir=tmp_path / "cache")


def _level1_answer(
    found: bool = True, cited: bool = True, grounded: bool = True, top_score: float | None = 5.0
) -> Answer:
    citations = [Citation(source="a.txt", chunk_id=0, start=0, end=5, text="green")] if cited else []
    return Answer(
        answer="green [1]",
        level=Level.RETRIEVE,
        found=found,
        grounded=grounded,
        citations=citations,
        top_score=top_score,
    )


@pytest.mark.parametrize(
    "answer, min_top_score, reason",
    [
        (_level1_answer(), 0.0, ""),
        (_level1_answer(found=False, grounded=False), 0.0, "the model did not find the answer in the evidence"),
        (_level1_answer(cited=False), 0.0, "no citation"),
        (_level1_answer(grounded=False), 0.0, "the answer is not in the cited evidence"),
        (_level1_answer(top_score=1.5), 2.0, "weak BM25 matches"),
        (_level1_answer(top_score=2.0), 2.0, ""),
        (_level1_answer(top_score=None), 2.0, ""),  # a level that did not search has no score to doubt
        (
            _level1_answer(found=False, cited=False, top_score=0.0),
            2.0,
            "the model did not find the answer in the evidence",
        ),  # the first reason wins
    ],
)
def test_auto_escalates_past_level1_exactly_when_its_answer_falls_short(
    answer: Answer, min_top_score: float, reason: str
) -> None:
    assert insufficient(answer, ReaderConfig(min_top_score=min_top_score)) == reason


async def test_ask_walks_a_folder(tmp_path) -> None:
    folder = tmp_path / "notes"
    (folder / "deeper").mkdir(parents=True)
    (folder / "harbour.txt").write_text("The harbour master keeps a log of every boat.", encoding="utf-8")
    (folder / "deeper" / "lighthouse.txt").write_text(NEEDLE, encoding="utf-8")
    (folder / ".draft.txt").write_text("The tower was painted scarlet.", encoding="utf-8")
    backend = ScriptedBackend(default=scripted())
    answer = await aask(
        [folder], "What colour was the lighthouse painted?", backend=backend, cache_dir=tmp_path / "cache"
    )
    prompt = backend.requests[0]["messages"][-1].content
    assert "harbour master" in prompt and NEEDLE in prompt and "scarlet" not in prompt  # hidden files are skipped
    assert answer.level == Level.DIRECT and "green" in answer.answer and answer.grounded
    assert [c.source for c in answer.citations] == [str(folder / "deeper" / "lighthouse.txt")]


async def test_the_answer_budget_stops_level2_reading_but_still_answers(tmp_path) -> None:
    lib = Library(cache_dir=tmp_path)
    lib.add_text(text(3000), "long.txt")

    def never_relevant(messages: list[Message], tools: object, options: ChatOptions) -> str:
        if options.json_schema == READ_SCHEMA:  # nothing helps, so Level 2 would read its whole budget
            return json.dumps({"relevant": False, "quotes": []})
        return scripted()(messages, tools, options)

    def run(budget: Budget) -> Answer:
        backend = ScriptedBackend(default=never_relevant, parallel_slots=1)
        return ask(
            lib,
            "What colour was the lighthouse painted?",
            level=2,
            backend=backend,
            config=ReaderConfig(budget=budget, level2=Level2Config(passages_per_read=1)),  # a call per chunk
            keyword_cache=KeywordCache(),
        )

    unlimited, stopped = run(Budget()), run(Budget(max_calls=3))
    assert len(unlimited.details["chunks_read"]) > 2
    assert len(stopped.details["chunks_read"]) == 2, "keywords and two reads spend three calls"
    assert stopped.answer and stopped.usage.llm_calls == 4, "the final answer is still written"


async def test_a_family_relation_is_read_off_its_sentence_before_level1(tmp_path) -> None:
    names = ["Orvald", "Brenna", "Tamsin", "Corwin"]
    paras = [f"In year {i} {names[i % 4]} and {names[(i + 1) % 4]} went to the mill." for i in range(2000)]
    paras.insert(900, "And Corwin lived many years, and begat Tamsin.")
    lib = Library(cache_dir=tmp_path)
    lib.add_text("\n\n".join(paras), "chronicle.txt")
    backend = ScriptedBackend(default=scripted())
    answer = await aask(lib, "Who was the father of Tamsin?", backend=backend, keyword_cache=KeywordCache())
    assert answer.answer.startswith("Corwin") and answer.level == 3 and answer.usage.llm_calls == 0
    assert "begat Tamsin" in answer.citations[0].text
    unstated = await aask(lib, "Who was the father of Brenna?", backend=backend, keyword_cache=KeywordCache())
    assert unstated.level in (1, 2), "no sentence states it: Level 1 as usual"
