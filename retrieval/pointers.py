"""Where the evidence holds what the question names: the sentence with a quoted line, the line that defines a
code name. A small model shown a dozen similar lines (a manual's list of related functions) picks a neighbour's;
pointing at the one line that holds the name fixes that."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from lector.retrieval.keywords import is_identifier, question_phrases, question_terms
from lector.retrieval.phrases import phrase_text_pattern, phrase_words, quoted_spans
from lector.retrieval.reading_types import Evidence
from lector.retrieval.sentences import sentence_spans
from lector.retrieval.signature_values import (
    DEFINING_WORDS,
    argument_text,
    argument_type,
    argument_value,
    return_type,
    typed_argument,
)
from lector.retrieval.speakers import speaker_line

MAX_LINE_CHARS = 240
_DIRECTIVE = re.compile(rf"::|^\s*(?:{'|'.join(DEFINING_WORDS)})\b")


def _signature(name: str) -> re.Pattern[str]:
    """A line that is a signature of `name`: up to three type words, the name, its parenthesised arguments."""
    return re.compile(rf"^\s*(?:[\w*&]+\s+){{0,3}}\**[\w.]*(?<![\w]){re.escape(name)}\s*\(.*\)\s*[;:]?\s*(?:->.*)?$")


MAX_AFTER_CHARS = 160


@dataclass
class QuotedPlace:
    """Where the evidence holds a line the question quotes."""

    item: int
    """1-based number of the evidence item."""
    sentence: str
    """The sentence that holds the quoted words."""
    after: str
    """What the text says right after the quoted words (the rest of their sentence, else the next one)."""
    speaker: str
    """The speaker's tag that heads the speech holding them, where the evidence is a play's; else ''."""


def quoted_place(question: str, items: Sequence[Evidence]) -> QuotedPlace | None:
    """The first evidence item holding a line the question quotes (two words or more), or None."""
    patterns = [p for q in question_phrases(question) if len(phrase_words(q)) > 1 and (p := phrase_text_pattern(q))]
    for n, e in enumerate(items, 1):
        for pattern in patterns:
            if (found := pattern.search(e.text)) is not None:
                return _place(n, e, found)
    return None


def _place(n: int, e: Evidence, found: re.Match[str]) -> QuotedPlace:
    spans = sentence_spans(e.text)
    s, t = next(((s, t) for s, t in spans if s <= found.start() < t), found.span())
    at = e.start - e.chunk.start  # the item's offset in its chunk, whose text goes on past a window's end
    inside = 0 <= at and e.chunk.text[at : at + len(e.text)] == e.text
    whole, at = (e.chunk.text, at) if inside else (e.text, 0)
    speaker = speaker_line(whole, at + found.start())
    return QuotedPlace(n, " ".join(e.text[s:t].split()), _after(whole, at + found.end()), speaker[1] if speaker else "")


def _after(text: str, end: int) -> str:
    """The rest of the sentence from `end` on, or the next sentence when nothing but punctuation is left."""
    spans = sentence_spans(text)
    t = next((t for s, t in spans if s <= end - 1 < t), end)
    after = _clip(text[end:t])
    if not any(ch.isalnum() for ch in after):
        after = _clip(next((text[a:b] for a, b in spans if a >= t), ""))
    return after


def _clip(text: str) -> str:
    text = " ".join(text.split()).lstrip(",;:-— ")
    return text if len(text) <= MAX_AFTER_CHARS else text[:MAX_AFTER_CHARS].rsplit(" ", 1)[0] + " …"


def question_names(question: str) -> list[str]:
    """The code names the question asks about, as the text would write them bare (`numpy.fft.fft()` -> fft)."""
    names = (t.removesuffix("()").rsplit(".", 1)[-1] for t in question_terms(question) if is_identifier(t))
    return list(dict.fromkeys(n for n in names if len(n) > 1))


def _line_at(text: str, at: int) -> str:
    start = text.rfind("\n", 0, at) + 1
    end = text.find("\n", at)
    line = " ".join(text[start : end if end >= 0 else len(text)].split())
    return line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + "…"


def _line_span(text: str, at: int) -> tuple[int, int]:
    end = text.find("\n", at)
    return text.rfind("\n", 0, at) + 1, end if end >= 0 else len(text)


def _lines_naming(name: str, text: str) -> Iterator[tuple[int, bool]]:
    """Offsets in `text` where `name(` stands, each with whether its line defines `name` (a signature or a
    directive) rather than calls it."""
    signature = _signature(name)
    for found in re.finditer(rf"(?<!\w){re.escape(name)}\s*\(", text):
        s, t = _line_span(text, found.start())
        line = text[s:t]
        yield found.start(), bool(_DIRECTIVE.search(line) or signature.match(line))


def _best_line(name: str, items: Sequence[Evidence]) -> tuple[int, str] | None:
    """The first line that defines `name` (a signature or directive), else the first that calls it."""
    first: tuple[int, str] | None = None
    for n, e in enumerate(items, 1):
        for at, defines in _lines_naming(name, e.text):
            if defines:
                return n, _line_at(e.text, at)
            first = first or (n, _line_at(e.text, at))
    return first


def with_defining_lines(question: str, items: Sequence[Evidence], pool: Sequence[Evidence]) -> list[Evidence]:
    """`items` and, for each code name of the question that no item defines, the line of `pool` (the whole
    chunks the items were cut from) that defines it, as evidence of its own in document order: sentence windows
    around a name's many mentions often leave out the one signature that holds its defaults."""
    out = list(items)
    for name in question_names(question):
        if any(defines for e in out for _, defines in _lines_naming(name, e.text)):
            continue
        found = next(((e, at) for e in pool for at, defines in _lines_naming(name, e.text) if defines), None)
        if found is not None:
            e, at = found
            s, t = _line_span(e.text, at)
            out.append(Evidence(e.chunk, e.text[s:t], e.start + s, e.start + t, e.score))
    order = {doc: i for i, doc in enumerate(dict.fromkeys(e.chunk.doc_id for e in out))}
    return sorted(out, key=lambda e: (order[e.chunk.doc_id], e.start)) if len(out) > len(items) else out


def _defining_line(name: str, items: Sequence[Evidence]) -> tuple[int, str] | None:
    """The first evidence line that defines `name`, whole (not clipped): (item number, line)."""
    for n, e in enumerate(items, 1):
        for at, defines in _lines_naming(name, e.text):
            if defines:
                s, t = _line_span(e.text, at)
                return n, " ".join(e.text[s:t].split())
    return None


def _parameter_candidates(question: str) -> list[str]:
    quoted = [s for s in quoted_spans(question) if re.fullmatch(r"\w+", s)]
    return list(dict.fromkeys([*quoted, *(t for t in question_terms(question) if re.fullmatch(r"\w*_\w*", t))]))


def parameter_lines(question: str, items: Sequence[Evidence]) -> list[str]:
    """For each parameter the question names, what the signature of its function in the evidence writes for it:
    '`name` [n]: param=value'."""
    params = _parameter_candidates(question)
    out = []
    for name in question_names(question):
        found = _defining_line(name, items) if params else None
        if found is None:
            continue
        for param in params:
            if param == name:
                continue
            written = argument_text(found[1], param)
            if written is None and (typed := typed_argument(found[1], name, param)):
                written = typed[0]  # no default: the argument with its type (`struct ieee802154_dev *dev`)
            if written:
                out.append(f"`{name}` [{found[0]}]: {written}")
    return out


_ASKS_DEFAULT = re.compile(r"\bdefaults?\b", re.IGNORECASE)


def signature_default(question: str, items: Sequence[Evidence], subject: str = "") -> tuple[int, str] | None:
    """For a question asking one parameter's default: (item number, the default its function's signature in the
    evidence writes), or None when the question asks something else or the evidence does not settle it.
    `subject`: where the function is named, when not in `question` (the whole of a compound question)."""
    params = _parameter_candidates(question) if _ASKS_DEFAULT.search(question) else []
    found = set()
    for name in question_names(subject or question) if params else []:
        line = _defining_line(name, items)
        for param in params if line else []:
            if param != name and line and (value := argument_value(line[1], param)) is not None:
                found.add((line[0], value))
    return found.pop() if len(found) == 1 else None


_ASKS_TYPE = re.compile(r"\btypes?\b", re.IGNORECASE)
_ASKS_RETURN = re.compile(r"\breturn(?:s|ed)?\b", re.IGNORECASE)


def signature_type(question: str, items: Sequence[Evidence], subject: str = "") -> tuple[int, str] | None:
    """For a question asking a function's return type or a parameter's type: (item number, the type its signature
    in the evidence declares, as written), or None when the question asks something else or the evidence does not
    settle it. `subject` as for `signature_default`."""
    if not _ASKS_TYPE.search(question):
        return None
    returns = _ASKS_RETURN.search(question) is not None
    params = [] if returns else _parameter_candidates(question)
    found: set[tuple[int, str]] = set()
    for name in question_names(subject or question) if returns or params else []:
        line = _defining_line(name, items)
        if line is None:
            continue
        declared = [return_type(line[1], name)] if returns else [argument_type(line[1], name, p) for p in params]
        found.update((line[0], t) for t in declared if t)
    return found.pop() if len(found) == 1 else None


def signature_value(question: str, items: Sequence[Evidence], subject: str = "") -> tuple[int, str] | None:
    """The default or type the question asks, as the signature in the evidence writes it: (item number, value)."""
    return signature_default(question, items, subject) or signature_type(question, items, subject)


def named_lines(question: str, items: Sequence[Evidence]) -> list[str]:
    """For each code name in the question, the evidence line that defines or calls it: '`name`: [n] line'."""
    out = []
    for name in question_names(question):
        if (found := _best_line(name, items)) is not None:
            out.append(f"`{name}`: [{found[0]}] {found[1]}")
    return out
