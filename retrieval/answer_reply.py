"""The model's reply to the answer prompt, as the text a person reads: the JSON `{"answer": a, "evidence": [n]}`
becomes "a [n]", and a reply cut at its token cap still gives its answer, never raw JSON."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_ANSWER_FIELD = re.compile(r'"answer"\s*:\s*"((?:[^"\\]|\\.)*)("?)', re.DOTALL)
_EVIDENCE_FIELD = re.compile(r'"evidence"\s*:\s*\[([\d,\s]*)')
_CLAUSE_END = re.compile(r"[.;!?。；！？](?=\s|$)")


@dataclass
class Reply:
    text: str
    """What the person reads: the answer and its evidence numbers in brackets."""
    cut: bool = False
    """The reply stopped inside its JSON (the token cap): `text` is what came before the cut."""


def _with_numbers(answer: str, numbers: list[int]) -> str:
    answer = answer.strip()
    marks = "".join(f"[{n}]" for n in dict.fromkeys(numbers) if f"[{n}]" not in answer)
    return f"{answer} {marks}" if marks else answer


def _unescape(raw: str) -> str:
    try:
        return str(json.loads(f'"{raw}"'))
    except ValueError:
        return raw.replace('\\"', '"').replace("\\n", "\n")


def _last_clause(text: str) -> str:
    """A cut answer up to its last full clause when it has one (no half sentence at the end)."""
    ends = list(_CLAUSE_END.finditer(text))
    return text[: ends[-1].end()] if ends and ends[-1].end() >= len(text) // 4 else text.rstrip(" ,:-") + " …"


def _salvaged(reply: str) -> Reply:
    match = _ANSWER_FIELD.search(reply)
    if match is None:
        bare = reply.strip().lstrip("{[").strip()
        return Reply("" if bare.startswith('"') else reply.strip(), cut=True)
    answer = _unescape(match.group(1))
    closed = bool(match.group(2))
    numbers_match = _EVIDENCE_FIELD.search(reply, match.end())
    numbers = [int(n) for n in re.findall(r"\d+", numbers_match.group(1))] if numbers_match else []
    return Reply(_with_numbers(answer if closed else _last_clause(answer), numbers), cut=not closed)


def reply_text(reply: str) -> Reply:
    """The reply as readable text. Anything that is not the answer JSON is returned as it is."""
    stripped = reply.strip()
    if not stripped.startswith("{"):
        return Reply(stripped)
    try:
        data = json.loads(stripped)
        answer, numbers = str(data["answer"]), [int(n) for n in data["evidence"]]
    except (ValueError, KeyError, TypeError):
        return _salvaged(stripped)
    return Reply(_with_numbers(answer, numbers))
