"""Auto: pick the cheapest reading level that answers, and escalate when its evidence falls short.

- The documents fit the window: the model reads them whole (level 0, "direct").
- A multi-hop question (a cheap heuristic, or the model when asked to): Level 3.
- Otherwise Level 1, escalating to Level 2 when the model says it cannot find the answer, cites nothing,
  or its answer is not grounded in what it cited.

Python API: `ask(library_or_paths, question, level="auto", backend=None) -> Answer`, `aask` (async) and
`ask_events` (an async stream of LevelChosen / SubQuestion / SubAnswer events ending with AnswerReady).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from lector.agent.stepwise import AnswerReady, ChunkRead, LevelChosen, ReaderEvent, StepwiseConfig, stepwise_events
from lector.llm.backend import Backend, ChatOptions, run_sync
from lector.llm.messages import Message
from lector.retrieval.answer import Answer, LibraryLike, UsageMeter, answer_from_evidence, grounded
from lector.retrieval.keywords import KeywordCache
from lector.retrieval.level1 import Level1Config, all_doc_ids, level1
from lector.retrieval.level2 import Level2Config, level2
from lector.retrieval.packing import chunk_cost, evidence_budget, pack_chunks

LevelArg = Literal["auto", "direct", "0", "1", "2", "3"] | int


class ReaderConfig(BaseModel):
    level1: Level1Config = Field(default_factory=Level1Config)
    level2: Level2Config = Field(default_factory=Level2Config)
    stepwise: StepwiseConfig = Field(default_factory=StepwiseConfig)
    direct: bool = True
    """Answer directly when the documents fit the window."""
    multi_hop: Literal["heuristic", "model", "never"] = "heuristic"
    min_top_score: float = 0.0
    """Escalate from Level 1 when the best BM25 score is below this."""


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
_DIRECT_ROLE = re.compile(
    rf"^\s*(?:who|what)\s+(?:is|was|were|are)\s+the\s+(?:{_ROLES})\s+of\s+[^,;]+\?*\s*$", re.I
)
_CHAINED = re.compile(r"\b(?:and|then)\s+(?:what|where|when|who|which|how)\b", re.I)
_ZH_ROLE = re.compile(
    r"的(?:创始人|妻子|丈夫|儿子|女儿|父亲|母亲|作者|老板|发明者|主人|首都|老师|学生).+(?:哪|谁|什么|几|多少)"
)


def looks_multi_hop(question: str) -> bool:
    """A cheap guess: does answering need one fact to find another (a bridge entity)?"""
    q = question.strip()
    if _CHAINED.search(q) or _ZH_ROLE.search(q):
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


async def classify_multi_hop(backend: Backend, question: str, meter: UsageMeter) -> bool:
    prompt = (
        "How many separate facts must be looked up, one after another, to answer this question? "
        'Reply with JSON {"facts_needed": N}.\n\nQuestion: ' + question
    )
    options = ChatOptions(temperature=0.0, max_tokens=16, json_schema=CLASSIFY_SCHEMA)
    result = await meter.chat(backend, [Message.user(prompt)], options)
    match = re.search(r"\d+", result.message.content)
    return match is not None and int(match.group(0)) >= 2


def open_library(library_or_paths: Any, cache_dir: Path | str | None = None) -> tuple[Any, list[str] | None]:
    """A Library and the doc ids to read: paths are added to a new Library (its cache makes that cheap)."""
    if hasattr(library_or_paths, "search"):
        return library_or_paths, None
    from lector.retrieval.library import Library, walk_paths

    paths = [library_or_paths] if isinstance(library_or_paths, str | Path) else list(library_or_paths)
    library = Library(cache_dir=cache_dir)
    return library, [library.add_file(p) for p in walk_paths(paths)]


def normal_level(level: LevelArg) -> str:
    text = str(level).lower()
    if text in ("0", "direct"):
        return "0"
    if text not in ("auto", "1", "2", "3"):
        raise ValueError(f"unknown level {level!r}: expected auto, direct, 1, 2 or 3")
    return text


async def _direct(
    library: LibraryLike, backend: Backend, question: str, ids: Sequence[str], meter: UsageMeter,
    config: ReaderConfig,
) -> Answer | None:
    budget = evidence_budget(backend, question, config.level1.answer_reserve)
    if library.total_tokens(list(ids)) > budget:
        return None
    chunks = [c for doc_id in ids for c in library.chunks(doc_id)]
    evidence = pack_chunks(chunks, budget, chunk_cost(backend))
    if not evidence:
        return None
    composed = await answer_from_evidence(  # the whole text is there: nothing to escalate to
        backend, question, evidence, meter, max_tokens=config.level1.max_answer_tokens, allow_not_found=False
    )
    return Answer(
        answer=composed.text,
        level=0,
        citations=composed.citations,
        found=composed.found,
        usage=meter.snapshot(),
        details={"grounded": composed.found and grounded(composed.text, question, composed.cited)},
    )


async def level2_events(
    library: LibraryLike, backend: Backend, question: str, ids: Sequence[str], config: Level2Config,
    meter: UsageMeter, keyword_cache: KeywordCache | None,
) -> AsyncIterator[ChunkRead | Answer]:
    """Level 2, yielding a ChunkRead as each chunk is read and the Answer last."""
    queue: asyncio.Queue[ChunkRead] = asyncio.Queue()

    def progress(info: dict[str, Any]) -> None:
        queue.put_nowait(ChunkRead(source=info["source"], chunk_id=info["chunk_id"], quotes=info["quotes"],
                                   offered=info["offered"]))

    task = asyncio.ensure_future(
        level2(library, backend, question, ids, config, meter, keyword_cache, progress=progress)
    )
    try:
        while not task.done():
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                yield getter.result()
            else:
                getter.cancel()
        while not queue.empty():
            yield queue.get_nowait()
        yield task.result()
    finally:
        if not task.done():
            task.cancel()


def insufficient(answer: Answer, config: ReaderConfig) -> str:
    """Why Level 1's answer should not be trusted, or '' when it is fine."""
    if not answer.found:
        return "the model did not find the answer in the evidence"
    if not answer.citations:
        return "no citation"
    if not answer.details.get("grounded", True):
        return "the answer is not in the cited evidence"
    if float(answer.details.get("top_score", 1.0)) < config.min_top_score:
        return "weak BM25 matches"
    return ""


async def ask_events(
    library_or_paths: Any,
    question: str,
    level: LevelArg = "auto",
    backend: Backend | None = None,
    *,
    doc_ids: Sequence[str] | None = None,
    config: ReaderConfig | None = None,
    keyword_cache: KeywordCache | None = None,
    cache_dir: Path | str | None = None,
) -> AsyncIterator[ReaderEvent]:
    """Answer `question`, streaming the levels chosen, Level 3's sub-questions, and finally AnswerReady."""
    config = config or ReaderConfig()
    chosen = normal_level(level)
    if backend is None:
        from lector.llm.factory import make_backend

        backend = make_backend()
    library, opened = open_library(library_or_paths, cache_dir)
    ids = list(doc_ids or opened or all_doc_ids(library))
    meter = UsageMeter()
    started = time.perf_counter()
    tried: list[int] = []
    answer: Answer | None = None
    level1_answer: str | None = None

    if chosen == "auto":
        if config.direct:
            fits = library.total_tokens(ids) <= evidence_budget(
                backend, question, config.level1.answer_reserve
            )
            if fits:
                yield LevelChosen(level=0, reason="the documents fit the window")
                answer = await _direct(library, backend, question, ids, meter, config)
        if answer is None:
            multi = False
            if config.multi_hop == "heuristic":
                multi = looks_multi_hop(question)
            elif config.multi_hop == "model":
                multi = await classify_multi_hop(backend, question, meter)
            chosen = "3" if multi else "1"
    elif chosen == "0":
        yield LevelChosen(level=0, reason="asked")
        answer = await _direct(library, backend, question, ids, meter, config)
        if answer is None:
            raise ValueError("the documents do not fit the model's window; use level 1, 2, 3 or auto")

    if answer is None and chosen == "1":
        yield LevelChosen(level=1, reason="retrieve")
        answer = await level1(library, backend, question, ids, config.level1, meter, keyword_cache)
        why = insufficient(answer, config) if normal_level(level) == "auto" else ""
        if why:
            tried.append(1)
            level1_answer = answer.answer
            chosen = "2"
            yield LevelChosen(level=2, reason=f"escalated from Level 1: {why}")
    elif answer is None and chosen == "2":
        yield LevelChosen(level=2, reason="read")
    if chosen == "2":
        async for item in level2_events(library, backend, question, ids, config.level2, meter, keyword_cache):
            if isinstance(item, Answer):
                answer = item
            else:
                yield item
    if answer is None and chosen == "3":
        yield LevelChosen(level=3, reason="multi-hop question" if normal_level(level) == "auto" else "asked")
        async for event in stepwise_events(
            library, backend, question, ids, config.stepwise, meter, keyword_cache
        ):
            if isinstance(event, AnswerReady):
                answer = event.answer
            else:
                yield event

    assert answer is not None
    answer.usage = meter.snapshot()
    answer.elapsed_s = time.perf_counter() - started
    if tried:
        answer.details["escalated_from"] = tried
    if level1_answer is not None:
        answer.details["level1_answer"] = level1_answer
    yield AnswerReady(answer=answer)


async def aask(
    library_or_paths: Any,
    question: str,
    level: LevelArg = "auto",
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
    library_or_paths: Any,
    question: str,
    level: LevelArg = "auto",
    backend: Backend | None = None,
    **kwargs: Any,
) -> Answer:
    """Answer a question over a Library or some files, with citations; `answer.level` says how."""
    result: Answer = run_sync(aask(library_or_paths, question, level, backend, **kwargs))
    return result
