"""An answer from documents as the page and the side panel show it: the reader's progress as events (each passage
read with its number, the verified quotes, sub-questions, plain status lines), citations that name their document,
and, when the person stops it, what had been found and what it cost."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from lector.agent.events import Final, StopReason
from lector.agent.model_calls import ModelFailed
from lector.agent.reader import CLASSIFY_SCHEMA, ReaderConfig
from lector.agent.stepwise import (
    PLAN_SCHEMA,
    AnswerReady,
    ChunkRead,
    LevelChosen,
    PassagesReading,
    ReaderEvent,
    SubAnswer,
    SubQuestion,
)
from lector.llm.backend import Backend, ChatOptions, Delta, PromptRead, Usage, WrappedBackend
from lector.llm.errors import LLMError
from lector.llm.messages import Message, ToolSpec
from lector.retrieval.answer_prompt import is_answer_schema
from lector.retrieval.levels import Level
from lector.retrieval.reading_types import Citation
from lector.webui.answer_draft import Draft

Emit = Callable[[dict[str, Any]], Awaitable[None]]
Written = Callable[[str], Awaitable[None]]

LEVEL_STEPS = {
    Level.DIRECT: "Reading the whole of {names} and writing the answer…",
    Level.RETRIEVE: "Finding the best passages of {names} and writing the answer from them…",
    Level.READ: "Choosing the passages of {names} to read…",
    Level.STEPWISE: "Following the names in your question through {names}…",
}


class CallWatcher(Protocol):
    async def call_started(self, options: ChatOptions | None) -> Written | None:
        """Hears that a model call starts; returns what hears each piece of text it writes, if anything does."""

    async def prompt_read(self, read: PromptRead) -> None:
        """Hears how far the model has read a long prompt."""


class MeteredBackend(WrappedBackend):
    """The model, counting the calls and tokens of one answer, so that a stopped answer can say what it cost, and
    telling `watcher` of each call and what it writes.

    A call cut off before its last piece is counted from what it was sent and what it wrote. `writing_s` is the
    time spent writing, from each call's first piece to its last, so reading prompts does not count as writing."""

    def __init__(self, inner: Backend, watcher: CallWatcher | None = None) -> None:
        super().__init__(inner)
        self.watcher = watcher
        self.calls = 0
        self.usage = Usage()
        self.writing_s = 0.0

    async def astream(
        self, messages: list[Message], tools: list[ToolSpec] | None = None, options: ChatOptions | None = None
    ) -> AsyncIterator[Delta]:
        self.calls += 1
        reported: Usage | None = None
        written: list[str] = []
        first = last = 0.0
        hear = await self.watcher.call_started(options) if self.watcher is not None else None
        try:
            async for delta in self.inner.astream(messages, tools, options):
                reported = delta.usage or reported
                written.append(delta.text)
                if delta.text or delta.tool_calls:
                    last = time.monotonic()
                    first = first or last
                if delta.prompt_read is not None and self.watcher is not None:
                    await self.watcher.prompt_read(delta.prompt_read)
                if hear is not None and delta.text:
                    await hear(delta.text)
                yield delta
        finally:
            if reported is None:
                sent = sum(self.count_tokens(m.content) for m in messages)
                reported = Usage(prompt_tokens=sent, completion_tokens=self.count_tokens("".join(written)))
            self.usage = self.usage + reported
            self.writing_s += last - first


def failure_text(exc: BaseException) -> str:
    """A failed answer in the words a person reads: the model's errors as the chat says them ("Model error: no
    model server at ..."), a refused request (ValueError) by its reason alone, anything else with its kind."""
    if isinstance(exc, LLMError):
        return ModelFailed(exc).message
    if isinstance(exc, ValueError) and str(exc):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def names_of(sources: Sequence[str]) -> str:
    short = [s.rstrip("/").rsplit("/", 1)[-1] or s for s in sources]
    return " and ".join(short) if len(short) <= 2 else f"{len(short)} documents"


def cited(citations: Sequence[Citation], library: Any, doc_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Citations as JSON, each with the id of the document it quotes (`doc_id`), so a page can open it."""
    sources = {d: library.document(d).source for d in doc_ids if d in library}
    out = []
    for c in citations:
        named = [d for d, source in sources.items() if source == c.source]
        exact = [d for d in named if library.text(d)[c.start : c.end] == c.text]
        chosen = exact or named
        out.append({**c.model_dump(), "doc_id": chosen[0] if chosen else None})
    return out


CALL_STEPS = [
    (CLASSIFY_SCHEMA, "Deciding whether your question takes several steps…"),
    (PLAN_SCHEMA, "Planning the next question to ask {names}…"),
]
ANSWER_STEP = "Writing the answer from what was found…"


def call_step(options: ChatOptions | None) -> str | None:
    """What a model call is doing, in words, from the reply it must give."""
    schema = options.json_schema if options is not None else None
    if not schema:
        return None
    if any(name.startswith("keywords_") for name in schema.get("properties", {})):
        return "Choosing the words to search {names} for…"
    if is_answer_schema(schema):
        return ANSWER_STEP
    return next((step for known, step in CALL_STEPS if schema == known), None)


@dataclass
class Progress:
    """Turns the reader's events into the events a page shows, remembering what was found on the way; as a
    CallWatcher it says what each model call is for and streams the answer as a `draft` while it is written."""

    library: Any
    doc_ids: Sequence[str]
    config: ReaderConfig
    emit: Emit
    quotes: list[tuple[str, str]] = field(default_factory=list)
    sub_answers: list[SubAnswer] = field(default_factory=list)
    in_sub_question: bool = False
    sub_index: int = 0
    drafted: bool = False

    @property
    def names(self) -> str:
        return names_of([self.library.document(d).source for d in self.doc_ids if d in self.library])

    async def call_started(self, options: ChatOptions | None) -> Written | None:
        step = call_step(options)
        if self.in_sub_question:
            return None  # Level 2 answering a sub-question: its answer comes as a sub_answer
        if options is not None and options.json_schema == PLAN_SCHEMA and self.drafted:
            await self.emit({"type": "draft", "text": "", "reset": True})  # Level 3 did not keep that answer
            self.drafted = False
        if step is not None:
            await self.emit({"type": "status", "text": step.format(names=self.names)})
        if options is None or not is_answer_schema(options.json_schema):
            return None
        draft = Draft()
        reset = self.drafted

        async def hear(piece: str) -> None:
            nonlocal reset
            new, replace = draft.advance(piece)
            if new or replace or reset:
                await self.emit({"type": "draft", "text": new, "reset": replace or reset})
                self.drafted, reset = True, False

        return hear

    async def prompt_read(self, read: PromptRead) -> None:
        await self.emit({"type": "prompt_progress", "done": read.done, "total": read.total})

    def events(self, event: ReaderEvent) -> list[dict[str, Any]]:
        shown = event.model_dump(mode="json")
        if isinstance(event, ChunkRead | PassagesReading) and self.in_sub_question:
            shown["sub"] = self.sub_index  # a passage read for that sub-question
        if isinstance(event, ChunkRead):
            self.quotes += [(event.source, q) for q in event.quotes]
            return [shown]
        if isinstance(event, LevelChosen):
            step = LEVEL_STEPS.get(event.level)
            dropped = [{"type": "draft", "text": "", "reset": True}] if self.drafted else []  # another level answers
            self.drafted = False
            return [*dropped, shown, *([{"type": "status", "text": step.format(names=self.names)}] if step else [])]
        if isinstance(event, SubQuestion):
            self.in_sub_question, self.sub_index = True, event.index
            return [shown, {"type": "status", "text": f"Reading {self.names} for sub-question {event.index}…"}]
        if isinstance(event, SubAnswer):
            self.in_sub_question = False
            self.sub_answers.append(event)
            shown["citations"] = cited(event.citations, self.library, self.doc_ids)
            return [shown, {"type": "status", "text": "Planning the next step…"}]
        return [shown]

    def stopped_text(self) -> str:
        """What a stopped answer says: the quotes verified and the sub-questions answered before the stop."""
        if not (self.quotes or self.sub_answers):
            return "Stopped before anything was found."
        lines = ["Stopped before the answer was written. Found so far:", ""]
        for source, quote in self.quotes:
            lines += [f"> {quote}", f"> — {names_of([source])}", ""]
        for sub in self.sub_answers:
            lines.append(f"- {sub.question} {sub.answer if sub.found else '(not found)'}")
        return "\n".join(lines).strip()


@dataclass
class DocumentReply:
    """The finished (or stopped) answer: its text, what it cost, and what the store keeps with it."""

    text: str
    usage: Usage
    extra: dict[str, Any]

    @property
    def stopped(self) -> bool:
        return bool(self.extra.get("stopped_reason") == "cancelled")

    def final_event(self, message: Message) -> dict[str, Any]:
        reason: StopReason = "cancelled" if self.stopped else "done"
        final = Final(message=message, messages=[message], usage=self.usage, stopped_reason=reason).model_dump()
        final.update({k: v for k, v in self.extra.items() if k in ("citations", "level", "writing_s")})
        return final


async def read_documents(
    library: Any,
    question: str,
    level: Level,
    backend: Backend,
    doc_ids: Sequence[str],
    emit: Emit,
    cancel: asyncio.Event,
) -> DocumentReply:
    """Answer `question` from the documents, sending each progress event to `emit`, until done or `cancel`."""
    from lector.agent.reader import ask_events

    config = ReaderConfig()
    progress = Progress(library, doc_ids, config, emit)
    metered = MeteredBackend(backend, progress)
    await emit({"type": "status", "text": f"Looking in {progress.names} for what answers your question…"})
    reader = ask_events(library, question, level, metered, doc_ids=doc_ids, config=config)
    reading = asyncio.ensure_future(_follow(reader, progress, emit))
    stopper = asyncio.ensure_future(cancel.wait())
    done, _ = await asyncio.wait({reading, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if reading not in done:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
        usage = {"llm_calls": metered.calls, **metered.usage.model_dump()}
        stopped = {"usage": usage, "stopped_reason": "cancelled", "writing_s": round(metered.writing_s, 3)}
        return DocumentReply(progress.stopped_text(), metered.usage, stopped)
    answer = reading.result()
    extra = {
        "citations": cited(answer.citations, library, doc_ids),
        "level": int(answer.level),
        "usage": answer.usage.model_dump(),
        "stopped_reason": "done",
        "writing_s": round(metered.writing_s, 3),
    }
    spent = Usage(prompt_tokens=answer.usage.prompt_tokens, completion_tokens=answer.usage.completion_tokens)
    return DocumentReply(answer.answer, spent, extra)


async def _follow(reader: AsyncIterator[ReaderEvent], progress: Progress, emit: Emit) -> Any:
    """Forward the reader's progress events; return its finished answer."""
    async for event in reader:
        if isinstance(event, AnswerReady):
            return event.answer
        for shown in progress.events(event):
            await emit(shown)
    raise RuntimeError("the reader finished without an answer")
