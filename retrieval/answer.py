"""Answers with citations: the shared types, the cost meter, and the prompt that answers from evidence."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, Field

from lector.llm.backend import Backend, ChatOptions, ChatResult, Usage
from lector.llm.messages import Message
from lector.retrieval.types import Chunk, Hit


class LibraryLike(Protocol):
    """What the reading levels need from `retrieval.library.Library`."""

    def search(self, query: str, k: int = 8, doc_ids: list[str] | None = None) -> list[Hit]: ...

    def chunks(self, doc_id: str) -> list[Chunk]: ...

    def chunk(self, doc_id: str, chunk_id: int) -> Chunk: ...

    def neighbours(self, doc_id: str, chunk_id: int, radius: int = 1) -> list[Chunk]: ...

    def total_tokens(self, doc_ids: list[str] | None = None) -> int: ...


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
    level: int
    """0 direct (the whole document fitted), 1 retrieve, 2 read, 3 reason stepwise."""
    citations: list[Citation] = Field(default_factory=list)
    usage: AnswerUsage = Field(default_factory=AnswerUsage)
    elapsed_s: float = 0.0
    found: bool = True
    """False when the model said the evidence does not contain the answer."""
    details: dict[str, Any] = Field(default_factory=dict)
    """Diagnostics (keywords, chunks read, sub-questions); not part of the stable JSON."""

    def to_json_dict(self) -> dict[str, Any]:
        """The stable `lector ask --json` shape."""
        return {
            "answer": self.answer,
            "level": self.level,
            "citations": [c.model_dump() for c in self.citations],
            "usage": self.usage.model_dump(),
            "elapsed_s": round(self.elapsed_s, 3),
        }


class UsageMeter:
    """Counts model calls and tokens over every call one answer makes (parallel calls included)."""

    def __init__(self) -> None:
        self.calls = 0
        self.usage = Usage()

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


def document_order(items: Sequence[Evidence], doc_rank: dict[str, int] | None = None) -> list[Evidence]:
    """Evidence sorted as it appears in the documents (documents in `doc_rank` order, else by source)."""
    rank = doc_rank or {}
    return sorted(items, key=lambda e: (rank.get(e.chunk.doc_id, 1 << 30), e.chunk.source, e.start))


ANSWER_SYSTEM = (
    "You answer questions using only the numbered evidence the user gives you. "
    "Answer briefly and cite the evidence you used with its number in brackets, like [1]."
)
ANSWER_SYSTEM_ZH = "只根据用户给出的编号证据回答问题。回答要简短，并用方括号注明所用证据的编号，例如 [1]。"
ANSWER_TAIL = "Write the answer in a few words, followed by the number of the evidence in brackets."
ANSWER_TAIL_ZH = "请用几个词写出答案，后面用方括号写上证据编号。"
NOT_FOUND_TAIL = (
    " The evidence may use other words than the question. If no passage is about what the question asks, "
    "write NOT FOUND."
)
NOT_FOUND_TAIL_ZH = "证据的用词可能与问题不同。只有当没有任何段落涉及问题所问的内容时，才写 NOT FOUND。"


def has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def format_evidence(items: Sequence[Evidence]) -> str:
    return "\n\n".join(f"[{i}] ({e.location()})\n{e.text.strip()}" for i, e in enumerate(items, 1))


def answer_messages(
    question: str, items: Sequence[Evidence], notes: str = "", allow_not_found: bool = True
) -> list[Message]:
    """Evidence goes in the user message with the question before and after it (never in the system prompt).

    `allow_not_found` offers the model the NOT FOUND reply, the signal Auto escalates on. Offer it only
    where the level can act on it: a 0.5B model takes that exit even when the answer is in plain sight.
    """
    zh = has_cjk(question)
    system = ANSWER_SYSTEM_ZH if zh else ANSWER_SYSTEM
    body = f"Question: {question.strip()}\n\nEvidence:\n\n{format_evidence(items)}\n\n"
    if notes:
        body += f"{notes.strip()}\n\n"
    body += f"Question: {question.strip()}\n{ANSWER_TAIL_ZH if zh else ANSWER_TAIL}"
    if allow_not_found:
        body += NOT_FOUND_TAIL_ZH if zh else NOT_FOUND_TAIL
    return [Message.system(system), Message.user(body)]


def prompt_overhead(backend: Backend, question: str) -> int:
    """Tokens the answer prompt takes besides the evidence itself."""
    skeleton = answer_messages(question, [])
    return sum(backend.count_tokens(m.content) for m in skeleton) + 16


_CITE = re.compile(r"\[(\d+(?:\s*[,，、]\s*\d+)*)\]")

_NOT_FOUND = re.compile(
    r"not\s+found|no (?:relevant )?information|not (?:mentioned|stated|provided|specified|given|contain)"
    r"|does(?:n't| not) (?:say|mention|contain|provide|specify|state)"
    r"|(?:cannot|can't|could not|unable to) (?:find|determine|answer|be determined)"
    r"|未找到|没有提到|未提及|无法(?:确定|回答|找到)|没有(?:相关)?信息",
    re.IGNORECASE,
)


def says_not_found(text: str) -> bool:
    return bool(_NOT_FOUND.search(text)) or not text.strip()


def cited_numbers(text: str, count: int) -> list[int]:
    """Evidence numbers (1-based, in first-cited order) the text cites; out-of-range numbers are ignored."""
    seen: list[int] = []
    for match in _CITE.finditer(text):
        for part in re.split(r"[,，、]", match.group(1)):
            n = int(part.strip())
            if 1 <= n <= count and n not in seen:
                seen.append(n)
    return seen


_WORD = re.compile(r"[\w'-]+|[\u4e00-\u9fff]")
_SMALL_WORDS = frozenset(
    "a an the and or of to in on at by for with from is are was were be been it its this that as "
    "not found evidence answer".split()
)


def content_terms(text: str) -> set[str]:
    words = (w.lower() for w in _WORD.findall(_CITE.sub(" ", text)))
    return {w for w in words if w not in _SMALL_WORDS and (len(w) > 1 or has_cjk(w))}


def best_supporting(answer: str, items: Sequence[Evidence], limit: int = 2) -> list[int]:
    """1-based numbers of the evidence sharing the most words with the answer (for answers without [n])."""
    terms = content_terms(answer)
    scored = []
    for i, e in enumerate(items, 1):
        overlap = len(terms & content_terms(e.text))
        scored.append((overlap, e.score, -i, i))
    scored.sort(reverse=True)
    return [i for overlap, _, _, i in scored[:limit] if overlap > 0] or ([scored[0][3]] if scored else [])


def clean_answer(text: str) -> str:
    text = text.strip()
    for prefix in ("Answer:", "answer:", "答案：", "回答："):
        if text.startswith(prefix):
            text = text[len(prefix) :].strip()
    return text


@dataclass
class Composed:
    text: str
    citations: list[Citation]
    found: bool
    cited: list[Evidence]


_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|\n\s*\n")


def focused_citation(e: Evidence, answer: str, question: str = "", max_chars: int = 600) -> Citation:
    """Cite the sentences of a long evidence item that best match the answer (then the question)."""
    if len(e.text) <= max_chars:
        return e.citation()
    answer_terms = content_terms(answer)
    question_terms = content_terms(question)
    spans: list[tuple[int, int]] = []
    pos = 0
    for match in _SENTENCE_END.finditer(e.text):
        spans.append((pos, match.start()))
        pos = match.end()
    spans.append((pos, len(e.text)))
    best: tuple[float, int] | None = None
    for i, (s, t) in enumerate(spans):
        terms = content_terms(e.text[s:t])
        score = 2.0 * len(terms & answer_terms) + len(terms & question_terms)
        if score > 0 and (best is None or score > best[0]):
            best = (score, i)
    if best is None:
        return e.citation()
    s, t = spans[best[1]]
    while t - s < 120 and best[1] + 1 < len(spans):  # a very short sentence: take the next one too
        best = (best[0], best[1] + 1)
        t = spans[best[1]][1]
    s, t = s, min(t, s + max_chars)
    return Citation(
        source=e.chunk.source,
        chunk_id=e.chunk.chunk_id,
        start=e.start + s,
        end=e.start + t,
        page=e.chunk.page,
        text=e.text[s:t],
    )


def compose(
    text: str, items: Sequence[Evidence], quote_citations: bool = True, question: str = ""
) -> Composed:
    """Map the model's [n] to citations; when it cites nothing, cite the evidence that best supports it."""
    text = clean_answer(text)
    found = not says_not_found(text)
    numbers = cited_numbers(text, len(items))
    if not numbers and found:
        numbers = best_supporting(text, items)
    cited = [items[n - 1] for n in numbers]
    citations: list[Citation] = []
    renumber: dict[int, int] = {}
    for n, e in zip(numbers, cited, strict=True):
        renumber[n] = len(citations) + 1
        if quote_citations and e.quotes:
            citations.extend(quote_citation(e, q) for q in e.quotes)
        else:
            citations.append(focused_citation(e, text, question))
    return Composed(text=renumbered(text, renumber), citations=citations, found=found, cited=cited)


def recited(composed: Composed, items: Sequence[Evidence], question: str, limit: int = 2) -> Composed:
    """The answer cited where its own new words are, when its citations do not hold them.

    Small models often cite the first piece of a chain of evidence ("Orrin Ford [1]" where [1] names the medal
    winner and [3] says where the winner grew up)."""
    if not composed.found or grounded(composed.text, question, composed.cited):
        return composed
    plain = _CITE.sub("", composed.text).strip()
    new_terms = content_terms(plain) - content_terms(question)
    numbers = [i for i, e in enumerate(items, 1) if new_terms & content_terms(e.text)][:limit]
    if not numbers:
        return composed
    return compose(plain + " " + " ".join(f"[{n}]" for n in numbers), items, question=question)


def renumbered(text: str, mapping: dict[int, int]) -> str:
    """Rewrite the evidence numbers the model cited as positions in the citation list; drop invalid ones."""

    def replace(match: re.Match[str]) -> str:
        parts = [int(p.strip()) for p in re.split(r"[,，、]", match.group(1))]
        kept = [str(mapping[p]) for p in parts if p in mapping]
        return "[" + ", ".join(dict.fromkeys(kept)) + "]" if kept else ""

    return _CITE.sub(replace, text).strip()


def quote_citation(e: Evidence, quote: str) -> Citation:
    """A citation pointing at the exact span of a verified quote inside the evidence's chunk."""
    at = e.chunk.text.find(quote)
    if at < 0:
        return e.citation()
    start = e.chunk.start + at
    return Citation(
        source=e.chunk.source,
        chunk_id=e.chunk.chunk_id,
        start=start,
        end=start + len(quote),
        page=e.chunk.page,
        text=quote,
    )


def grounded(answer: str, question: str, cited: Sequence[Evidence]) -> bool:
    """Does the answer say something the cited evidence contains, beyond the question's own words?"""
    new_terms = content_terms(answer) - content_terms(question)
    if not new_terms:
        return bool(cited)
    text = " ".join(e.text for e in cited)
    evidence_terms = content_terms(text)
    return bool(new_terms & evidence_terms)


async def answer_from_evidence(
    backend: Backend,
    question: str,
    items: Sequence[Evidence],
    meter: UsageMeter,
    *,
    max_tokens: int = 256,
    notes: str = "",
    allow_not_found: bool = True,
) -> Composed:
    messages = answer_messages(question, items, notes, allow_not_found)
    messages[-1].content += JSON_TAIL
    options = ChatOptions(temperature=0.0, max_tokens=max_tokens, json_schema=ANSWER_SCHEMA)
    result = await meter.chat(backend, messages, options)
    return compose(json_answer_text(result.message.content), items, question=question)


ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "evidence": {"type": "array", "items": {"type": "integer"}}},
    "required": ["answer", "evidence"],
}
JSON_TAIL = ' Reply as JSON: {"answer": ..., "evidence": [numbers]}.'
"""The 1.5B answers far more often under this grammar (needle dev sets: 16/16 vs 13/16 in free text), but it
also answers more when the evidence lacks the answer (2 of 3 absent-needle probes vs 0 of 3); those answers were
not `grounded` in their cited evidence, which is what makes Auto escalate instead of trusting them."""


def json_answer_text(reply: str) -> str:
    """`{"answer": a, "evidence": [n]}` as the text "a [n]"; any other reply unchanged."""
    try:
        data = json.loads(reply)
        answer, numbers = str(data["answer"]).strip(), [int(n) for n in data["evidence"]]
    except (ValueError, KeyError, TypeError):
        return reply
    return f"{answer} " + "".join(f"[{n}]" for n in dict.fromkeys(numbers)) if numbers else answer
