"""Follow names: answer a multi-hop question by retrieving one hop at a time along the names the evidence gives.

"Where did the recipient of the 1952 Quillon Medal grow up?" needs "The Quillon Medal of 1952 was awarded to
Tamsin Vonnegrau" first and then "Tamsin Vonnegrau grew up in Orrin Ford". The second sentence shares no rare
word with the question, so no single BM25 query finds both. Here the best sentences for the question are found,
the names in them that the question does not contain become the next query, and so on for a few hops; the model
then answers once from the short chain of sentences. No planning call is needed: a 1.5B model that cannot split
a question into sub-questions can still read three sentences in a row.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence, Set
from dataclasses import dataclass, field

from pydantic import BaseModel

from lector.retrieval.answer_prompt import answer_from_evidence
from lector.retrieval.context import ReadingContext
from lector.retrieval.focus import ranked_sentences, sentence_windows
from lector.retrieval.keywords import STOP_WORDS
from lector.retrieval.level1 import find_keywords
from lector.retrieval.levels import Level
from lector.retrieval.packing import chunk_cost, pack
from lector.retrieval.reading_types import Answer, Evidence, chunk_refs
from lector.retrieval.types import Hit

_NAME = re.compile(r"\b[A-Z][\w'’-]*[a-z][\w'’-]*(?:\s+(?:(?:of|de|la|van|von|der|du|da|al)\s+)?[A-Z][\w'’-]*)*")


class BridgeConfig(BaseModel):
    max_hops: int = 3
    """Retrievals in a row: the question's, then one per newly found name."""
    names_per_hop: int = 2
    k: int = 8
    """BM25 hits whose sentences are weighed at each hop."""
    sentences_per_hop: int = 2
    evidence_tokens_per_hop: int = 3000
    """Chunk tokens considered (before sentence focus) at each hop."""
    max_answer_tokens: int = 256
    use_model_keywords: bool = True


def new_names(sentence: str, known: str) -> list[str]:
    """Capitalised names in `sentence` that `known` does not already contain, in order of appearance.

    A lone capitalised word opening the sentence is skipped: it is as often "Thus" or "Everyone" as a name."""
    known_words = {w.lower() for w in re.findall(r"[\w'’-]+", known)}
    opening = len(sentence) - len(sentence.lstrip(" \t\n\"'“‘(["))
    names: list[str] = []
    for match in _NAME.finditer(sentence):
        words = match.group(0).split()
        while words and words[0].lower() in STOP_WORDS:
            words = words[1:]
        if not words or all(w.lower() in known_words or w.lower() in STOP_WORDS for w in words):
            continue
        if len(words) == 1 and match.start() == opening:
            continue
        name = " ".join(words)
        if name not in names:
            names.append(name)
    return names


def _best_sentences(
    evidence: Sequence[Evidence],
    terms: Sequence[str],
    count: int,
    required: Sequence[str] = (),
    seen: Set[tuple[str, int, int]] = frozenset(),
) -> list[Evidence]:
    """The `count` best sentences for `terms` not `seen` at an earlier hop that contain a `required` term (any
    term when none is given)."""
    needed = [t.lower() for t in required]
    best = [e for e in ranked_sentences(evidence, terms) if (e.chunk.source, e.start, e.end) not in seen]
    return [e for e in best if not needed or any(t in e.text.lower() for t in needed)][:count]


async def follow_names(ctx: ReadingContext, question: str, config: BridgeConfig | None = None) -> Answer:
    """Retrieve hop by hop along new names, then answer once from the chain of sentences found."""
    config = config or BridgeConfig()
    started = time.perf_counter()
    keywords = await find_keywords(ctx, question, config.use_model_keywords)
    chain = _follow(ctx, question, keywords.focus_terms, config)
    details = {"query": keywords.query, "names_followed": chain.names_followed, "hops": chain.hops}
    if not chain.evidence:
        return Answer.nothing_found(
            Level.STEPWISE, ctx.meter.snapshot(), time.perf_counter() - started, details=details
        )
    evidence = _dedupe(chain.evidence)
    details["evidence"] = chunk_refs(evidence)
    composed = await answer_from_evidence(
        ctx.backend, question, evidence, ctx.meter, max_tokens=config.max_answer_tokens
    )
    return composed.to_answer(
        Level.STEPWISE, ctx.meter.snapshot(), elapsed_s=time.perf_counter() - started, details=details
    )


@dataclass
class _Chain:
    evidence: list[Evidence] = field(default_factory=list)
    """Sentence windows, in hop order."""
    names_followed: list[str] = field(default_factory=list)
    hops: int = 0


def _follow(ctx: ReadingContext, question: str, terms: list[str], config: BridgeConfig) -> _Chain:
    """The chain of sentence windows found hop by hop along the new names."""
    cost = chunk_cost(ctx.backend)
    chain = _Chain()
    seen: set[tuple[str, int, int]] = set()
    known = question
    query_terms: list[str] = terms
    required: list[str] = []
    names: list[str] = []
    for _ in range(config.max_hops):
        packed = pack(_hop_hits(ctx, names, terms, config.k), config.evidence_tokens_per_hop, cost)
        fresh = _best_sentences(packed, query_terms, config.sentences_per_hop, required, seen)
        if not fresh:
            break
        chain.hops += 1
        seen.update((e.chunk.source, e.start, e.end) for e in fresh)
        chain.evidence += sentence_windows(fresh, query_terms, len(fresh), radius=1)
        names = list(dict.fromkeys(n for e in fresh for n in new_names(e.text, known)))[: config.names_per_hop]
        if not names:
            break
        chain.names_followed += names
        known += " " + " ".join(names)
        required = " ".join(names).split()
        query_terms = [*required, *terms]
    return chain


def _hop_hits(ctx: ReadingContext, names: Sequence[str], terms: Sequence[str], k: int) -> list[Hit]:
    """The question's hits at the first hop; after it, each new name's own search (the name and the question's
    terms), taken in turn rank by rank: one query for all names lets a frequent one ("Peace Corps") crowd out
    the chunks of a rare one."""
    if not names:
        return ctx.library.search(" ".join(terms), k=k, doc_ids=ctx.doc_ids)
    per_name = [ctx.library.search(" ".join([name, *terms]), k=k, doc_ids=ctx.doc_ids) for name in names]
    merged: dict[tuple[str, int], Hit] = {}
    for rank in range(k):
        for hits in per_name:
            if rank < len(hits):
                merged.setdefault((hits[rank].chunk.doc_id, hits[rank].chunk.chunk_id), hits[rank])
    return list(merged.values())[:k]


def _dedupe(chain: Sequence[Evidence]) -> list[Evidence]:
    """Windows of one chunk that overlap an earlier window are dropped (hop order is kept)."""
    out: list[Evidence] = []
    for e in chain:
        if not any(o.chunk.source == e.chunk.source and o.start < e.end and e.start < o.end for o in out):
            out.append(e)
    return out
