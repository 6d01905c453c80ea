"""From the model's reply to a cited answer: map its [n] to citations of the evidence, and judge whether the
answer is grounded in what it cites (the signal Auto escalates on)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lector.retrieval.bm25_terms import CHINESE_STOP_WORDS
from lector.retrieval.cjk import has_cjk, split_ideographs
from lector.retrieval.levels import Level
from lector.retrieval.reading_types import Answer, AnswerUsage, Citation, Evidence
from lector.retrieval.sentences import sentence_spans

_CITE = re.compile(r"\[(\d+(?:\s*[,，、]\s*\d+)*)\]")
_CITE_SEPARATOR = re.compile(r"[,，、]")

_NOT_FOUND = re.compile(
    r"not\s+found|no (?:relevant )?information|not (?:mentioned|stated|provided|specified|given|contain)"
    r"|does(?:n't| not) (?:say|mention|contain|provide|specify|state)"
    r"|(?:cannot|can't|could not|unable to) (?:find|determine|answer|be determined)"
    r"|未找到|没有提到|未提及|无法(?:确定|回答|找到)|没有(?:相关)?信息",
    re.IGNORECASE,
)

_WORD = re.compile(r"[\w'-]+")
"""A run of word characters (its ideographs are then cut into bigrams: `split_ideographs`)."""
_SMALL_WORDS = frozenset(
    "a an the and or of to in on at by for with from is are was were be been it its this that as "
    "not found evidence answer".split()
)


def says_not_found(text: str) -> bool:
    return bool(_NOT_FOUND.search(text)) or not text.strip()


def content_terms(text: str) -> set[str]:
    """The words of `text` that carry meaning (no citation marks, small words or single letters); Chinese as
    character bigrams, without those made of stop words ("的", "一个", "是的")."""
    words = (w.strip("'-").lower() for w in _WORD.findall(_CITE.sub(" ", text)))  # 'full' as written in code
    terms = (t for w in words for t in (split_ideographs(w) if has_cjk(w) else [w]))
    return {t for t in terms if t not in _SMALL_WORDS and (len(t) > 1 or has_cjk(t)) and not _stop_bigram(t)}


def _stop_bigram(term: str) -> bool:
    return term in CHINESE_STOP_WORDS or (has_cjk(term) and all(c in CHINESE_STOP_WORDS for c in term))


def grounded(answer: str, question: str, cited: Sequence[Evidence]) -> bool:
    """Does the answer say something the cited evidence contains, beyond the question's own words?"""
    new_terms = content_terms(answer) - content_terms(question)
    if not new_terms:
        return bool(cited)
    return bool(new_terms & content_terms(" ".join(e.text for e in cited)))


def uncited(text: str) -> str:
    """`text` without its citation marks."""
    return _CITE.sub("", text).strip()


def cited_numbers(text: str, count: int) -> list[int]:
    """Evidence numbers (1-based, in first-cited order) the text cites; out-of-range numbers are ignored."""
    seen: list[int] = []
    for match in _CITE.finditer(text):
        for part in _CITE_SEPARATOR.split(match.group(1)):
            n = int(part.strip())
            if 1 <= n <= count and n not in seen:
                seen.append(n)
    return seen


_CITE_RUN = re.compile(rf"{_CITE.pattern}(?:\s*[,;]?\s*{_CITE.pattern})*")


def renumbered(text: str, mapping: dict[int, int]) -> str:
    """Rewrite the evidence numbers the model cited as positions in the citation list; drop invalid ones (and
    the commas that separated them)."""

    def mark(match: re.Match[str]) -> str:
        parts = [int(p.strip()) for p in _CITE_SEPARATOR.split(match.group(1))]
        kept = [str(mapping[p]) for p in parts if p in mapping]
        return "[" + ", ".join(dict.fromkeys(kept)) + "]" if kept else ""

    def run(match: re.Match[str]) -> str:
        marks = [m for m in (mark(c) for c in _CITE.finditer(match.group(0))) if m]
        return (", " if "," in _CITE.sub("", match.group(0)) else "").join(marks)

    return re.sub(r"\s+([.,;])", r"\1", _CITE_RUN.sub(run, text)).strip()


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


def focused_citation(e: Evidence, answer: str, question: str = "", max_chars: int = 600) -> Citation:
    """Cite the sentences of a long evidence item that best match the answer (then the question)."""
    if len(e.text) <= max_chars:
        return e.citation()
    answer_terms = content_terms(answer)
    question_terms = content_terms(question)
    spans = sentence_spans(e.text)
    best: tuple[float, int] | None = None
    for i, (s, t) in enumerate(spans):
        terms = content_terms(e.text[s:t])
        score = 2.0 * len(terms & answer_terms) + len(terms & question_terms)
        if score > 0 and (best is None or score > best[0]):
            best = (score, i)
    if best is None:
        return e.citation()
    first = last = best[1]
    while spans[last][1] - spans[first][0] < 120 and last + 1 < len(spans):  # a very short sentence: add the next
        last += 1
    start = spans[first][0]
    return e.span_citation(start, min(spans[last][1], start + max_chars))


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


@dataclass
class Composed:
    """The model's answer with its [n] mapped to citations."""

    text: str
    citations: list[Citation]
    found: bool
    cited: list[Evidence]
    grounded: bool
    """Found, and grounded in the cited evidence (see `grounded`)."""

    def to_answer(self, level: Level, usage: AnswerUsage, **fields: Any) -> Answer:
        return Answer(
            answer=self.text,
            level=level,
            citations=self.citations,
            found=self.found,
            grounded=self.grounded,
            usage=usage,
            **fields,
        )


MAX_CITED = 3


def used_numbers(text: str, numbers: Sequence[int], items: Sequence[Evidence], question: str) -> list[int]:
    """Of the evidence the answer cites, the items that hold its own words (beyond the question's), at most
    MAX_CITED; a small model cites every item it was shown ("[1], [2], [3], [4], [5], [6]")."""
    if len(numbers) <= 1:
        return list(numbers)
    new_terms = content_terms(text) - content_terms(question)
    holding = [n for n in numbers if new_terms & content_terms(items[n - 1].text)]
    return (holding or list(numbers))[:MAX_CITED]


def compose(text: str, items: Sequence[Evidence], quote_citations: bool = True, question: str = "") -> Composed:
    """Map the model's [n] to citations of the evidence the answer uses; when it cites nothing, cite the evidence
    that best supports it."""
    text = clean_answer(text)
    found = not says_not_found(text)
    numbers = used_numbers(text, cited_numbers(text, len(items)), items, question)
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
    text = renumbered(text, renumber)
    return Composed(
        text=text, citations=citations, found=found, cited=cited, grounded=found and grounded(text, question, cited)
    )


def recited(composed: Composed, items: Sequence[Evidence], question: str, limit: int = 2) -> Composed:
    """The answer cited where its own new words are, when its citations do not hold them.

    Small models often cite the first piece of a chain of evidence ("Orrin Ford [1]" where [1] names the medal
    winner and [3] says where the winner grew up)."""
    if not composed.found or composed.grounded:
        return composed
    plain = uncited(composed.text)
    new_terms = content_terms(plain) - content_terms(question)
    numbers = [i for i, e in enumerate(items, 1) if new_terms & content_terms(e.text)][:limit]
    if not numbers:
        return composed
    return compose(plain + " " + " ".join(f"[{n}]" for n in numbers), items, question=question)
