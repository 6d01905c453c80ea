"""Experimental answer prompts for bench/dev_answer_prompt.py (not used by Lector itself)."""

from __future__ import annotations

import math
import re
from typing import Any

from lector.llm.backend import ChatOptions
from lector.llm.messages import Message
from lector.retrieval import answer as ans
from lector.retrieval.answer import Evidence
from lector.retrieval.keywords import question_terms

SPLIT = re.compile(r"(?<=[.!?])\s+|\n\s*\n")


def sentences(text: str) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for m in SPLIT.finditer(text):
        if m.start() > pos:
            spans.append((pos, m.start()))
        pos = m.end()
    if pos < len(text):
        spans.append((pos, len(text)))
    return spans


def windows(items: list[Evidence], query: str, question: str, top: int = 6, radius: int = 1) -> list[Evidence]:
    terms = set(question_terms(query + " " + question))
    sents = []
    for idx, e in enumerate(items):
        for j, (s, t) in enumerate(sentences(e.text)):
            words = set(w.lower().strip("'-") for w in re.findall(r"[\w'-]+", e.text[s:t]))
            sents.append((idx, j, s, t, words & terms))
    n = len(sents) or 1
    df = {w: sum(1 for x in sents if w in x[4]) for w in terms}
    scored = sorted(((sum(math.log(1 + n / df[w]) for w in x[4]), x) for x in sents if x[4]),
                    key=lambda p: -p[0])[:top]
    picked: dict[int, set[int]] = {}
    for _, (idx, j, *_rest) in scored:
        picked.setdefault(idx, set()).update(range(j - radius, j + radius + 1))
    out = []
    for idx in sorted(picked):
        e = items[idx]
        spans = sentences(e.text)
        keep = sorted(j for j in picked[idx] if 0 <= j < len(spans))
        groups: list[list[int]] = []
        for j in keep:
            if groups and j == groups[-1][-1] + 1:
                groups[-1].append(j)
            else:
                groups.append([j])
        for g in groups:
            s, t = spans[g[0]][0], spans[g[-1]][1]
            out.append(Evidence(chunk=e.chunk, text=e.text[s:t], start=e.start + s, end=e.start + t,
                                score=e.score))
    return out


SYSTEM = ans.ANSWER_SYSTEM
TAIL = ans.ANSWER_TAIL
NF = ans.NOT_FOUND_TAIL
NF_SOFT = (" The answer may use different words from the question. Write NOT FOUND only if no passage "
           "is about what the question asks.")


def messages(flags: set[str], question: str, items: list[Evidence]) -> list[Message]:
    fmt = (lambda xs: "\n\n".join(f"[{i}] {e.text.strip()}" for i, e in enumerate(xs, 1))) \
        if "nohdr" in flags else ans.format_evidence
    body = ""
    if "qboth" in flags:
        body += f"Question: {question.strip()}\n\n"
    body += f"Evidence:\n\n{fmt(items)}\n\n"
    body += f"Question: {question.strip()}\n{TAIL}"
    body += NF_SOFT if "nfsoft" in flags else ("" if "nonf" in flags else NF)
    return [Message.system(SYSTEM), Message.user(body)]


async def run(variant: str, backend: Any, question: str, items: list[Any], query: str, meter: Any) -> Any:
    flags = set(variant.split("+"))
    if "win" in flags:
        items = windows(items, query, question)
    if "win10" in flags:
        items = windows(items, query, question, top=10)
    msgs = messages(flags, question, items)
    opts = ChatOptions(temperature=0.0, max_tokens=256)
    if "json" in flags:
        opts = ChatOptions(temperature=0.0, max_tokens=256, json_schema={
            "type": "object",
            "properties": {"answer": {"type": "string"},
                           "evidence": {"type": "array", "items": {"type": "integer"}}},
            "required": ["answer", "evidence"]})
    result = await meter.chat(backend, msgs, opts)
    text = result.message.content
    if "json" in flags:
        import json
        try:
            d = json.loads(text)
            text = f"{d.get('answer', '')} " + "".join(f"[{n}]" for n in d.get("evidence", []))
        except ValueError:
            pass
    return ans.compose(text, items, question=question)
