"""Answers that end cleanly: the answer JSON as text, a reply cut at its token cap still parsed (or asked again
shorter), and citations only of the evidence the answer uses. SCRIPTED model only."""

from __future__ import annotations

import json

import pytest

from lector.llm.scripted import ScriptedBackend
from lector.retrieval.answer_prompt import QUOTED_TAIL, SHORTER_TAIL, answer_from_evidence, answer_messages
from lector.retrieval.answer_reply import reply_text
from lector.retrieval.citations import compose
from lector.retrieval.reading_types import Evidence, UsageMeter
from lector.retrieval.types import Chunk

SIGNATURE = ".. function:: linspace(start, stop, num=50, endpoint=True)"


def evidence(texts: list[str]) -> list[Evidence]:
    out, at = [], 0
    for i, text in enumerate(texts):
        out.append(
            Evidence.of_chunk(Chunk(doc_id="d", source="m.rst", chunk_id=i, start=at, end=at + len(text), text=text))
        )
        at += len(text) + 2
    return out


@pytest.mark.parametrize(
    "reply, text, cut",
    [
        ('{"answer": "num=50", "evidence": [2]}', "num=50 [2]", False),
        ('{"answer": "50 [1]", "evidence": [1]}', "50 [1]", False),
        ('{"answer": "The default is 50. It is not explicitly stated whether the', "The default is 50.", True),
        ('{"answer": "It defaults to', "It defaults to …", True),
        ('{"answer": "a \\"quoted\\" value", "evidence": [1, 2', 'a "quoted" value [1][2]', False),
        ('{"ans', "", True),
        ("Green [1].", "Green [1].", False),
    ],
)
def test_reply_text(reply: str, text: str, cut: bool) -> None:
    got = reply_text(reply)
    assert (got.text, got.cut) == (text, cut)
    assert not got.text.startswith("{")


async def test_a_reply_cut_before_any_answer_is_asked_again_shorter() -> None:
    backend = ScriptedBackend(['{"answer', json.dumps({"answer": "50", "evidence": [1]})])
    composed = await answer_from_evidence(backend, "What is the default of num?", evidence([SIGNATURE]), UsageMeter())
    assert composed.text == "50 [1]" and composed.citations[0].text == SIGNATURE
    assert len(backend.requests) == 2
    assert backend.requests[1]["messages"][-1].content.endswith(SHORTER_TAIL)


async def test_a_cut_answer_is_shown_without_json_and_not_asked_again() -> None:
    backend = ScriptedBackend(['{"answer": "The default value of num is 50 [1]. Other values such as'])
    composed = await answer_from_evidence(backend, "What is the default of num?", evidence([SIGNATURE]), UsageMeter())
    assert composed.text == "The default value of num is 50 [1]." and len(backend.requests) == 1


def test_only_the_evidence_the_answer_uses_is_cited() -> None:
    items = evidence(
        [
            "The linspace function returns samples.",
            SIGNATURE,
            "Other functions take a num too.",
            "See also arange.",
            "Examples follow.",
            "Notes on endpoints.",
        ]
    )
    composed = compose("The default is 50 [1], [2], [3], [4], [5], [6]", items, question="What is the default of num?")
    assert [c.text for c in composed.citations] == [SIGNATURE]
    assert composed.text == "The default is 50 [1]" and composed.grounded


def test_a_quoted_line_in_the_evidence_is_pointed_out() -> None:
    items = evidence(["Then let it be, my lord, said Ophelia."])
    prompt = answer_messages('Who says "let it be"?', items)[-1].content
    assert prompt.count(QUOTED_TAIL.strip()) == 1
    assert 'The quoted words stand in [1]: "Then let it be, my lord, said Ophelia."\n' in prompt
    assert QUOTED_TAIL.strip() not in answer_messages('Who says "so be it"?', items)[-1].content


async def test_a_value_cited_from_the_wrong_item_is_cited_where_it_is_written() -> None:
    items = evidence(["The linspace function returns evenly spaced samples.", SIGNATURE])
    backend = ScriptedBackend([json.dumps({"answer": "50", "evidence": [1]})])
    composed = await answer_from_evidence(backend, "What is the default of num?", items, UsageMeter())
    assert [c.text for c in composed.citations] == [SIGNATURE] and composed.grounded
