"""Follow relations: "Who was the father of Enoch's father?" is answered by finding the sentence that states
Enoch's father, then the one that states that man's father. Each hop searches for the relation as texts write
it ("begat Enoch", "Enoch, son of", "father of Enoch" as phrases, ranked first wherever they are) and reads the
name off the sentence by a family-relation pattern; other relations ("the first See Also entry of `f`") are read
by the model from a few sentences, and only a name those sentences contain counts. A chain that ends in the
answer needs no model call at all; one with a question about its end ("the default of `p` in ...") asks it once,
about the entity found."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from lector.llm.backend import ChatOptions
from lector.llm.messages import Message
from lector.retrieval.answer_prompt import answer_from_evidence, format_evidence
from lector.retrieval.citations import compose
from lector.retrieval.context import ReadingContext
from lector.retrieval.focus import ranked_sentences, sentence_windows
from lector.retrieval.keywords import is_identifier, question_keywords
from lector.retrieval.levels import Level
from lector.retrieval.packing import chunk_cost, pack
from lector.retrieval.phrases import phrase_text_pattern
from lector.retrieval.pointers import question_names, with_defining_lines
from lector.retrieval.reading_types import Answer, Citation, Evidence
from lector.retrieval.relation_chain import RelationChain, relation_chain
from lector.retrieval.relation_lists import listed_item
from lector.retrieval.relation_rules import SYNONYMS, related_by_rule
from lector.retrieval.types import Chunk


class RelationConfig(BaseModel):
    max_hops: int = 3
    k: int = 8
    evidence_tokens: int = 2500
    """Chunk tokens weighed at each hop (before sentence focus)."""
    model_passages: int = 2
    """Mentions of the entity the model reads when no pattern gives the name, each with the passage where the
    relation's words follow it (a definition, then its See Also)."""
    passage_chars: int = 400
    scan_chars: int = 16000
    """How far after a mention the relation's words are looked for."""
    extract_max_tokens: int = 40
    ask_model: bool = True
    """Ask the model for a link no family-relation pattern reads; False follows patterns only (no model call)."""
    max_answer_tokens: int = 160


NAME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 80}},
    "required": ["name"],
}

_PHRASES: dict[str, tuple[str, ...]] = {
    "father": ("begat {e}", "begot {e}", "father of {e}", "{e} son of", "{e} the son of", "{e} daughter of"),
    "mother": ("mother of {e}", "bore {e}", "{e} son of", "{e} daughter of"),
    "son": ("{e} begat", "{e} begot", "son of {e}", "{e} became the father of"),
    "daughter": ("daughter of {e}", "{e} begat", "{e} bore"),
    "wife": ("wife of {e}", "{e} married"),
    "husband": ("husband of {e}", "married {e}"),
}

_DEFINERS = ("function", "method", "def", "class")
"""Words that introduce a code name's definition (`.. function:: name(`, `def name(`, `class name(`)."""


@dataclass
class Hop:
    entity: str
    relation: str
    found: str | None = None
    evidence: list[Evidence] = field(default_factory=list)

    def fact(self) -> str:
        return f"the {self.relation} of {self.entity} is {self.found}" if self.found else ""


def bare_name(entity: str) -> str:
    """What the text calls the entity: the last part of a dotted identifier, else the entity itself."""
    return entity.rsplit(".", 1)[-1].removesuffix("()") if is_identifier(entity) else entity


def code_entity(chain: RelationChain, name: str) -> str:
    """A name a hop found, as the next hop looks it up: a chain that starts from a code name (`numpy.cross`)
    leads to code names, written `name()` so that they are searched as one ("take" is a word too)."""
    return f"{name}()" if is_identifier(chain.entity) and not is_identifier(name) else name


def hop_query(entity: str, relation: str) -> str:
    """The search for the sentence that states the entity's relation: as phrases and as terms (a code name also
    as called and as defined, `::name(`)."""
    name = bare_name(entity)
    forms = [*_PHRASES.get(relation.lower(), ()), f"{relation} of {name}"]
    phrases = " ".join(f'"{f.format(e=name)}"' for f in forms)
    code = f"{definition_phrases(name)} ::{name}(" if is_identifier(entity) else ""
    return " ".join([phrases, entity, name, code, relation, *SYNONYMS.get(relation.lower(), ())])


def definition_phrases(name: str) -> str:
    """Where a code name is defined (`.. function:: name(`, `def name(`), as phrases: however often the name is
    called, the chunk that defines it ranks first, and that is where its relations and defaults are stated."""
    return " ".join(f'"{keyword} {name}"' for keyword in _DEFINERS)


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text) is not None


def _by_rule(hop: Hop, sentences: list[Evidence]) -> bool:
    name = bare_name(hop.entity)
    for sentence in sentences:
        if _mentions(sentence.text, name) and (found := related_by_rule(hop.relation, name, sentence.text)):
            hop.found, hop.evidence = found, [sentence]
            return True
    return False


def _by_list(hop: Hop, windows: list[Evidence]) -> bool:
    """The item a positional relation ("the first See Also entry") picks from the list under its heading."""
    title = heading(hop.relation)
    for window in windows:
        found = listed_item(hop.relation, title, window.text)
        if found and found.lower() != bare_name(hop.entity).lower():
            hop.found, hop.evidence = found, [window]
            return True
    return False


async def _by_model(ctx: ReadingContext, hop: Hop, windows: list[Evidence], config: RelationConfig) -> None:
    question = f"What is the {hop.relation} of {hop.entity}?"
    prompt = (
        f"Evidence:\n\n{format_evidence(windows)}\n\nQuestion: {question}\nCopy the name from the evidence. "
        'Reply as JSON: {"name": "..."}, or {"name": ""} when the evidence does not say.'
    )
    options = ChatOptions(temperature=0.0, max_tokens=config.extract_max_tokens, json_schema=NAME_SCHEMA)
    reply = (await ctx.meter.chat(ctx.backend, [Message.user(prompt)], options)).message.content
    try:
        name = str(json.loads(reply).get("name", "")).strip(" `'\".")
    except (ValueError, AttributeError):
        return
    holding = [w for w in windows if name and _mentions(w.text, name)]
    if holding and name.lower() != bare_name(hop.entity).lower():
        hop.found, hop.evidence = name, holding[:1]


_NEXT_DEFINITION = re.compile(r"\n(?=\S[^\n]*?(?:::|\bdef\b|\bclass\b)\s*(?:[\w*]+\s+){0,3}\**(?:\w+\.)*\w+\()")
_PLAIN_WORDS = frozenset(
    "first second third last next entry entries item items one listed list under name named".split()
)
"""Words of a relation that say which of its items, not where the text states it."""


def _following_text(ctx: ReadingContext, mention: Evidence, name: str, chars: int) -> tuple[Chunk, int, str]:
    """The document's text from the mention on (into the next chunks), up to the next definition of a name after
    the line that mentions `name` (a mention that starts before its own definition line keeps that line)."""
    start = end = mention.start
    pieces: list[str] = []
    chunk_id = mention.chunk.chunk_id
    while end - start < chars:
        try:
            chunk = ctx.library.chunk(mention.chunk.doc_id, chunk_id)
        except IndexError:
            break
        if chunk.end > end:
            pieces.append(chunk.text[max(0, end - chunk.start) :])
            end = chunk.end
        chunk_id += 1
    text = "".join(pieces)[:chars]
    named = re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text)
    line_end = text.find("\n", named.end() if named else 0)
    cut = _NEXT_DEFINITION.search(text, line_end + 1) if line_end >= 0 else None
    return mention.chunk, start, text[: cut.start()] if cut else text


def heading(relation: str) -> str:
    """The words of a relation that the text writes where it states it: "See Also" of "first See Also entry"."""
    return " ".join([w for w in relation.split() if w.lower() not in _PLAIN_WORDS] or relation.split())


def relation_passage(
    ctx: ReadingContext, mention: Evidence, name: str, relation: str, config: RelationConfig
) -> Evidence | None:
    """Where the relation's own words ("See Also") first follow a mention of the entity: the passage from there."""
    chunk, start, text = _following_text(ctx, mention, name, config.scan_chars)
    pattern = phrase_text_pattern(heading(relation))
    found = pattern.search(text) if pattern else None
    if found is None:
        return None
    at = max(0, found.start() - 20)
    piece = text[at : found.start() + config.passage_chars]
    return Evidence(chunk=chunk, text=piece, start=start + at, end=start + at + len(piece), score=mention.score)


def defines(text: str, name: str) -> bool:
    """Does `text` define the code name (`.. function:: name(`, `def name(`, `class name(`)?"""
    keywords = "|".join(_DEFINERS)
    return re.search(rf"\b(?:{keywords})\b\W{{0,4}}(?:[\w.]+\.)?{re.escape(name)}\s*\(", text) is not None


def passages(
    ctx: ReadingContext, sentences: list[Evidence], entity: str, relation: str, config: RelationConfig
) -> list[Evidence]:
    """What the model reads for a link no pattern gives: the best mentions of the entity (a name's definition
    `name(` first), each with the passage where the relation's words follow it."""
    name = bare_name(entity)
    mentions = [e for e in sentences if _mentions(e.text, name)]
    if is_identifier(entity):
        defining = [e for e in mentions if defines(e.text, name)]
        mentions = defining or sorted(mentions, key=lambda e: f"{name}(" not in e.text)
    out: list[Evidence] = []
    for e in mentions[: config.model_passages]:
        out.append(e)
        if (following := relation_passage(ctx, e, name, relation, config)) is not None:
            out.append(following)
    return out


async def resolve(ctx: ReadingContext, entity: str, relation: str, config: RelationConfig) -> Hop:
    """One hop: the `relation` of `entity`, as the documents state it."""
    hop = Hop(entity, relation)
    hits = ctx.library.search(hop_query(entity, relation), k=config.k, doc_ids=ctx.doc_ids)
    packed = pack(hits, config.evidence_tokens, chunk_cost(ctx.backend))
    terms = [bare_name(entity), *relation.split(), *SYNONYMS.get(relation.lower(), ())]
    sentences = ranked_sentences(packed, terms)
    if _by_rule(hop, sentences):
        hop.evidence = sentence_windows(hop.evidence, terms, 1, radius=0)
        return hop
    windows = passages(ctx, sentences, entity, relation, config)
    if _by_list(hop, windows):
        return hop
    if windows and config.ask_model:
        await _by_model(ctx, hop, windows, config)
    return hop


async def follow_relations(ctx: ReadingContext, question: str, config: RelationConfig | None = None) -> Answer | None:
    """The answer along the question's chain of relations; None when the question has none."""
    config = config or RelationConfig()
    chain = relation_chain(question)
    if chain is None or len(chain.relations) > config.max_hops:
        return None
    started = time.perf_counter()
    hops: list[Hop] = []
    entity = chain.entity
    for relation in chain.relations:
        if ctx.meter.spent():
            break
        hops.append(await resolve(ctx, entity, relation, config))
        if hops[-1].found is None:
            break
        entity = code_entity(chain, hops[-1].found)
    answer = await _answer(ctx, question, chain, hops, config)
    answer.elapsed_s = time.perf_counter() - started
    answer.details.update(
        relations=chain.relations,
        facts=[h.fact() for h in hops if h.found],
        links=[established(h) for h in hops if h.found],
        not_established=[f"the {h.relation} of {h.entity}" for h in hops if not h.found],
    )
    return answer


def established(hop: Hop) -> dict[str, Any]:
    """A link the chain found, as a question answered with its citations: what a planner goes on from when a
    later link is not found."""
    cites = [
        Citation(source=e.chunk.source, chunk_id=e.chunk.chunk_id, start=e.start, end=e.end, page=e.chunk.page,
                 text=e.text)
        for e in hop.evidence
    ]  # fmt: skip
    return {"question": f"What is the {hop.relation} of {hop.entity}?", "answer": hop.found, "citations": cites}


def final_name(chain: RelationChain, found: str) -> str:
    """The chain's end as the question about it names it: a code name as `name()`, searched as called and as
    defined."""
    return f"`{bare_name(found)}()`" if is_identifier(code_entity(chain, found)) else found


def final_evidence(ctx: ReadingContext, final_question: str, config: RelationConfig) -> list[Evidence]:
    """The sentences that answer the question about the chain's end, with the line that defines a code name it
    names (its signature holds the defaults), which the sentences around its many mentions often leave out."""
    keywords = question_keywords(final_question)
    names = [bare_name(n) for n in question_names(final_question)]
    query = " ".join([keywords.query, *(definition_phrases(n) for n in names)])
    hits = ctx.library.search(query, k=config.k, doc_ids=ctx.doc_ids)
    packed = pack(hits, config.evidence_tokens, chunk_cost(ctx.backend))
    return with_defining_lines(final_question, sentence_windows(packed, keywords.focus_terms, 4), packed)


async def _answer(
    ctx: ReadingContext, question: str, chain: RelationChain, hops: list[Hop], config: RelationConfig
) -> Answer:
    evidence = [e for h in hops for e in h.evidence]
    complete = len(hops) == len(chain.relations) and all(h.found for h in hops)
    if not complete or not evidence:
        return Answer.nothing_found(Level.STEPWISE, ctx.meter.snapshot(), 0.0)
    final = hops[-1].found or ""
    if not chain.outer:  # the chain's end is the answer, and the sentences that state it are the citations
        cites = "".join(f"[{i}]" for i in range(1, len(evidence) + 1))
        return compose(f"{final} {cites}", evidence, question=question).to_answer(Level.STEPWISE, ctx.meter.snapshot())
    final_question = chain.final_question(final_name(chain, final))
    evidence += final_evidence(ctx, final_question, config)
    notes = "Found: " + "; ".join(h.fact() for h in hops) + "."
    composed = await answer_from_evidence(
        ctx.backend, final_question, evidence, ctx.meter, max_tokens=config.max_answer_tokens, notes=notes
    )
    return composed.to_answer(Level.STEPWISE, ctx.meter.snapshot(), details={"final_question": final_question})
