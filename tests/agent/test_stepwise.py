"""Level 3 with the scripted model: sub-questions asked of Level 2, streamed, budgeted, composed with citations."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

from lector.agent.stepwise import (
    PLAN_SCHEMA,
    AnswerReady,
    ChunkRead,
    PassagesReading,
    StepwiseConfig,
    SubAnswer,
    SubQuestion,
    level3,
    stepwise_events,
)
from lector.llm.backend import ChatOptions
from lector.llm.messages import Message
from lector.llm.scripted import ScriptedBackend
from lector.retrieval.answer_prompt import ANSWER_SCHEMA
from lector.retrieval.budget import Budget
from lector.retrieval.context import ReadingContext
from lector.retrieval.follow_relations import NAME_SCHEMA
from lector.retrieval.keywords import KeywordCache
from lector.retrieval.level2 import READ_SCHEMA
from lector.retrieval.library import Library

FACT1 = "The Zorblat Company was founded by Jane Roe in a small shed."
FACT2 = "Jane Roe was born in the harbour town of Lisbon."
QUESTION = "Where was the founder of the Zorblat Company born?"


def library(tmp_path) -> Library:
    words = ["weather", "barley", "orchard", "harvest", "river", "market", "mill", "fence", "cattle", "road"]
    paras = [f"Paragraph {i} is about the {words[i % 10]} and the {words[(i * 7) % 10]}." for i in range(1500)]
    paras.insert(1200, FACT2)
    paras.insert(300, FACT1)
    lib = Library(cache_dir=tmp_path)
    lib.add_text("\n\n".join(paras), "history.txt")
    return lib


def reading(lib: Library, backend: ScriptedBackend) -> ReadingContext:
    """The whole library, read with a cold keyword cache."""
    return ReadingContext(lib, backend, keyword_cache=KeywordCache())


def scripted(plans: list[str]) -> Callable[..., str]:
    plan_replies = list(plans)

    def reply(messages: list[Message], tools: object, options: ChatOptions) -> str:
        schema = options.json_schema or {}
        user = messages[-1].content
        if "keywords_en" in schema.get("properties", {}):
            return json.dumps({"keywords_en": ["founded", "born"]})
        if schema == READ_SCHEMA:
            passages = user.split("\n\nPassage", 1)[1]  # after the question
            found = [s for s in re.split(r"(?<=\.)\s+", passages) if "Jane Roe" in s]
            return json.dumps({"relevant": bool(found), "quotes": found[:1]})
        if schema == PLAN_SCHEMA:
            return plan_replies.pop(0) if plan_replies else json.dumps({"action": "answer", "text": "Lisbon"})
        question = user.rsplit("Question:", 1)[1]
        blocks = re.split(r"^\[(\d+)\] \(", user, flags=re.M)
        numbers = dict(zip(blocks[1::2], blocks[2::2], strict=True))
        if "Lisbon" in question or "born" in question and "Roe" in question:
            n = next(k for k, v in numbers.items() if "Lisbon" in v)
            return f"Lisbon [{n}]."
        if "founded" in question and "Zorblat" in question and "born" not in question:
            n = next(k for k, v in numbers.items() if "founded" in v)
            return f"Jane Roe [{n}]."
        cited = [k for k, v in numbers.items() if "Lisbon" in v or "founded" in v]
        return "Lisbon, where Jane Roe was born " + " ".join(f"[{k}]" for k in cited)

    return reply


ask = lambda q: json.dumps({"action": "ask", "text": q})  # noqa: E731
UNLIMITED = Budget()
PLANNER = StepwiseConfig(follow_names=None, budget=UNLIMITED)
"""The planner alone, without a budget: these tests are about its loop, not about following names first."""


async def test_subquestions_and_answers_stream_then_a_cited_answer(tmp_path) -> None:
    lib = library(tmp_path)
    backend = ScriptedBackend(
        default=scripted(
            [
                ask("Who founded the Zorblat Company?"),
                ask("Where was Jane Roe born?"),
                json.dumps({"action": "answer", "text": "Lisbon"}),
            ]
        )
    )
    events = [e async for e in stepwise_events(reading(lib, backend), QUESTION, PLANNER)]
    kinds = [type(e).__name__ for e in events]
    steps = [e for e in events if not isinstance(e, PassagesReading | ChunkRead)]
    assert [type(e).__name__ for e in steps] == ["SubQuestion", "SubAnswer", "SubQuestion", "SubAnswer", "AnswerReady"]
    for start, end in [(0, kinds.index("SubAnswer")), (kinds.index("SubQuestion", 1), len(kinds) - 2)]:
        reads = [e for e in events[start + 1 : end] if isinstance(e, ChunkRead)]
        assert kinds[start + 1] == "PassagesReading", "each sub-question says which passages it reads"
        assert reads and [r.index for r in reads] == list(range(1, len(reads) + 1))
    first, second = steps[1], steps[3]
    assert isinstance(first, SubAnswer) and "Jane Roe" in first.answer and first.citations[0].text == FACT1
    assert isinstance(second, SubAnswer) and "Lisbon" in second.answer
    final = events[-1]
    assert isinstance(final, AnswerReady)
    answer = final.answer
    assert answer.level == 3 and "Lisbon" in answer.answer
    assert {c.text for c in answer.citations} == {FACT1, FACT2}
    assert answer.usage.llm_calls == len(backend.requests)
    assert [s["question"] for s in answer.details["sub_questions"]] == [
        "Who founded the Zorblat Company?",
        "Where was Jane Roe born?",
    ]


async def test_budget_caps_subquestions(tmp_path) -> None:
    lib = library(tmp_path)
    backend = ScriptedBackend(
        default=scripted([ask("Who founded the Zorblat Company?"), ask("Where was Jane Roe born?")])
    )
    events = [
        e
        async for e in stepwise_events(
            reading(lib, backend), QUESTION, StepwiseConfig(max_sub_questions=1, follow_names=None)
        )
    ]
    assert sum(isinstance(e, SubQuestion) for e in events) == 1
    tiny = StepwiseConfig(budget=Budget(max_tokens=1), follow_names=None)
    backend = ScriptedBackend(default=scripted([ask("Who founded the Zorblat Company?")] * 3))
    answer = await level3(reading(lib, backend), QUESTION, tiny)
    assert len(answer.details["sub_questions"]) == 1  # the first question spends the whole budget


async def test_repeated_or_unusable_plans_end_the_loop(tmp_path) -> None:
    lib = library(tmp_path)
    backend = ScriptedBackend(default=scripted(["not json at all"]))
    answer = await level3(reading(lib, backend), "Where was Jane Roe born?", PLANNER)
    # an unusable first plan asks the whole question; the next plan (default: answer) ends the loop
    assert [s["question"] for s in answer.details["sub_questions"]] == ["Where was Jane Roe born?"]
    assert "Lisbon" in answer.answer and answer.citations

    backend = ScriptedBackend(default=scripted([ask("Where was Jane Roe born?")] * 3))
    answer = await level3(reading(lib, backend), "Where was Jane Roe born?", PLANNER)
    assert len(answer.details["sub_questions"]) == 1


async def test_following_names_answers_without_the_planner(tmp_path) -> None:
    lib = library(tmp_path)
    backend = ScriptedBackend(default=scripted([]))
    events = [e async for e in stepwise_events(reading(lib, backend), QUESTION)]
    assert [type(e).__name__ for e in events] == ["AnswerReady"]
    final = events[-1]
    assert isinstance(final, AnswerReady)
    answer = final.answer
    assert "Lisbon" in answer.answer and answer.details["names_followed"][0] == "Jane Roe"
    assert FACT2 in {c.text for c in answer.citations}
    assert not any(r["options"].json_schema == PLAN_SCHEMA for r in backend.requests)
    assert answer.usage.llm_calls == 2  # keywords and the answer


async def test_an_unfound_chain_falls_back_to_the_planner(tmp_path) -> None:
    lib = library(tmp_path)
    inner = scripted([ask("Who founded the Zorblat Company?"), ask("Where was Jane Roe born?")])
    chain_answered = False

    def reply(messages: list[Message], tools: object, options: ChatOptions) -> str:
        nonlocal chain_answered
        if options.json_schema == ANSWER_SCHEMA and not chain_answered:
            chain_answered = True  # the first answer is the followed chain's: say it is not there
            return json.dumps({"answer": "NOT FOUND", "evidence": []})
        return inner(messages, tools, options)

    backend = ScriptedBackend(default=reply)
    answer = await level3(reading(lib, backend), QUESTION, StepwiseConfig(budget=UNLIMITED))
    assert "Lisbon" in answer.answer
    assert [s["question"] for s in answer.details["sub_questions"]] == [
        "Who founded the Zorblat Company?",
        "Where was Jane Roe born?",
    ]


def chain_not_found(inner: Callable[..., str]) -> Callable[..., str]:
    """The followed chain's answer says NOT FOUND; everything else as `inner` replies."""
    answered = False

    def reply(messages: list[Message], tools: object, options: ChatOptions) -> str:
        nonlocal answered
        if options.json_schema == ANSWER_SCHEMA and not answered:
            answered = True
            return json.dumps({"answer": "NOT FOUND", "evidence": []})
        return inner(messages, tools, options)

    return reply


async def test_past_its_call_budget_it_answers_and_says_what_it_could_not_establish(tmp_path) -> None:
    lib = library(tmp_path)
    backend = ScriptedBackend(default=chain_not_found(scripted([ask("Who founded the Zorblat Company?")] * 3)))
    answer = await level3(reading(lib, backend), QUESTION, StepwiseConfig(budget=Budget(max_calls=2)))
    assert not any(r["options"].json_schema == PLAN_SCHEMA for r in backend.requests), "no planning past the budget"
    assert "Could not establish" in answer.answer and "2 model calls" in answer.answer
    assert answer.details["budget"] and answer.usage.llm_calls == 2


async def test_a_time_budget_stops_the_planner_and_level2(tmp_path) -> None:
    lib = library(tmp_path)
    plans = [ask("Who founded the Zorblat Company?"), ask("Where was Jane Roe born?")]
    backend = ScriptedBackend(default=chain_not_found(scripted(plans)), delay=0.01, chunk_size=4)
    config = StepwiseConfig(budget=Budget(max_seconds=0.5), follow_names=None)
    started = time.perf_counter()
    answer = await level3(reading(lib, backend), QUESTION, config)
    unlimited = await level3(
        reading(lib, ScriptedBackend(default=scripted(list(plans)), delay=0.01, chunk_size=4)),
        QUESTION,
        StepwiseConfig(budget=UNLIMITED, follow_names=None),
    )
    assert "0.5 seconds" in answer.answer and "Could not establish" in answer.answer
    assert answer.usage.llm_calls < unlimited.usage.llm_calls
    assert time.perf_counter() - started < 60


async def test_a_link_no_text_states_is_named_in_the_answer(tmp_path) -> None:
    names = ["Orvald", "Brenna", "Tamsin", "Corwin"]
    paras = [f"In year {i} {names[i % 4]} and {names[(i + 1) % 4]} went to the mill." for i in range(2000)]
    paras.insert(700, "Orvald, son of Corwin, kept the mill.")
    lib = Library(cache_dir=tmp_path)
    lib.add_text("\n\n".join(paras), "chronicle.txt")

    def nothing_helps(messages: list[Message], tools: object, options: ChatOptions) -> str:
        schema = options.json_schema or {}
        if "keywords_en" in schema.get("properties", {}):
            return json.dumps({"keywords_en": ["father"]})
        if schema == READ_SCHEMA:
            return json.dumps({"relevant": False, "quotes": []})
        if schema == PLAN_SCHEMA:
            return json.dumps({"action": "answer", "text": "unknown"})
        if schema == NAME_SCHEMA:
            return json.dumps({"name": ""})
        return json.dumps({"answer": "NOT FOUND", "evidence": []})

    backend = ScriptedBackend(default=nothing_helps)
    answer = await level3(reading(lib, backend), "Who was the father of Orvald's father?")
    assert "Could not establish: the father of Corwin" in answer.answer


async def test_a_sub_question_over_documents_in_its_language_is_searched_by_its_own_terms(tmp_path) -> None:
    lib = library(tmp_path)
    plans = [ask("Who founded the Zorblat Company?"), ask("Where was Jane Roe born?")]
    backend = ScriptedBackend(default=scripted(plans))
    answer = await level3(reading(lib, backend), QUESTION, PLANNER)
    keyword_calls = [
        r for r in backend.requests if "keywords_en" in (r["options"].json_schema or {}).get("properties", {})
    ]
    assert keyword_calls == [], "no keyword call per sub-question"
    assert "Lisbon" in answer.answer and len(answer.details["sub_questions"]) == 2


async def test_the_planner_goes_on_from_the_links_the_chain_established(tmp_path) -> None:
    names = ["Orvald", "Brenna", "Tamsin", "Corwin"]
    paras = [f"In year {i} {names[i % 4]} and {names[(i + 1) % 4]} went to the mill." for i in range(2000)]
    paras.insert(700, "Orvald, son of Tamsin, kept the mill.")
    lib = Library(cache_dir=tmp_path)
    lib.add_text("\n\n".join(paras), "chronicle.txt")
    plans: list[str] = []

    def planner_sees(messages: list[Message], tools: object, options: ChatOptions) -> str:
        schema = options.json_schema or {}
        if "keywords_en" in schema.get("properties", {}):
            return json.dumps({"keywords_en": ["father"]})
        if schema == READ_SCHEMA:
            return json.dumps({"relevant": False, "quotes": []})
        if schema == PLAN_SCHEMA:
            plans.append(messages[-1].content)
            return json.dumps({"action": "ask", "text": "Who was the father of Tamsin?"})
        if schema == NAME_SCHEMA:
            return json.dumps({"name": ""})
        return json.dumps({"answer": "NOT FOUND", "evidence": []})

    events = [e async for e in stepwise_events(reading(lib, ScriptedBackend(default=planner_sees)),
                                               "Who was the father of Orvald's father?")]  # fmt: skip
    first = next(e for e in events if isinstance(e, SubAnswer))
    assert first.question == "What is the father of Orvald?" and first.answer == "Tamsin"
    assert "son of Tamsin" in first.citations[0].text
    assert "-> Tamsin" in plans[0]  # the planner starts from the link found, not from nothing
    answer = next(e for e in events if isinstance(e, AnswerReady)).answer
    assert "Could not establish" in answer.answer and "Who was the father of Tamsin?" in answer.answer
