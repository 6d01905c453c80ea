"""Compound questions: one lookup, and an answer that covers every part (else Auto escalates). SCRIPTED model."""

from __future__ import annotations

import json
import re

import pytest

from lector.agent.reader import aask, looks_multi_hop
from lector.llm.backend import ChatOptions
from lector.llm.messages import Message
from lector.llm.scripted import ScriptedBackend
from lector.retrieval.answer_prompt import ANSWER_SCHEMA, answer_messages, answer_schema, is_answer_schema, json_tail
from lector.retrieval.compound import covers_parts, question_parts, without_part_marks
from lector.retrieval.keywords import KeywordCache
from lector.retrieval.level2 import READ_SCHEMA
from lector.retrieval.library import Library

CAT = "What was the cat's name, and what colour was it?"
FACT = "The cat was called Smudge, and its fur was a dusty grey."


@pytest.mark.parametrize(
    "question, parts",
    [
        (CAT, ["What was the cat's name?", "what colour was it?"]),
        (
            "What is the default of `a` in `f`; what is the default of `b`?",
            ["What is the default of `a` in `f`?", "what is the default of `b`?"],
        ),
        ("Which words and phrases does it use?", ["Which words and phrases does it use?"]),
        ("What colour was the cat?", ["What colour was the cat?"]),
        ("In the kernel docs, what does `f()` return?", ["In the kernel docs, what does `f()` return?"]),
        ("In the manual, what is `a`, and what is `b`?", ["In the manual, what is `a`?", "what is `b`?"]),
    ],
)
def test_question_parts(question: str, parts: list[str]) -> None:
    assert question_parts(question) == parts


@pytest.mark.parametrize(
    "answer, covered",
    [("Smudge [1]", False), ("Smudge, dusty grey [1]", True), ("Its name was Smudge and it was grey [1]", True)],
)
def test_covers_parts(answer: str, covered: bool) -> None:
    assert covers_parts(answer, CAT) is covered
    assert covers_parts(answer, "What was the cat's name?"), "a one-part question is always covered"


def test_a_compound_question_is_one_lookup_and_asks_for_every_part() -> None:
    assert not looks_multi_hop(CAT)
    assert looks_multi_hop("Who founded Zorblat, and where was she born?"), "she is the first part's answer"
    prompt = answer_messages(CAT, [])[-1].content
    assert "(1) What was the cat's name? (2) what colour was it? Answer every part." in prompt


async def test_an_answer_to_one_part_escalates_to_level2(tmp_path) -> None:
    paras = [f"Paragraph {i} is about the barley and the mill." for i in range(3000)]
    paras.insert(1700, FACT)
    lib = Library(cache_dir=tmp_path)
    lib.add_text("\n\n".join(paras), "farm.txt")
    answers: list[str] = []

    def reply(messages: list[Message], tools: object, options: ChatOptions) -> str:
        schema = options.json_schema or {}
        if "keywords_en" in schema.get("properties", {}):
            return json.dumps({"keywords_en": ["cat", "colour"]})
        if schema == READ_SCHEMA:
            found = FACT in messages[-1].content
            return json.dumps({"relevant": found, "quotes": [FACT] if found else []})
        assert is_answer_schema(schema)
        answers.append(messages[-1].content)
        text = "Smudge" if len(answers) == 1 else "Smudge, and it was dusty grey"  # Level 1 answers one part
        return json.dumps({"answer": text, "evidence": [1]})

    answer = await aask(lib, CAT, backend=ScriptedBackend(default=reply), keyword_cache=KeywordCache())
    assert answer.level == 2 and answer.escalated_from == [1]
    assert "Smudge" in answer.answer and "grey" in answer.answer and answer.level1_answer == "Smudge [1]"


def test_each_part_of_a_compound_question_is_weighed_for_hops() -> None:
    assert not looks_multi_hop("What is the default value of `a` in `pkg.f`, and what is the default of `b`?")
    assert looks_multi_hop("What is the default of `a` in the first See Also entry of `pkg.f`, and what is `b`?")


def test_a_compound_answer_must_give_every_part_after_its_number() -> None:
    schema = answer_schema(CAT)
    assert is_answer_schema(schema) and is_answer_schema(ANSWER_SCHEMA) and not is_answer_schema(READ_SCHEMA)
    assert answer_schema("What was the cat's name?") == ANSWER_SCHEMA
    pattern = re.compile(schema["properties"]["answer"]["pattern"])
    assert pattern.match("(1) Smudge; (2) dusty grey [1]")
    assert pattern.match("(1) Smudge, (2) dusty grey (its fur)"), "a comma before the next mark is allowed"
    assert not pattern.match("(1) Smudge"), "half an answer is not a reply"
    assert not pattern.match("Smudge; dusty grey")
    assert not pattern.match("(1) Smudge (2) grey (3) born 1931"), "no part holds the next part's mark"
    assert '{"answer": "(1) ...; (2) ...", "evidence": [numbers]}' in json_tail(CAT)


@pytest.mark.parametrize(
    "reply, shown",
    [
        ("(1) Smudge; (2) dusty grey [1]", "Smudge; dusty grey [1]"),
        ("(1) Smudge, (2) dusty grey", "Smudge; dusty grey"),
        ("Smudge (2) of them", "Smudge (2) of them"),
    ],
)
def test_part_marks_are_not_shown(reply: str, shown: str) -> None:
    assert without_part_marks(reply) == shown
    assert covers_parts(shown, CAT) is reply.startswith("(1)")


def test_a_half_written_part_mark_is_not_shown_while_streaming() -> None:
    reply = "(1) Smudge; (2) dusty grey"
    seen = {without_part_marks(reply[:n], streaming=True) for n in range(len(reply) + 1)}
    assert not any("(" in text or text.endswith(";") for text in seen)
    assert without_part_marks(reply, streaming=True) == "Smudge; dusty grey"
