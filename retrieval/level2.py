"""Level 2, read: the model reads candidate chunks in parallel and copies what helps; only quotes that really
occur in a chunk count. Those quotes re-query BM25, and the answer comes from the verified evidence.

The cost is bounded: candidates are BM25 hits plus their neighbours, under a budget of chunks and tokens. A CPU
reads a prompt slowly and slows to a crawl generating several replies at once, so each read call shows a few
chunks' best sentences (retrieval/read_passage.py) after the instructions and the question, which every call of
one question shares (the engine reuses that cached prefix); calls go one at a time by default, and reading stops
once enough verified evidence is in.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from lector.llm.backend import Backend, ChatOptions
from lector.llm.messages import Message
from lector.retrieval.answer_prompt import answer_from_evidence
from lector.retrieval.bm25_terms import tokenize
from lector.retrieval.cjk import cjk_count, has_cjk
from lector.retrieval.context import ReadingContext
from lector.retrieval.keywords import Keywords, question_terms
from lector.retrieval.level1 import find_keywords
from lector.retrieval.levels import Level
from lector.retrieval.near_copy import fragment_sentence_span, near_copy_span
from lector.retrieval.packing import (
    HEADER_TOKENS,
    chunk_cost,
    evidence_budget,
    in_document_order,
    pack,
    trim_overlaps,
)
from lector.retrieval.read_passage import focused_spans, passage_text
from lector.retrieval.reading_types import Answer, Evidence, LibraryLike, UsageMeter
from lector.retrieval.sentences import CJK_SENTENCE_END_MARKS, CLOSING_MARKS, SENTENCE_END_MARKS
from lector.retrieval.types import Chunk, Hit

log = logging.getLogger(__name__)


class Level2Config(BaseModel):
    k: int = 8
    """BM25 hits that seed the candidates."""
    neighbour_radius: int = 1
    neighbours_of: int = 3
    """How many of the top hits also bring their neighbouring chunks."""
    max_chunks: int = 12
    """Reading budget: chunks read per question, re-query included."""
    max_read_tokens: int = 12_000
    """Reading budget: prompt tokens spent reading chunks."""
    enough_quotes: int = 2
    """Stop reading once this many verified quotes that share words with the question are in; a quote that
    shares `decisive_terms` of them or more is enough on its own. With enough, no re-query is made."""
    decisive_terms: int = 3
    requery_k: int = 4
    max_quotes: int = 6
    """Quotes kept from one read call (its passages together)."""
    read_max_tokens: int = 220
    passage_sentences: int | None = 4
    """Show the model each chunk's best-matching sentences (each with `passage_radius` neighbours), not the
    whole chunk (retrieval/read_passage.py): a CPU pays for every prompt token. None shows whole chunks."""
    passage_radius: int = 1
    max_passage_tokens: int = 320
    passages_per_read: int = 4
    """Passages one read call shows: the shared prompt and the reply are paid once for them all."""
    parallel_reads: int = 1
    """Read calls in flight at once, at most the backend's parallel slots. More help where the backend has a
    GPU or cores to spare; on a CPU the engine's parallel replies share the same cores and slow each other."""
    context_chars: int = 160
    """Characters kept around each quote in the evidence the answer is written from."""
    answer_evidence_tokens: int = 2500
    max_answer_tokens: int = 256
    use_model_keywords: bool = True
    unread_answer_past_budget: bool = True
    """With no verified quote, answer from the best chunks unread (one more call) even when the budget is spent;
    False reports nothing found instead (Level 3's sub-questions: its own final answer comes next)."""


READ_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "relevant": {"type": "boolean"},
        "quotes": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 400},
            "maxItems": 6,
        },
    },
    "required": ["relevant", "quotes"],
    "additionalProperties": False,
}

READ_SYSTEM = (
    "You read passages of a long document and copy, word for word, the sentences of the passages that "
    "help answer the question: at most 2 from each passage, exactly as written. If nothing in the passages "
    'helps, reply {"relevant": false, "quotes": []}. Reply with JSON only.'
)


def read_messages(question: str, passages: Sequence[tuple[Chunk, str | None]]) -> list[Message]:
    """The instructions and the question first, the same for every read of one question, so the engine reuses
    their cached prefix; then each passage (its shown text, else the whole chunk) and the question again."""
    q = question.strip()
    shown = []
    for chunk, text in passages:
        where = f"{chunk.source}, chunk {chunk.chunk_id}" + (f", page {chunk.page}" if chunk.page else "")
        shown.append(f"Passage ({where}):\n{text if text is not None else chunk.text.strip()}")
    body = "\n\n".join(shown)
    return [Message.system(READ_SYSTEM), Message.user(f"Question: {q}\n\n{body}\n\nQuestion: {q}")]


def _normalise_with_map(text: str) -> tuple[str, list[int]]:
    """The text's words, lower-cased, each run of anything else (spaces, punctuation, quote marks) made one
    space; with each kept character's original index. Copies that differ only in punctuation still match."""
    out: list[str] = []
    where: list[int] = []
    gap = True
    for i, ch in enumerate(text):
        if ch.isalnum():
            out.append(ch.lower())
            where.append(i)
            gap = False
        elif not gap:
            out.append(" ")
            where.append(i)
            gap = True
    return "".join(out), where


def _long_enough(quote: str) -> bool:
    if has_cjk(quote):
        return cjk_count(quote) >= 4
    return len(quote.split()) >= 3 and len(quote) >= 12


def verify_quote(quote: str, chunk_text: str) -> list[tuple[int, int]]:
    """Spans (offsets in `chunk_text`) of the text the parts of `quote` stand for; [] if none stands for any.

    Case, curly quotes and whitespace are normalised for the check; a quote elided with '...' is checked part
    by part. A part that is not in the text stands for the sentence it nearly copies, if one; a part too short to
    check stands for its sentence where it occurs once (`retrieval.near_copy`), else is dropped.
    """
    norm_chunk, where = _normalise_with_map(chunk_text)
    spans: list[tuple[int, int]] = []
    for part in re.split(r"\.\.\.|…", quote):
        norm_part = _normalise_with_map(part)[0].strip()
        if not norm_part:
            continue
        if not _long_enough(norm_part):
            fragment = fragment_sentence_span(part, chunk_text)
            if fragment is not None:
                spans.append(fragment)
            continue
        at = norm_chunk.find(norm_part)
        if at < 0:
            near = near_copy_span(part, chunk_text)
            if near is not None:
                spans.append(near)
            continue
        end = where[at + len(norm_part) - 1] + 1
        while end < len(chunk_text) and chunk_text[end] in _CLOSING:  # keep the sentence's full stop
            end += 1
        spans.append((where[at], end))
    return list(dict.fromkeys(spans))


_CLOSING = frozenset(SENTENCE_END_MARKS + CJK_SENTENCE_END_MARKS + CLOSING_MARKS)


@dataclass
class Reading:
    """What the model made of one chunk."""

    chunk: Chunk
    bm25: float
    claimed_relevant: bool = False
    offered: int = 0
    """Quotes the model offered (verified or not)."""
    quotes: list[str] = field(default_factory=list)
    """Verified quotes, as exact substrings of the chunk's text."""
    spans: list[tuple[int, int]] = field(default_factory=list)
    strong: int = 0
    """Verified quotes that share a word with the question or its keywords."""
    error: str | None = None
    index: int = 0
    """Which passage this was in reading order (from 1), of the `total` chosen when it was read."""
    total: int = 0

    @property
    def score(self) -> float:
        return 2.0 * self.strong + 1.0 * len(self.quotes) + 0.25 * self.claimed_relevant + self.bm25


@dataclass(frozen=True)
class Passages:
    """Level 2 starts reading passages `first` to `last` (from 1) of the `total` it has chosen so far; a re-query
    chooses more, so a later wave may name a larger total."""

    first: int
    last: int
    total: int
    chunks: tuple[Chunk, ...]


Progress = Callable[[Reading | Passages], Awaitable[None] | None]
"""Told when a wave of passages starts being read, and of each chunk as soon as it is read. An async one is
awaited, so that what it hears is shown before the reading goes on (before the answer's first words)."""


async def tell(progress: Progress | None, event: Reading | Passages) -> None:
    if progress is not None:
        heard = progress(event)
        if heard is not None:
            await heard


_JSON_STRING = re.compile(r'"((?:[^"\\]|\\.)*)("?)')


def _salvage(text: str) -> tuple[bool, list[str]]:
    """Quotes from a reply cut off by the token cap: every complete string, and the cut one's prefix
    (a prefix of a real sentence still verifies)."""
    relevant = bool(re.search(r'"relevant"\s*:\s*true', text))
    at = re.search(r'"quotes"\s*:\s*\[', text)
    if not at:
        return relevant, []
    quotes = []
    for match in _JSON_STRING.finditer(text, at.end()):
        raw = match.group(1)
        try:
            quotes.append(json.loads(f'"{raw}"'))
        except ValueError:
            quotes.append(raw.replace('\\"', '"'))
    return relevant, quotes


def _parse_reading(text: str) -> tuple[bool, list[str]]:
    try:
        data = json.loads(text)
    except ValueError:
        match = re.search(r"\{.*\}", text, re.DOTALL)
        try:
            data = json.loads(match.group(0)) if match else None
        except ValueError:
            data = None
        if data is None:
            return _salvage(text)
    if not isinstance(data, dict):
        return False, []
    quotes = data.get("quotes")
    quotes = [q for q in quotes if isinstance(q, str)] if isinstance(quotes, list) else []
    return bool(data.get("relevant")), quotes


def _term_set(text: str) -> set[str]:
    """Stemmed BM25 terms of the text's content words (framing words like 'author' left out)."""
    return set(tokenize(" ".join(question_terms(text))))


Passage = tuple[Chunk, float, str | None]
"""A chunk to read, its BM25 score, and what the model is shown of it (None: the whole chunk)."""


async def read_passages(
    backend: Backend,
    question: str,
    passages: Sequence[Passage],
    terms: set[str],
    config: Level2Config,
    meter: UsageMeter,
) -> list[Reading]:
    """One read call over `passages`: each quote the model copies is verified against the whole chunks and kept
    by the first chunk it occurs in."""
    readings = [Reading(chunk=chunk, bm25=bm25) for chunk, bm25, _ in passages]
    options = ChatOptions(temperature=0.0, max_tokens=config.read_max_tokens, json_schema=READ_SCHEMA)
    try:
        result = await meter.chat(backend, read_messages(question, [(c, t) for c, _, t in passages]), options)
    except Exception as exc:  # one failed read must not sink the others
        log.warning("reading chunks %s failed: %s", [c.chunk_id for c, _, _ in passages], exc)
        for reading in readings:
            reading.error = str(exc)
        return readings
    relevant, offered = _parse_reading(result.message.content)
    readings[0].offered = len(offered)  # counted once per call
    for quote in offered[: config.max_quotes]:
        for reading in readings:
            if _keep_quote(reading, quote, terms, config):
                break
    for reading in readings:
        reading.claimed_relevant = relevant and (bool(reading.quotes) or len(readings) == 1)
    return readings


def _keep_quote(reading: Reading, quote: str, terms: set[str], config: Level2Config) -> bool:
    """Add the parts of `quote` that occur in the reading's chunk; False when none does."""
    text = reading.chunk.text
    spans = verify_quote(quote, text)
    for start, end in spans:
        exact = text[start:end]
        if exact in reading.quotes:
            continue
        reading.quotes.append(exact)
        reading.spans.append((start, end))
        shared = len(_term_set(exact) & terms)
        if shared:
            reading.strong += config.enough_quotes if shared >= config.decisive_terms else 1
    return bool(spans)


def candidates(library: LibraryLike, hits: Sequence[Hit], config: Level2Config) -> list[tuple[Chunk, float]]:
    """BM25 hits in rank order, the top few each followed by its neighbours (at a lower score)."""
    out: list[tuple[Chunk, float]] = []
    seen: set[tuple[str, int]] = set()
    top = max((h.score for h in hits), default=1.0) or 1.0

    def add(chunk: Chunk, score: float) -> None:
        key = (chunk.doc_id, chunk.chunk_id)
        if key not in seen:
            seen.add(key)
            out.append((chunk, score))

    for i, hit in enumerate(sorted(hits, key=lambda h: h.rank)):
        add(hit.chunk, hit.score / top)
        if i < config.neighbours_of and config.neighbour_radius:
            for n in library.neighbours(hit.chunk.doc_id, hit.chunk.chunk_id, config.neighbour_radius):
                add(n, 0.5 * hit.score / top)
    return out


def excerpts(reading: Reading, context_chars: int) -> list[Evidence]:
    """The chunk's quoted passages with some context around them, as evidence items."""
    text = reading.chunk.text
    windows: list[list[int]] = []
    for start, end in sorted(reading.spans):
        s = max(0, start - context_chars)
        e = min(len(text), end + context_chars)
        while s > 0 and not text[s - 1].isspace() and start - s < context_chars + 40:
            s -= 1
        while e < len(text) and not text[e].isspace() and e - end < context_chars + 40:
            e += 1
        if windows and s <= windows[-1][1]:
            windows[-1][1] = max(windows[-1][1], e)
        else:
            windows.append([s, e])
    items = []
    for s, e in windows:
        quotes = [q for q, (qs, qe) in zip(reading.quotes, reading.spans, strict=True) if s <= qs and qe <= e]
        items.append(
            Evidence(
                chunk=reading.chunk,
                text=text[s:e],
                start=reading.chunk.start + s,
                end=reading.chunk.start + e,
                score=reading.score,
                quotes=quotes,
            )
        )
    return items


class Reader:
    """Reads chunks under the budget, remembering what it read."""

    def __init__(
        self,
        backend: Backend,
        question: str,
        terms: set[str],
        config: Level2Config,
        meter: UsageMeter,
        progress: Progress | None = None,
        focus: Sequence[str] = (),
    ) -> None:
        self.backend = backend
        self.question = question
        self.terms = terms
        self.config = config
        self.meter = meter
        self.progress = progress
        self.focus = list(focus)
        """The terms a passage's sentences are chosen by (`config.passage_sentences`)."""
        self.readings: dict[tuple[str, int], Reading] = {}
        self.tokens_read = 0
        self.shown: dict[tuple[str, int], str] = {}
        """What the model is shown of each chunk chosen, when that is not the whole chunk."""
        self.chunk_cost = chunk_cost(backend)
        self.per_call = max(1, config.passages_per_read)
        self.calls = max(1, min(config.parallel_reads, int(backend.parallel_slots)))
        prompt = read_messages(question, [])
        self.overhead = (sum(backend.count_tokens(m.content) for m in prompt) + 8) // self.per_call
        """Prompt tokens of a read call besides its passages, per passage."""

    def passage(self, chunk: Chunk, extra_focus: Sequence[str] = ()) -> str | None:
        """The chunk's focused passage (None: the whole chunk is shown)."""
        c = self.config
        if not c.passage_sentences or not (self.focus or extra_focus):
            return None
        spans = focused_spans(
            chunk, [*self.focus, *extra_focus], c.passage_sentences, c.passage_radius, c.max_passage_tokens
        )
        return passage_text(chunk.text, spans) if spans else None

    def cost(self, chunk: Chunk) -> int:
        shown = self.shown.get((chunk.doc_id, chunk.chunk_id))
        return self.chunk_cost(chunk) if shown is None else self.backend.count_tokens(shown) + HEADER_TOKENS

    def strong_quotes(self) -> int:
        return sum(r.strong for r in self.readings.values())

    def enough(self) -> bool:
        return self.strong_quotes() >= self.config.enough_quotes

    def affordable(
        self, pool: Sequence[tuple[Chunk, float]], limit: int, extra_focus: Sequence[str] = ()
    ) -> list[tuple[Chunk, float]]:
        chosen: list[tuple[Chunk, float]] = []
        tokens = self.tokens_read
        for chunk, score in pool:
            key = (chunk.doc_id, chunk.chunk_id)
            if key in self.readings:
                continue
            if len(self.readings) + len(chosen) >= min(limit, self.config.max_chunks):
                break
            shown = self.passage(chunk, extra_focus)
            if shown is None:
                self.shown.pop(key, None)
            else:
                self.shown[key] = shown
            need = self.cost(chunk) + self.overhead
            if tokens + need > self.config.max_read_tokens:
                continue
            tokens += need
            chosen.append((chunk, score))
        return chosen

    async def read(
        self,
        pool: Sequence[tuple[Chunk, float]],
        limit: int,
        stop_early: bool = True,
        extra_focus: Sequence[str] = (),
    ) -> None:
        """Read the affordable part of `pool` in waves of the backend's parallel slots; `extra_focus` adds
        terms the passages' sentences are chosen by."""
        todo = self.affordable(pool, limit, extra_focus)
        wave_size = self.per_call * self.calls
        total = len(self.readings) + len(todo)
        for i in range(0, len(todo), wave_size):
            if (stop_early and self.enough()) or self.meter.spent():
                break
            wave = todo[i : i + wave_size]
            first = len(self.readings) + 1
            await tell(self.progress, Passages(first, first + len(wave) - 1, total, tuple(c for c, _ in wave)))
            for chunk, _ in wave:
                self.tokens_read += self.cost(chunk) + self.overhead
            passages = [(c, s, self.shown.get((c.doc_id, c.chunk_id))) for c, s in wave]
            batches = [passages[j : j + self.per_call] for j in range(0, len(passages), self.per_call)]
            read = await asyncio.gather(
                *(read_passages(self.backend, self.question, b, self.terms, self.config, self.meter) for b in batches)
            )
            for n, r in enumerate(r for readings in read for r in readings):
                r.index, r.total = first + n, total
                self.readings[(r.chunk.doc_id, r.chunk.chunk_id)] = r
                await tell(self.progress, r)

    def ranked(self) -> list[Reading]:
        return sorted((r for r in self.readings.values() if r.quotes), key=lambda r: -r.score)


async def level2(
    ctx: ReadingContext,
    question: str,
    config: Level2Config | None = None,
    *,
    keywords: Keywords | None = None,
    progress: Progress | None = None,
) -> Answer:
    """Read the candidate chunks, re-query with what they say, and answer from the verified quotes."""
    config = config or Level2Config()
    started = time.perf_counter()
    if keywords is None:
        keywords = await find_keywords(ctx, question, config.use_model_keywords)
    hits = ctx.library.search(keywords.query, k=config.k, doc_ids=ctx.doc_ids)
    terms = set(tokenize(" ".join([*keywords.question_terms, *keywords.keywords])))
    reader = Reader(ctx.backend, question, terms, config, ctx.meter, progress, focus=keywords.focus_terms)
    await reader.read(candidates(ctx.library, hits, config), config.max_chunks)

    quotes = [q for r in reader.ranked()[:4] for q in r.quotes]
    requeried: list[Hit] = []
    if quotes and not reader.enough():
        requeried = ctx.library.search(" ".join([keywords.query, *quotes]), k=config.requery_k, doc_ids=ctx.doc_ids)
        fresh = [(h.chunk, h.score / (requeried[0].score or 1.0)) for h in requeried]
        quoted_terms = list(dict.fromkeys(t for q in quotes for t in question_terms(q)))
        await reader.read(fresh, config.max_chunks, stop_early=False, extra_focus=quoted_terms)

    budget = min(
        config.answer_evidence_tokens,
        evidence_budget(ctx.backend, question, config.max_answer_tokens + 64),
    )
    evidence = quoted_evidence(ctx.backend, reader.ranked(), budget, config.context_chars)
    verified = bool(evidence)
    if not evidence and (config.unread_answer_past_budget or not ctx.meter.spent()):
        # nothing verified: fall back to the best chunks, as Level 1 would
        evidence = pack(hits, budget, chunk_cost(ctx.backend))
    top_score = hits[0].score if hits else 0.0
    details: dict[str, Any] = {
        "query": keywords.query,
        "keyword_fallback": keywords.fallback,
        "chunks_read": [[r.chunk.source, r.chunk.chunk_id] for r in reader.readings.values()],
        "verified_quotes": sum(len(r.quotes) for r in reader.readings.values()),
        "offered_quotes": sum(r.offered for r in reader.readings.values()),
        "strong_quotes": reader.strong_quotes(),
        "read_tokens": reader.tokens_read,
        "requery": [[h.chunk.source, h.chunk.chunk_id] for h in requeried],
        "verified": verified,
    }
    if not evidence:
        return Answer.nothing_found(
            Level.READ, ctx.meter.snapshot(), time.perf_counter() - started, top_score=top_score, details=details
        )
    # Verified quotes the model itself chose are the evidence: offering a NOT FOUND exit there makes a
    # small model take it even when the answer is in a quote (seen with the 1.5B on reworded questions).
    composed = await answer_from_evidence(
        ctx.backend, question, evidence, ctx.meter, max_tokens=config.max_answer_tokens, allow_not_found=not verified
    )
    return composed.to_answer(
        Level.READ, ctx.meter.snapshot(), elapsed_s=time.perf_counter() - started, top_score=top_score, details=details
    )


def quoted_evidence(backend: Backend, ranked: Sequence[Reading], budget: int, context_chars: int) -> list[Evidence]:
    """The best readings' quoted passages that fit `budget` tokens: documents by relevance, passages in order."""
    evidence: list[Evidence] = []
    used = 0
    for reading in ranked:
        for item in excerpts(reading, context_chars):
            need = backend.count_tokens(item.text) + 24
            if used + need <= budget:
                evidence.append(item)
                used += need
    doc_rank: dict[str, int] = {}
    for item in sorted(evidence, key=lambda e: -e.score):
        doc_rank.setdefault(item.chunk.doc_id, len(doc_rank))
    return trim_overlaps(in_document_order(evidence, doc_rank))
