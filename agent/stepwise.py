"""Level 3, reason stepwise. First it follows names (retrieval/follow_names.py): retrieve hop by hop along the names
the best sentences give, and answer once from that chain. When that answer is not found or not grounded, a
planner splits the question into sub-questions, asks Level 2 each one as a tool, and composes a cited answer
from what came back. Every step is streamed as an event.

The planner replies under a JSON grammar ({"action": "ask"|"answer", "text": ...}) rather than free-form tool
calls: with a 1.5B model that is the difference between a plan and a parse error.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from lector.llm.backend import ChatOptions
from lector.llm.messages import Message
from lector.retrieval.answer_prompt import answer_from_evidence
from lector.retrieval.budget import Budget
from lector.retrieval.cjk import has_cjk
from lector.retrieval.context import ReadingContext
from lector.retrieval.follow_names import BridgeConfig, follow_names
from lector.retrieval.follow_relations import RelationConfig, follow_relations
from lector.retrieval.keywords import Keywords, question_keywords
from lector.retrieval.level1 import document_languages, find_keywords
from lector.retrieval.level2 import Level2Config, Passages, Reading, level2
from lector.retrieval.levels import Level
from lector.retrieval.own_terms import same_language
from lector.retrieval.reading_types import Answer, Citation, Evidence
from lector.retrieval.types import Chunk

DEFAULT_BUDGET = Budget(max_calls=12, max_tokens=8_000, max_seconds=100)
"""Level 3's budget before its final answer: a small model on a laptop's CPU reads prompts slowly, so these bound
the worst case, final answer included, to a few minutes (bench/latency.py measures it)."""


class StepwiseConfig(BaseModel):
    max_sub_questions: int = 3
    budget: Budget = Field(default_factory=lambda: DEFAULT_BUDGET.model_copy())
    """Calls, tokens and seconds of everything before the final answer (following names, planning, Level 2's
    reads); once spent, nothing more is asked and the answer is composed from what was found."""
    level2: Level2Config = Field(default_factory=lambda: Level2Config(unread_answer_past_budget=False))
    """How each sub-question is read; past the budget, one whose reads verified nothing is not found."""
    planner_max_tokens: int = 120
    max_answer_tokens: int = 256
    max_evidence_per_step: int = 4
    relations: RelationConfig | None = Field(default_factory=RelationConfig)
    """Follow the question's chain of relations first ("the father of X's father"); None skips it."""
    follow_names: BridgeConfig | None = Field(default_factory=BridgeConfig)
    """Try following names first (two calls); None goes straight to the planner. On multi-hop needles in long
    documents a small planner tends to re-ask the whole question reworded, call after call, while the chain of
    sentences found by following names holds both facts."""


class SubQuestion(BaseModel):
    """The planner asks Level 2 a sub-question."""

    type: Literal["sub_question"] = "sub_question"
    index: int
    question: str


class SubAnswer(BaseModel):
    """Level 2's answer to a sub-question, with its citations."""

    type: Literal["sub_answer"] = "sub_answer"
    index: int
    question: str
    answer: str
    found: bool = True
    citations: list[Citation] = Field(default_factory=list)


class LevelChosen(BaseModel):
    """The reader picked (or escalated to) a level."""

    type: Literal["level"] = "level"
    level: Level
    reason: str = ""


class ChunkRead(BaseModel):
    """Level 2 read one chunk; `quotes` are the verified ones (`offered` counts all the model gave)."""

    type: Literal["chunk_read"] = "chunk_read"
    source: str
    chunk_id: int
    quotes: list[str] = Field(default_factory=list)
    offered: int = 0
    index: int = 0
    """Which passage it was (from 1), of the `total` Level 2 had chosen to read."""
    total: int = 0


class PassagesReading(BaseModel):
    """Level 2 starts reading passages `first` to `last` (from 1) of the `total` it has chosen so far."""

    type: Literal["reading"] = "reading"
    first: int
    last: int
    total: int
    sources: list[str] = Field(default_factory=list)
    """The documents of those passages, each once."""


class AnswerReady(BaseModel):
    """The last event: the finished answer."""

    type: Literal["answer"] = "answer"
    answer: Answer


ReaderEvent = SubQuestion | SubAnswer | LevelChosen | PassagesReading | ChunkRead | AnswerReady


def read_event(read: Reading | Passages) -> PassagesReading | ChunkRead:
    """Level 2's progress as a reader event."""
    if isinstance(read, Passages):
        sources = list(dict.fromkeys(c.source for c in read.chunks))
        return PassagesReading(first=read.first, last=read.last, total=read.total, sources=sources)
    return ChunkRead(
        source=read.chunk.source,
        chunk_id=read.chunk.chunk_id,
        quotes=read.quotes,
        offered=read.offered,
        index=read.index,
        total=read.total,
    )


async def level2_events(
    ctx: ReadingContext, question: str, config: Level2Config, keywords: Keywords | None = None
) -> AsyncIterator[PassagesReading | ChunkRead | AnswerReady]:
    """Level 2, yielding PassagesReading as each wave of passages starts, a ChunkRead as each is read, and
    AnswerReady last."""
    queue: asyncio.Queue[PassagesReading | ChunkRead] = asyncio.Queue()

    async def progress(read: Reading | Passages) -> None:
        await queue.put(read_event(read))
        await queue.join()  # Level 2 goes on once whoever iterates has handled the event

    task = asyncio.ensure_future(level2(ctx, question, config, keywords=keywords, progress=progress))
    try:
        while not task.done():
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                yield getter.result()
                queue.task_done()
            else:
                getter.cancel()
        while not queue.empty():
            yield queue.get_nowait()
            queue.task_done()
        yield AnswerReady(answer=task.result())
    finally:
        if not task.done():
            task.cancel()


PLAN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ["ask", "answer"]},
        "text": {"type": "string", "minLength": 1, "maxLength": 300},
    },
    "required": ["action", "text"],
    "additionalProperties": False,
}

PLAN_SYSTEM = (
    "You answer a question about some documents by asking simpler questions, one at a time; each is answered "
    "from the documents. Ask for ONE fact per question, and use the facts already found to word the next "
    "question (put names you learned into it). When the facts are enough, give the final answer.\n"
    'Reply with JSON only: {"action": "ask", "text": "<one simple question>"} or '
    '{"action": "answer", "text": "<final answer>"}.\n'
    'Example: for "Where was the founder of Acme born?" first ask "Who founded Acme?"; after learning '
    '"Jane Roe founded Acme", ask "Where was Jane Roe born?".'
)


def plan_messages(question: str, steps: Sequence[SubAnswer]) -> list[Message]:
    lines = [f"Question: {question.strip()}", ""]
    if steps:
        lines.append("Facts found so far:")
        for s in steps:
            said = s.answer if s.found else "not found in the documents"
            lines.append(f"{s.index}. {s.question} -> {said}")
    else:
        lines.append("No facts found yet.")
    lines.append("")
    lines.append("What next? Reply with JSON.")
    return [Message.system(PLAN_SYSTEM), Message.user("\n".join(lines))]


def parse_plan(text: str) -> tuple[str, str] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    action, body = data.get("action"), data.get("text")
    if action not in ("ask", "answer") or not isinstance(body, str) or not body.strip():
        return None
    return action, body.strip()


def _citation_evidence(c: Citation, score: float = 0.0) -> Evidence:
    chunk = Chunk(
        doc_id=c.source, source=c.source, chunk_id=c.chunk_id, start=c.start, end=c.end, page=c.page, text=c.text
    )
    return Evidence(chunk=chunk, text=c.text, start=c.start, end=c.end, score=score)


def _normal(q: str) -> str:
    return " ".join(q.lower().split()).rstrip("?？ ")


async def stepwise_events(
    ctx: ReadingContext, question: str, config: StepwiseConfig | None = None
) -> AsyncIterator[ReaderEvent]:
    """Follow names; failing that, plan, ask Level 2, repeat within budget, then compose. Yields each
    sub-question, the passages Level 2 reads for it (PassagesReading, ChunkRead), its sub-answer, and AnswerReady
    last."""
    config = config or StepwiseConfig()
    started = time.perf_counter()
    ctx.meter.limit(config.budget)
    related = await follow_relations(ctx, question, config.relations) if config.relations is not None else None
    if related is not None and related.grounded:
        related.details["chunks_read"] = []
        yield AnswerReady(answer=related)
        return
    steps = established_links(related)
    for link in steps:  # what the chain did establish: the planner goes on from there
        yield SubQuestion(index=link.index, question=link.question)
        yield link
    chained: Answer | None = None
    if config.follow_names is not None and not ctx.meter.spent() and not steps:
        chained = await follow_names(ctx, question, config.follow_names)
        if chained.grounded:
            chained.details["chunks_read"] = []
            chained.elapsed_s = time.perf_counter() - started
            yield AnswerReady(answer=chained)
            return
    known = len(steps)
    chunks_read: list[list[Any]] = []
    asked: set[str] = {_normal(s.question) for s in steps}
    draft = ""
    while len(steps) - known < config.max_sub_questions and not ctx.meter.spent():
        plan = await next_plan(ctx, question, steps, config)
        if plan is None:
            break
        action, text = plan
        if action == "answer":
            draft = text
            break
        if _normal(text) in asked:
            break
        asked.add(_normal(text))
        yield SubQuestion(index=len(steps) + 1, question=text)
        sub: Answer | None = None
        keywords = await sub_question_keywords(ctx, text, config.level2.use_model_keywords)
        async for read in level2_events(ctx, text, config.level2, keywords):  # its passages, as it reads them
            if isinstance(read, AnswerReady):
                sub = read.answer
            else:
                yield read
        assert sub is not None
        chunks_read += [c for c in sub.details.get("chunks_read", []) if c not in chunks_read]
        steps.append(
            SubAnswer(index=len(steps) + 1, question=text, answer=sub.answer, found=sub.found, citations=sub.citations)
        )
        yield steps[-1]
    stopped = ctx.meter.spent()
    if stopped and len(steps) == known and chained is not None and chained.found:
        answer = chained  # the budget went on following names: answer from that chain
    else:
        answer = await compose_answer(ctx, question, steps, draft, config)
    unfollowed = related.details.get("not_established", []) if related is not None and not answer.found else []
    answer = with_gaps(answer, steps, stopped, unfollowed)
    answer.details["chunks_read"] = chunks_read
    answer.elapsed_s = time.perf_counter() - started
    yield AnswerReady(answer=answer)


def established_links(related: Answer | None) -> list[SubAnswer]:
    """The links of the question's chain that were found before one was not, as answered sub-questions."""
    links = related.details.get("links", []) if related is not None else []
    return [
        SubAnswer(index=n, question=link["question"], answer=link["answer"], citations=link["citations"])
        for n, link in enumerate(links, 1)
    ]


async def sub_question_keywords(ctx: ReadingContext, sub_question: str, use_model: bool) -> Keywords:
    """A sub-question's query: its own terms where the documents are written in its language (the planner words
    it with the names already found), else the model's keywords in the documents' languages (one call)."""
    languages = document_languages(ctx.library, ctx.document_ids())
    if not use_model or same_language(sub_question, languages):
        return question_keywords(sub_question)
    return await find_keywords(ctx, sub_question, use_model)


async def next_plan(
    ctx: ReadingContext, question: str, steps: Sequence[SubAnswer], config: StepwiseConfig
) -> tuple[str, str] | None:
    """The planner's next move, ("ask", sub-question) or ("answer", draft); None ends the planning."""
    options = ChatOptions(temperature=0.0, max_tokens=config.planner_max_tokens, json_schema=PLAN_SCHEMA)
    result = await ctx.meter.chat(ctx.backend, plan_messages(question, steps), options)
    plan = parse_plan(result.message.content)
    if plan is None:
        return None if steps else ("ask", question)  # an unusable first plan: ask the whole question
    if plan[0] == "answer" and not steps:
        return "ask", question  # no facts yet: an answer now would be a guess
    return plan


async def compose_answer(
    ctx: ReadingContext, question: str, steps: Sequence[SubAnswer], draft: str, config: StepwiseConfig
) -> Answer:
    """One cited answer from the sub-answers' evidence, or the planner's draft when there is none."""
    evidence: list[Evidence] = []
    seen: set[tuple[str, int, int]] = set()
    for s in steps:
        for c in s.citations[: config.max_evidence_per_step]:
            key = (c.source, c.start, c.end)
            if key not in seen:
                seen.add(key)
                evidence.append(_citation_evidence(c))
    findings = "\n".join(f"- {s.question} -> {s.answer if s.found else 'not found'}" for s in steps)
    notes = ("已查明：\n" if has_cjk(question) else "Findings so far:\n") + findings if steps else ""
    details: dict[str, Any] = {"sub_questions": [s.model_dump() for s in steps], "draft": draft}
    if not evidence:
        return Answer(
            answer=draft or "NOT FOUND: the documents did not yield the facts this question needs.",
            level=Level.STEPWISE,
            found=bool(draft) and any(s.found for s in steps),  # a draft no sub-answer supports is a guess
            usage=ctx.meter.snapshot(),
            details=details,
        )
    composed = await answer_from_evidence(
        ctx.backend,
        question,
        evidence,
        ctx.meter,
        max_tokens=config.max_answer_tokens,
        notes=notes,
        allow_not_found=False,
    )
    return composed.to_answer(Level.STEPWISE, ctx.meter.snapshot(), details=details)


def with_gaps(answer: Answer, steps: Sequence[SubAnswer], stopped: str, unfollowed: Sequence[str] = ()) -> Answer:
    """The answer, saying what it could not establish: the links of the question's chain no text states, the
    sub-questions left unanswered, and the rest of the question when the budget ran out first."""
    gaps = [*unfollowed, *(s.question for s in steps if not s.found)]
    if stopped:
        gaps.append("the rest of the question: " + stopped)
    if not gaps:
        return answer
    note = "Could not establish: " + "; ".join(gaps) + "."
    return answer.model_copy(
        update={
            "answer": f"{answer.answer.rstrip()}\n\n{note}",
            "details": {**answer.details, "not_established": gaps, "budget": stopped},
        }
    )


async def level3(ctx: ReadingContext, question: str, config: StepwiseConfig | None = None) -> Answer:
    answer: Answer | None = None
    async for event in stepwise_events(ctx, question, config):
        if isinstance(event, AnswerReady):
            answer = event.answer
    assert answer is not None
    return answer
