"""Where the evidence holds what the question names: the sentence with a quoted line, the line that defines a
code name. A small model shown a dozen similar lines (a manual's list of related functions) picks a neighbour's;
pointing at the one line that holds the name fixes that."""

from __future__ import annotations

import re
from collections.abc import Sequence

from lector.retrieval.keywords import is_identifier, question_phrases, question_terms
from lector.retrieval.phrases import phrase_text_pattern, phrase_words
from lector.retrieval.reading_types import Evidence
from lector.retrieval.sentences import sentence_spans

MAX_LINE_CHARS = 240
_DIRECTIVE = re.compile(r"::|^\s*(?:def|class|function|fn|func|sub|proc|procedure|macro)\b")


def _signature(name: str) -> re.Pattern[str]:
    """A line that is a signature of `name`: up to three type words, the name, its parenthesised arguments."""
    return re.compile(rf"^\s*(?:[\w*&]+\s+){{0,3}}\**[\w.]*(?<![\w]){re.escape(name)}\s*\(.*\)\s*[;:]?\s*(?:->.*)?$")


def quoted_sentence(question: str, items: Sequence[Evidence]) -> str:
    """Where the evidence holds a line the question quotes (two words or more): '[n]: "the sentence"', or ''."""
    patterns = [p for q in question_phrases(question) if len(phrase_words(q)) > 1 and (p := phrase_text_pattern(q))]
    for n, e in enumerate(items, 1):
        for pattern in patterns:
            if (found := pattern.search(e.text)) is not None:
                spans = sentence_spans(e.text)
                s, t = next(((s, t) for s, t in spans if s <= found.start() < t), found.span())
                return f'[{n}]: "{" ".join(e.text[s:t].split())}"'
    return ""


def question_names(question: str) -> list[str]:
    """The code names the question asks about, as the text would write them bare (`numpy.fft.fft()` -> fft)."""
    names = (t.removesuffix("()").rsplit(".", 1)[-1] for t in question_terms(question) if is_identifier(t))
    return list(dict.fromkeys(n for n in names if len(n) > 1))


def _line_at(text: str, at: int) -> str:
    start = text.rfind("\n", 0, at) + 1
    end = text.find("\n", at)
    line = " ".join(text[start : end if end >= 0 else len(text)].split())
    return line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + "…"


def _best_line(name: str, items: Sequence[Evidence]) -> tuple[int, str] | None:
    """The first line that defines `name` (a signature or directive), else the first that calls it."""
    called = re.compile(rf"(?<!\w){re.escape(name)}\s*\(")
    signature = _signature(name)
    first: tuple[int, str] | None = None
    for n, e in enumerate(items, 1):
        for found in called.finditer(e.text):
            line = _line_at(e.text, found.start())
            if _DIRECTIVE.search(line) or signature.match(line):
                return n, line
            first = first or (n, line)
    return first


def named_lines(question: str, items: Sequence[Evidence]) -> list[str]:
    """For each code name in the question, the evidence line that defines or calls it: '`name`: [n] line'."""
    out = []
    for name in question_names(question):
        if (found := _best_line(name, items)) is not None:
            out.append(f"`{name}`: [{found[0]}] {found[1]}")
    return out
