"""What the reading levels share: the library they read, the evidence they show the model, the answer they
give back with its citations, and the meter that counts every model call one answer makes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field, field_validator

from lector.llm.backend import Backend, ChatOptions, ChatResult, Usage
from lector.llm.messages import Message
from lector.retrieval.budget import Budget, Limit
from lector.retrieval.levels import Level
from lector.retrieval.types import Chunk, Hit


class DocumentLike(Protocol):
    @property
    def doc_id(self) -> str: ...


@runtime_checkable
class LibraryLike(Protocol):
    """What the reading levels need from `retrieval.library.Library`."""

    def search(self, query: str, k: int = 8, doc_ids: Sequence[str] | None = None) -> list[Hit]: ...

    def documents(self) -> Sequence[DocumentLike]: ...

    def chunks(self, doc_id: str) -> list[Chunk]: ...

    def chunk(self, doc_id: str, chunk_id: int) -> Chunk: ...

    def neighbours(self, doc_id: str, chunk_id: int, radius: int = 1) -> list[Chunk]: ...

    def total_tokens(self, doc_ids: Sequence[str] | None = None) -> int: ...


class Citation(BaseModel):
    source: str
    chunk_id: int
    start: int
    """Character offsets of `text` in the document's parsed text."""
    end: int
    page: int | None = None
    text: str


class AnswerUsage(BaseModel):
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Answer(BaseModel):
    answer: str
    level: Level
    """The level that answered: DIRECT (the whole document fitted), RETRIEVE, READ or STEPWISE."""
    citations: list[Citation] = Field(default_factory=list)
    usage: AnswerUsage = Field(default_factory=AnswerUsage)
    elapsed_s: float = 0.0
    found: bool = True
    """False when the model said the evidence does not contain the answer."""
    grounded: bool = False
    """The answer says something its cited evidence contains, beyond the question's own words."""
    top_score: float | None = None
    """The best BM25 score of the level's search, where it searched."""
    escalated_from: list[Level] = Field(default_factory=list)
    """The levels Auto tried before this one, whose answers it did not trust."""
    level1_answer: str | None = None
    """Level 1's answer, when Auto escalated past it."""
    details: dict[str, Any] = Field(default_factory=dict)
    """Diagnostics (keywords, chunks read, sub-questions); not part of the stable JSON."""

    @field_validator("level")
    @classmethod
    def _one_level(cls, level: Level) -> Level:
        if level is Level.AUTO:
            raise ValueError("an answer comes from one level, not auto")
        return level

    @classmethod
    def nothing_found(cls, level: Level, usage: AnswerUsage, elapsed_s: float, **fields: Any) -> Answer:
        return cls(
            answer="NOT FOUND: nothing in the documents matches the question.",
            level=level,
            found=False,
            usage=usage,
            elapsed_s=elapsed_s,
            **fields,
        )

    def to_json_dict(self) -> dict[str, Any]:
        """The stable `lector ask --json` shape."""
        return {
            "answer": self.answer,
            "level": int(self.level),
            "citations": [c.model_dump() for c in self.citations],
            "usage": self.usage.model_dump(),
            "elapsed_s": round(self.elapsed_s, 3),
        }


class UsageMeter:
    """Counts model calls and tokens over every call one answer makes (parallel calls included)."""

    def __init__(self) -> None:
        self.calls = 0
        self.usage = Usage()
        self.limits: list[Limit] = []

    def limit(self, budget: Budget) -> Limit:
        """Count `budget` from now; `spent` says when it (or an earlier limit) is spent."""
        limit = Limit(budget, self.calls, self.usage.total_tokens)
        self.limits.append(limit)
        return limit

    def spent(self) -> str:
        """Why the next model call is over budget, or '' (always '' without a limit)."""
        return next((why for limit in self.limits if (why := limit.spent(self.calls, self.usage.total_tokens))), "")

    def add(self, usage: Usage) -> None:
        self.calls += 1
        self.usage = self.usage + usage

    def snapshot(self) -> AnswerUsage:
        return AnswerUsage(
            llm_calls=self.calls,
            prompt_tokens=self.usage.prompt_tokens,
            completion_tokens=self.usage.completion_tokens,
        )

    async def chat(self, backend: Backend, messages: list[Message], options: ChatOptions) -> ChatResult:
        result = await backend.achat(messages, None, options)
        self.add(result.usage)
        return result


@dataclass
class Evidence:
    """One numbered piece of evidence shown to the model: `text` lies at `start:end` in its document."""

    chunk: Chunk
    text: str
    start: int
    end: int
    score: float = 0.0
    quotes: list[str] = field(default_factory=list)

    @classmethod
    def of_chunk(cls, chunk: Chunk, score: float = 0.0) -> Evidence:
        return cls(chunk=chunk, text=chunk.text, start=chunk.start, end=chunk.end, score=score)

    def location(self) -> str:
        parts = [self.chunk.source]
        if self.chunk.page is not None:
            parts.append(f"page {self.chunk.page}")
        if self.chunk.section:
            parts.append(self.chunk.section[:80])
        parts.append(f"chunk {self.chunk.chunk_id}")
        return ", ".join(parts)

    def citation(self, text: str | None = None) -> Citation:
        return Citation(
            source=self.chunk.source,
            chunk_id=self.chunk.chunk_id,
            start=self.start,
            end=self.end,
            page=self.chunk.page,
            text=text if text is not None else self.text,
        )

    def span_citation(self, start: int, end: int) -> Citation:
        """A citation of `text[start:end]` of this evidence."""
        return Citation(
            source=self.chunk.source,
            chunk_id=self.chunk.chunk_id,
            start=self.start + start,
            end=self.start + end,
            page=self.chunk.page,
            text=self.text[start:end],
        )


def chunk_refs(evidence: Sequence[Evidence]) -> list[list[str | int]]:
    """The [source, chunk_id] of the chunks `evidence` came from, each once, in order (an answer's details)."""
    return [list(ref) for ref in dict.fromkeys((e.chunk.source, e.chunk.chunk_id) for e in evidence)]
