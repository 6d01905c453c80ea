"""The prompt that answers a question from numbered evidence, and the call that makes it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from lector.llm.backend import Backend, ChatOptions
from lector.llm.messages import Message
from lector.retrieval.answer_reply import reply_text
from lector.retrieval.citations import Composed, cited_numbers, compose, recited, uncited
from lector.retrieval.cjk import has_cjk
from lector.retrieval.compound import PART_MARK, covers_parts, parts_instruction, question_parts, without_part_marks
from lector.retrieval.pointers import (
    QuotedPlace,
    named_lines,
    parameter_lines,
    quoted_place,
    signature_value,
)
from lector.retrieval.reading_types import Evidence, UsageMeter
from lector.retrieval.speakers import asks_who

ANSWER_SYSTEM = (
    "You answer questions using only the numbered evidence the user gives you. "
    "Answer briefly and cite the evidence you used with its number in brackets, like [1]."
)
ANSWER_SYSTEM_ZH = "只根据用户给出的编号证据回答问题。回答要简短，并用方括号注明所用证据的编号，例如 [1]。"
ANSWER_TAIL = (
    "Write the answer in a few words, followed by the number of the evidence in brackets. When the question asks "
    "for a value, name, number or date, write it exactly as the evidence writes it."
)
ANSWER_TAIL_ZH = "请用几个词写出答案，后面用方括号写上证据编号。问的是数值、名称、数字或日期时，照证据原文写出。"
SHORTER_TAIL = " Answer in at most 15 words."
PARAMETER_TAIL = "The signature writes the parameter of"
"""Followed by the function's name, the evidence number and `param=value` as its signature writes it."""
QUOTED_LINE = "The quoted words stand in"
"""Under the question, followed by the evidence number and the sentence that holds the quoted words."""
QUOTED_AFTER = "Right after the quoted words, [{n}] goes on:"
"""Followed by the rest of the sentence after the quoted words (what comes next in the text)."""
QUOTED_SPEAKER = "The speech with the quoted words is headed by the speaker's line"
"""Followed by the evidence number and a play's speaker tag, when the question asks who says the line."""
QUOTED_TAIL = " Answer with what the text around the quoted words says, not with the quote."
NAMED_TAIL = "The evidence line for"
"""Followed by a code name of the question and the evidence line that defines or calls it, under the question."""
NOT_FOUND_TAIL = (
    " The evidence may use other words than the question. If no passage is about what the question asks, "
    "write NOT FOUND."
)
NOT_FOUND_TAIL_ZH = "证据的用词可能与问题不同。只有当没有任何段落涉及问题所问的内容时，才写 NOT FOUND。"

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "maxLength": 480},
        "evidence": {"type": "array", "items": {"type": "integer"}, "maxItems": 3},
    },
    "required": ["answer", "evidence"],
}
"""The bounds make the grammar close the reply well before the token cap (about 120 tokens of answer), and
keep the citations to the few items an answer uses."""
JSON_TAIL = ' Reply as JSON: {"answer": ..., "evidence": [numbers]}.'
"""The 1.5B answers far more often under this grammar than in free text, but it also answers more when the
evidence lacks the answer; those answers were not `grounded` in their cited evidence, which is what makes Auto
escalate instead of trusting them."""


PART_ANSWER = r'([^;("\\\n]|\([^0-9;"\\\n]){1,160}'
"""One part's answer in a compound question's reply: a bounded clause that cannot run into the next part's mark
(a "(" followed by a digit), so that a reply that joins the parts with a comma still moves on to the next part."""


def _pattern_literal(text: str) -> str:
    """`text` as a JSON-schema pattern literal in the subset llama.cpp's grammar converter reads (it rejects
    `re.escape`'s escaped spaces and `(?:` groups)."""
    return re.sub(r"([()\[\]{}.*+?|^$\\])", r"\\\1", text)


def answer_schema(question: str) -> dict[str, Any]:
    """The reply's schema. A compound question's answer must give every part, each after its number, so that a
    small model that knows both answers cannot stop after the first (it did, given only the instruction)."""
    parts = len(question_parts(question))
    if parts < 2:
        return ANSWER_SCHEMA
    marks = "(; )?".join(f"{_pattern_literal(PART_MARK.format(n=i))}{PART_ANSWER}" for i in range(1, parts + 1))
    answer = {"type": "string", "pattern": f"^{marks}$"}
    return {**ANSWER_SCHEMA, "properties": {**ANSWER_SCHEMA["properties"], "answer": answer}}


def is_answer_schema(schema: dict[str, Any] | None) -> bool:
    """Is this the schema of an answer reply (one part or several)?"""
    return bool(schema) and set(schema.get("properties", {})) == set(ANSWER_SCHEMA["properties"])  # type: ignore[union-attr]


def json_tail(question: str) -> str:
    parts = len(question_parts(question))
    if parts < 2:
        return JSON_TAIL
    shape = "; ".join(f"{PART_MARK.format(n=i)}..." for i in range(1, parts + 1))
    return f' Reply as JSON: {{"answer": "{shape}", "evidence": [numbers]}}.'


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
    body += f"Question: {question.strip()}\n"
    if lines := named_lines(question, items):
        body += "".join(f"{NAMED_TAIL} {line}\n" for line in lines)
    if lines := parameter_lines(question, items):
        body += "".join(f"{PARAMETER_TAIL} {line}\n" for line in lines)
    place = None if zh else quoted_place(question, items)
    if place:
        body += quoted_lines(question, place)
    body += ANSWER_TAIL_ZH if zh else ANSWER_TAIL
    if parts := parts_instruction(question):
        body += f" {parts}"
    if place:
        body += QUOTED_TAIL
    if allow_not_found:
        body += NOT_FOUND_TAIL_ZH if zh else NOT_FOUND_TAIL
    return [Message.system(system), Message.user(body)]


def quoted_lines(question: str, place: QuotedPlace) -> str:
    """The lines under the question that point at a quoted line: its sentence, what follows it and, for a
    question asking who says it, the speaker's line that heads its speech."""
    out = f'{QUOTED_LINE} [{place.item}]: "{place.sentence}"\n'
    if place.after:
        out += f'{QUOTED_AFTER.format(n=place.item)} "{place.after}"\n'
    if place.speaker and asks_who(question):
        out += f'{QUOTED_SPEAKER} [{place.item}]: "{place.speaker}"\n'
    return out


def prompt_overhead(backend: Backend, question: str) -> int:
    """Tokens the answer prompt takes besides the evidence itself."""
    skeleton = answer_messages(question, [])
    return sum(backend.count_tokens(m.content) for m in skeleton) + 16


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
    """The model's cited answer. A reply cut at `max_tokens` before any answer text is asked again, shorter; an
    answer whose citations do not hold its words is cited where they are (the line that holds the value)."""
    messages = answer_messages(question, items, notes, allow_not_found)
    messages[-1].content += json_tail(question)
    options = ChatOptions(temperature=0.0, max_tokens=max_tokens, json_schema=answer_schema(question))
    reply = reply_text((await meter.chat(backend, messages, options)).message.content)
    if reply.cut and not reply.text:
        messages[-1].content += SHORTER_TAIL
        reply = reply_text((await meter.chat(backend, messages, options)).message.content)
    text = as_written(question, without_part_marks(reply.text), items)
    return recited(compose(text, items, question=question), items, question)


def as_written(question: str, text: str, items: Sequence[Evidence]) -> str:
    """The answer, or the value the signature writes (cited to it) when the question asks a parameter's default or
    a type and the answer does not say it: a small model pointed at `weight='weight'` still answers "None", and
    asked a parameter's type it gives the function's return type. An answer that says it is cited to the
    signature."""
    parts = question_parts(question)
    if len(parts) > 1:
        return _parts_as_written(question, parts, text, items)
    known = signature_value(question, items)
    if known is None:
        return text
    item, value = known
    if not says_value(text, value) or uncited(text).strip("`'\" .") == value.strip("`'\""):
        return f"{value} [{item}]"  # the value as written (`'full'`, not full)
    if item not in cited_numbers(text, len(items)):
        return f"{uncited(text)} [{item}]"  # the value, cited to the line that writes it
    return text


def _parts_as_written(question: str, parts: list[str], text: str, items: Sequence[Evidence]) -> str:
    """A compound question whose every part asks a signature's value: the answer when it says them all, else the
    values in the order asked, each cited to its signature."""
    known = [signature_value(part, items, subject=question) for part in parts]
    if not all(known) or (covers_parts(text, question) and all(says_value(text, k[1]) for k in known if k)):
        return text
    return "; ".join(f"{value} [{item}]" for item, value in filter(None, known))


def says_value(text: str, value: str) -> bool:
    """Does `text` state `value` (quotes and backticks aside, as a whole word)?"""
    bare = value.strip("'\"`")
    plain = re.sub(r"[`'\"]", " ", text)
    return re.search(rf"(?<![\w.]){re.escape(bare)}(?![\w])", plain) is not None if bare else value in text
