"""An answer from documents as the page and the side panel show it: the reader's progress as events (each passage
read with its number, the verified quotes, sub-questions, plain status lines), citations that name their document,
and, when the person stops it, what had been found and what it cost."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lector.agent.events import Final, StopReason
from lector.agent.reader import ReaderConfig
from lector.agent.stepwise import AnswerReady, ChunkRead, LevelChosen, ReaderEvent, SubAnswer, SubQuestion
from lector.llm.backend import Backend, ChatOptions, Delta, Usage
from lector.llm.messages import Message, ToolSpec
from lector.retrieval.levels import Level
from lector.retrieval.reading_types import Citation

Emit = Callable[[dict[str, Any]], Awaitable[None]]

LEVEL_STEPS = {
    Level.DIRECT: "Reading the whole of {names} and writing the answer…",
    Level.RETRIEVE: "Finding the best passages of {names} and writing the answer from them…",
    Level.READ: "Choosing the passages of {names} to read…",
    Level.STEPWISE: "Following the names in your question through {names}…",
}


class MeteredBackend(Backend):
    """The model, counting the calls and tokens of one answer, so that a stopped answer can say what it cost.

    A call cut off before its last piece is counted from what it was sent and what it wrote."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name
        self.context_size = inner.context_size
        self.native_tools = inner.native_tools
        self.parallel_slots = inner.parallel_slots
        self.calls = 0
        self.usage = Usage()

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    async def astream(
        self, messages: list[Message], tools: list[ToolSpec] | None = None, options: ChatOptions | None = None
    ) -> AsyncIterator[Delta]:
        self.calls += 1
        reported: Usage | None = None
        written: list[str] = []
        try:
            async for delta in self.inner.astream(messages, tools, options):
                reported = delta.usage or reported
                written.append(delta.text)
                yield delta
        finally:
            if reported is None:
                sent = sum(self.count_tokens(m.content) for m in messages)
                reported = Usage(prompt_tokens=sent, completion_tokens=self.count_tokens("".join(written)))
            self.usage = self.usage + reported


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


@dataclass
class Progress:
    """Turns the reader's events into the events a page shows, remembering what was found on the way."""

    library: Any
    doc_ids: Sequence[str]
    config: ReaderConfig
    read: int = 0
    quotes: list[tuple[str, str]] = field(default_factory=list)
    sub_answers: list[SubAnswer] = field(default_factory=list)

    @property
    def names(self) -> str:
        return names_of([self.library.document(d).source for d in self.doc_ids if d in self.library])

    def events(self, event: ReaderEvent) -> list[dict[str, Any]]:
        shown = event.model_dump(mode="json")
        if isinstance(event, ChunkRead):
            self.read += 1
            self.quotes += [(event.source, q) for q in event.quotes]
            shown.update(index=self.read, total=self.config.level2.max_chunks)
            return [shown]
        if isinstance(event, LevelChosen):
            step = LEVEL_STEPS.get(event.level)
            return [shown, *([{"type": "status", "text": step.format(names=self.names)}] if step else [])]
        if isinstance(event, SubQuestion):
            return [shown, {"type": "status", "text": f"Reading {self.names} for sub-question {event.index}…"}]
        if isinstance(event, SubAnswer):
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
        final.update({k: v for k, v in self.extra.items() if k in ("citations", "level")})
        return final


async def read_documents(
    library: Any, question: str, level: Level, backend: Backend, doc_ids: Sequence[str], emit: Emit,
    cancel: asyncio.Event,
) -> DocumentReply:
    """Answer `question` from the documents, sending each progress event to `emit`, until done or `cancel`."""
    from lector.agent.reader import ask_events

    config = ReaderConfig()
    metered = MeteredBackend(backend)
    progress = Progress(library, doc_ids, config)
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
        return DocumentReply(progress.stopped_text(), metered.usage, {"usage": usage, "stopped_reason": "cancelled"})
    answer = reading.result()
    extra = {
        "citations": cited(answer.citations, library, doc_ids),
        "level": int(answer.level),
        "usage": answer.usage.model_dump(),
        "stopped_reason": "done",
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
