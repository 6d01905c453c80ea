"""Compound questions: "What was the cat's name, and what colour was it?" asks two things about one subject.
One lookup finds both; the answer must cover every part, which `covers_parts` checks."""

from __future__ import annotations

import re

_WH = r"(?:what|where|when|who|whom|whose|which|how|why)\b"
_JOIN = re.compile(rf"\s*(?:[,;]\s*(?:and\s+(?:also\s+)?)?|\s+and\s+(?:also\s+)?)(?={_WH})", re.IGNORECASE)
_PIECE_SEPARATOR = re.compile(r"\s*(?:[,;]|\band\b|\bwhile\b|\bbut\b|[，；、]|和)\s*", re.IGNORECASE)
_CITATION = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")
PART_MARK = "({n}) "
"""How a compound question's reply numbers the answer to each part (the prompt lists the parts the same way)."""
_PART_MARKS = re.compile(r"\s*[;,]?\s*\(\d\)\s+")
_HALF_MARK = re.compile(r"\s*[;,]?\s*(?:\(\d?\)?)?\s*$")


_ASKS = re.compile(
    rf"^\s*(?:{_WH}|(?:is|are|was|were|do|does|did|can|could|will|would|should|has|have|had)\b)", re.IGNORECASE
)


def _questions(pieces: list[str]) -> list[str]:
    """Pieces that ask something; a leading clause that does not ("In the manual, what is X?") joins the next."""
    out: list[str] = []
    lead = ""
    for piece in pieces:
        if not _ASKS.match(piece) and not out:
            lead = f"{lead}{piece}, "
            continue
        out.append(lead + piece if not out else piece)
        lead = ""
    return out


def question_parts(question: str) -> list[str]:
    """The questions a compound question joins ("A, and what B?" gives "A?" and "what B?"); one part otherwise.
    A framing clause before the first question word belongs to the first part."""
    text = question.strip()
    pieces = _questions([p.strip(" ,;") for p in _JOIN.split(text)])
    pieces = [p for p in pieces if len(p.split()) >= 2]
    if len(pieces) < 2:
        return [text]
    return [p if p.endswith("?") else p + "?" for p in pieces]


def is_compound(question: str) -> bool:
    return len(question_parts(question)) > 1


def covers_parts(answer: str, question: str) -> bool:
    """Does the answer say as many things as the question asks? Counted as the answer's pieces between commas,
    "and", semicolons (citation marks aside); a one-part question is always covered."""
    wanted = len(question_parts(question))
    if wanted < 2:
        return True
    pieces = [p for p in _PIECE_SEPARATOR.split(_CITATION.sub(" ", answer)) if p.strip(" .")]
    return len(pieces) >= wanted


def parts_instruction(question: str) -> str:
    """The line that asks the model to answer each part, or '' for a one-part question."""
    parts = question_parts(question)
    if len(parts) < 2:
        return ""
    listed = " ".join(f"({i}) {p}" for i, p in enumerate(parts, 1))
    return f"The question has {len(parts)} parts: {listed} Answer every part."


def without_part_marks(answer: str, *, streaming: bool = False) -> str:
    """A compound reply ("(1) Smudge; (2) dusty grey [1]") as a person reads it: "Smudge; dusty grey [1]".
    `streaming`: the reply is still being written, so a mark it has begun ("Smudge; (2") is left out too."""
    first = PART_MARK.format(n=1)
    if streaming and first.startswith(answer):
        return ""
    if not answer.startswith(first):
        return answer
    text = _HALF_MARK.sub("", answer) if streaming else answer
    return "; ".join(p.strip() for p in _PART_MARKS.split(text) if p.strip())
