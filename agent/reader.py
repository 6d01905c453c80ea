"""Auto: pick the cheapest reading level that answers, and escalate when its evidence falls short.

- The documents fit the window: the model reads them whole (Level.DIRECT).
- A multi-hop question (a cheap heuristic, or the model when asked to): Level 3.
- Otherwise Level 1, escalating to Level 2 when the model says it cannot find the answer, cites nothing,
  or its answer is not grounded in what it cited.

Python API: `ask(library_or_paths, question, level="auto", backend=None) -> Answer`, `aask` (async) and
`ask_events` (an async stream of LevelChosen / SubQuestion / SubAnswer / PassagesReading / ChunkRead events ending
with AnswerReady).
`level` is a `Level` or what a person types for one ("auto", "direct", "0" to "3"; see `parse_level`).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any, Literal

from pydantic import BaseModel, Field

from lector.agent.stepwise import (
    AnswerReady,
    LevelChosen,
    ReaderEvent,
    StepwiseConfig,
    level2_events,
    stepwise_events,
)
from lector.llm.backend import Backend, ChatOptions, run_sync
from lector.llm.messages import Message
from lector.retrieval.answer_prompt import answer_from_evidence
from lector.retrieval.budget import Budget
from lector.retrieval.compound import covers_parts, question_parts
from lector.retrieval.context import ReadingContext
from lector.retrieval.follow_relations import follow_relations
from lector.retrieval.keywords import KeywordCache
from lector.retrieval.level1 import Level1Config, level1
from lector.retrieval.level2 import Level2Config
from lector.retrieval.levels import Level, parse_level
from lector.retrieval.packing import chunk_cost, evidence_budget, pack_chunks
from lector.retrieval.reading_types import Answer, LibraryLike
from lector.retrieval.relation_chain import hops_needed, relation_chain
from lector.retrieval.relation_rules import has_rules

Paths = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]
"""A file or folder, or several (folders are walked)."""


class ReaderConfig(BaseModel):
    level1: Level1Config = Field(default_factory=Level1Config)
    level2: Level2Config = Field(default_factory=Level2Config)
    stepwise: StepwiseConfig = Field(default_factory=StepwiseConfig)
    direct: bool = True
    """Answer directly when the documents fit the window."""
    multi_hop: Literal["heuristic", "model", "never"] = "heuristic"
    min_top_score: float = 0.0
    """Escalate from Level 1 when the best BM25 score is below this."""
    budget: Budget = Field(default_factory=lambda: Budget(max_seconds=100))
    """What one answer may spend before its final answer call, at any level (Level 3 adds its own, smaller
    budget): Level 2 stops reading and Level 3 stops asking once it is spent, so a person waits minutes at
    most, never a quarter of an hour."""


_ROLES = (
    "wife|husband|spouse|son|daughter|child|children|father|mother|parent|brother|sister|sibling|uncle|aunt|"
    "cousin|friend|partner|founder|owner|author|creator|inventor|designer|architect|builder|maker|"
    "manufacturer|publisher|editor|composer|painter|producer|director|manager|boss|employer|mentor|teacher|"
    "student|pupil|leader|president|head|captain|chief|king|queen|ruler|mayor|successor|predecessor|rival|"
    "colleague|neighbou?r|home|hometown|birthplace|capital|headquarters|recipient|winner|holder|victor|buyer|"
    "seller|killer|murderer|victim|heir|widow|widower|employee|member|graduate"
)
# "the person who started X": the clause's subject is the unknown, a bridge to find first. "The box that
# Orvald used" names its subject, so one lookup of Orvald finds it: the word after the pronoun decides.
_RELATIVE = re.compile(
    r"\b(?:the|a|an|this|that)\s+(?:[\w'-]+\s+){0,3}?(?:who|whom|whose|which|that|where)\s+(\w+)", re.I
)
_ROLE_OF = re.compile(rf"\b(?:the|his|her|their|its)\s+(?:{_ROLES})\s+of\b", re.I)
_DIRECT_ROLE = re.compile(rf"^\s*(?:who|what)\s+(?:is|was|were|are)\s+the\s+(?:{_ROLES})\s+of\s+[^,;]+\?*\s*$", re.I)
_CHAINED = re.compile(r"\b(?:and|then)\s+(?:what|where|when|who|which|how)\b", re.I)
_ZH_ROLE = re.compile(
    r"的(?:创始人|妻子|丈夫|儿子|女儿|父亲|母亲|作者|老板|发明者|主人|首都|老师|学生).+(?:哪|谁|什么|几|多少)"
)


_PERSON_BACK = re.compile(r"\b(?:he|she|him|her|his|hers|they|them|their)\b", re.I)


def chained_parts(question: str) -> bool:
    """Does a later part of the question need the earlier part's answer? "Who founded Zorblat, and where was she
    born?" does; "What was the cat's name, and what colour was it?" asks two things of one subject (compound)."""
    parts = question_parts(question)
    if len(parts) < 2:
        return bool(_CHAINED.search(question))
    asks_person = parts[0].lower().startswith(("who", "whom", "whose"))
    return asks_person and any(_PERSON_BACK.search(p) for p in parts[1:])


def looks_multi_hop(question: str) -> bool:
    """A cheap guess: does answering need one fact to find another (a bridge entity)?"""
    q = question.strip()
    if chained_parts(q) or _ZH_ROLE.search(q) or max(hops_needed(p) for p in question_parts(q)) > 1:
        return True
    relatives = list(_RELATIVE.finditer(q))
    if len(q.split()) >= 7:
        for rel in relatives:
            if len(q[: rel.start()].split()) >= 2 and not rel.group(1)[0].isupper():
                return True
    return bool(_ROLE_OF.search(q)) and (not _DIRECT_ROLE.match(q) or bool(relatives))


CLASSIFY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"facts_needed": {"type": "integer", "minimum": 1, "maximum": 4}},
    "required": ["facts_needed"],
}


async def classify_multi_hop(ctx: ReadingContext, question: str) -> bool:
    prompt = (
        "How many separate facts must be looked up, one after another, to answer this question? "
        'Reply with JSON {"facts_needed": N}.\n\nQuestion: ' + question
    )
    options = ChatOptions(temperature=0.0, max_tokens=16, json_schema=CLASSIFY_SCHEMA)
    result = await ctx.meter.chat(ctx.backend, [Message.user(prompt)], options)
    match = re.search(r"\d+", result.message.content)
    return match is not None and int(match.group(0)) >= 2


def open_library(
    library_or_paths: LibraryLike | Paths, cache_dir: str | os.PathLike[str] | None = None
) -> tuple[LibraryLike, list[str] | None]:
    """A Library and the doc ids to read: paths are added to a new Library (its cache makes that cheap)."""
    if isinstance(library_or_paths, LibraryLike):
        return library_or_paths, None
    from lector.retrieval.library import Library, walk_paths

    paths = [library_or_paths] if isinstance(library_or_paths, str | os.PathLike) else list(library_or_paths)
    library = Library(cache_dir=cache_dir)
    return library, [library.add_file(p) for p in walk_paths(paths)]


def fits_the_window(ctx: ReadingContext, question: str, config: ReaderConfig) -> bool:
    budget = evidence_budget(ctx.backend, question, config.level1.answer_reserve)
    return ctx.library.total_tokens(ctx.document_ids()) <= budget


async def direct(ctx: ReadingContext, question: str, config: ReaderConfig) -> Answer | None:
    """The answer from the whole documents, or None when they do not fit the window."""
    if not fits_the_window(ctx, question, config):
        return None
    budget = evidence_budget(ctx.backend, question, config.level1.answer_reserve)
    chunks = [c for doc_id in ctx.document_ids() for c in ctx.library.chunks(doc_id)]
    evidence = pack_chunks(chunks, budget, chunk_cost(ctx.backend))
    if not evidence:
        return None
    composed = await answer_from_evidence(  # the whole text is there: nothing to escalate to
        ctx.backend, question, evidence, ctx.meter, max_tokens=config.level1.max_answer_tokens, allow_not_found=False
    )
    return composed.to_answer(Level.DIRECT, ctx.meter.snapshot())


def insufficient(answer: Answer, config: ReaderConfig, question: str = "") -> str:
    """Why Level 1's answer should not be trusted, or '' when it is fine."""
    if not answer.found:
        return "the model did not find the answer in the evidence"
    if not covers_parts(answer.answer, question):
        return "the answer covers only part of the question"
    if not answer.citations:
        return "no citation"
    if not answer.grounded:
        return "the answer is not in the cited evidence"
    if answer.top_score is not None and answer.top_score < config.min_top_score:
        return "weak BM25 matches"
    return ""


async def level_events(
    ctx: ReadingContext, question: str, level: Level, config: ReaderConfig, reason: str = "asked"
) -> AsyncIterator[ReaderEvent]:
    """One level, announced with LevelChosen; its progress events, then AnswerReady."""
    yield LevelChosen(level=level, reason=reason)
    if level is Level.DIRECT:
        answer = await direct(ctx, question, config)
        if answer is None:
            raise ValueError("the documents do not fit the model's window; use level 1, 2, 3 or auto")
        yield AnswerReady(answer=answer)
    elif level is Level.RETRIEVE:
        yield AnswerReady(answer=await level1(ctx, question, config.level1))
    elif level is Level.READ:
        async for reading in level2_events(ctx, question, config.level2):
            yield reading
    elif level is Level.STEPWISE:
        async for step in stepwise_events(ctx, question, config.stepwise):
            yield step
    else:
        raise ValueError(f"{level!r} is not one level")


async def _multi_hop(ctx: ReadingContext, question: str, config: ReaderConfig) -> bool:
    if config.multi_hop == "heuristic":
        return looks_multi_hop(question)
    if config.multi_hop == "model":
        return await classify_multi_hop(ctx, question)
    return False


async def family_relation(ctx: ReadingContext, question: str, config: ReaderConfig) -> Answer | None:
    """ "Who was the father of X?" read off the sentence that states it, without a model call; None when the
    question asks no family relation or no sentence states it."""
    chain = relation_chain(question)
    relations = config.stepwise.relations
    if relations is None or chain is None or chain.outer or not all(has_rules(r) for r in chain.relations):
        return None
    answer = await follow_relations(ctx, question, relations.model_copy(update={"ask_model": False}))
    return answer if answer is not None and answer.grounded else None


async def auto_events(ctx: ReadingContext, question: str, config: ReaderConfig) -> AsyncIterator[ReaderEvent]:
    """The cheapest level that answers: direct, else Level 3 for a multi-hop question, else Level 1 and, when
    its answer falls short, Level 2."""
    if config.direct and fits_the_window(ctx, question, config):
        yield LevelChosen(level=Level.DIRECT, reason="the documents fit the window")
        whole = await direct(ctx, question, config)
        if whole is not None:
            yield AnswerReady(answer=whole)
            return
    if await _multi_hop(ctx, question, config):
        async for event in level_events(ctx, question, Level.STEPWISE, config, "multi-hop question"):
            yield event
        return
    related = await family_relation(ctx, question, config)
    if related is not None:
        yield LevelChosen(level=Level.STEPWISE, reason="a family relation the text states")
        yield AnswerReady(answer=related)
        return
    yield LevelChosen(level=Level.RETRIEVE, reason="retrieve")
    first = await level1(ctx, question, config.level1)
    why = insufficient(first, config, question)
    if not why:
        yield AnswerReady(answer=first)
        return
    async for event in level_events(ctx, question, Level.READ, config, f"escalated from Level 1: {why}"):
        if isinstance(event, AnswerReady):
            event.answer.escalated_from = [Level.RETRIEVE]
            event.answer.level1_answer = first.answer
        yield event


async def ask_events(
    library_or_paths: LibraryLike | Paths,
    question: str,
    level: Level | str | int = Level.AUTO,
    backend: Backend | None = None,
    *,
    doc_ids: Iterable[str] | None = None,
    config: ReaderConfig | None = None,
    keyword_cache: KeywordCache | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> AsyncIterator[ReaderEvent]:
    """Answer `question`, streaming the levels chosen, Level 3's sub-questions, and finally AnswerReady."""
    config = config or ReaderConfig()
    chosen = parse_level(level)
    if backend is None:
        from lector.llm.factory import make_backend

        backend = make_backend()
    library, opened = open_library(library_or_paths, cache_dir)
    ctx = ReadingContext(library, backend, list(doc_ids or opened or []) or None, keyword_cache=keyword_cache)
    ctx.meter.limit(config.budget)
    started = time.perf_counter()
    if chosen is Level.AUTO:
        events = auto_events(ctx, question, config)
    else:
        events = level_events(ctx, question, chosen, config)
    async for event in events:
        if isinstance(event, AnswerReady):
            event.answer.usage = ctx.meter.snapshot()
            event.answer.elapsed_s = time.perf_counter() - started
        yield event


async def aask(
    library_or_paths: LibraryLike | Paths,
    question: str,
    level: Level | str | int = Level.AUTO,
    backend: Backend | None = None,
    **kwargs: Any,
) -> Answer:
    answer: Answer | None = None
    async for event in ask_events(library_or_paths, question, level, backend, **kwargs):
        if isinstance(event, AnswerReady):
            answer = event.answer
    assert answer is not None
    return answer


def ask(
    library_or_paths: LibraryLike | Paths,
    question: str,
    level: Level | str | int = Level.AUTO,
    backend: Backend | None = None,
    **kwargs: Any,
) -> Answer:
    """Answer a question over a Library or some files or folders, with citations; `answer.level` says how."""
    result: Answer = run_sync(aask(library_or_paths, question, level, backend, **kwargs))
    return result
