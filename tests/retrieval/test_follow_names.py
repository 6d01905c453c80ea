"""Following names hop by hop (retrieval/follow_names.py), with the SCRIPTED model reading the chain it is given."""

from __future__ import annotations

import json
import re

from lector.llm.backend import ChatOptions
from lector.llm.messages import Message
from lector.llm.scripted import ScriptedBackend
from lector.retrieval.context import ReadingContext
from lector.retrieval.follow_names import BridgeConfig, follow_names, new_names
from lector.retrieval.library import Library

QUESTION = "At which school did the spouse of the person who started the Zorblat Company give lessons?"
FACTS = [
    "The Zorblat Company was founded by Ilsabet Brenwick.",
    "Ilsabet Brenwick was married to Osric Strand.",
    "Osric Strand taught chemistry at the Wexford Academy.",
]


def test_new_names_are_the_capitalised_ones_the_question_lacks() -> None:
    assert new_names(FACTS[0], QUESTION) == ["Ilsabet Brenwick"]
    assert new_names(FACTS[1], QUESTION + " Ilsabet Brenwick") == ["Osric Strand"]
    assert new_names("Keith told Penny about the Bay of Bengal.", "") == ["Penny", "Bay of Bengal"]
    assert new_names("Thus the matter ended.", "") == []
    assert new_names("“Everyone knew it,” said the Quillon Medal committee.", "Quillon Medal") == []


def haystack(tmp_path) -> tuple[Library, str]:
    words = ["weather", "barley", "orchard", "harvest", "river", "market", "mill", "fence", "cattle", "road"]
    paras = [f"Paragraph {i} tells of the {words[i % 10]} and the {words[(i * 3) % 10]} school." for i in range(2400)]
    for at, fact in zip((1900, 200, 1100), FACTS, strict=True):
        paras.insert(at, fact)
    lib = Library(cache_dir=tmp_path)
    return lib, lib.add_text("\n\n".join(paras), "chronicle.txt")


def reader(messages: list[Message], tools: object, options: ChatOptions) -> str:
    """Cites the evidence holding the school, if it was shown; NOT FOUND otherwise."""
    user = messages[-1].content
    if "keywords_en" in (options.json_schema or {}).get("properties", {}):
        return json.dumps({"keywords_en": ["school", "spouse"]})
    blocks = re.split(r"^\[(\d+)\] \(", user, flags=re.M)
    for number, block in zip(blocks[1::2], blocks[2::2], strict=True):
        if "Wexford" in block:
            return json.dumps({"answer": "the Wexford Academy", "evidence": [int(number)]})
    return json.dumps({"answer": "NOT FOUND", "evidence": []})


async def test_three_hops_bring_every_fact_of_the_chain(tmp_path) -> None:
    lib, doc = haystack(tmp_path)
    backend = ScriptedBackend(default=reader)
    answer = await follow_names(ReadingContext(lib, backend, [doc]), QUESTION)
    prompt = backend.requests[-1]["messages"][-1].content
    assert all(fact in prompt for fact in FACTS)
    assert prompt.index(FACTS[0]) < prompt.index(FACTS[1]) < prompt.index(FACTS[2])  # hop order, not page order
    assert answer.found and answer.grounded and "Wexford" in answer.answer
    assert answer.details["names_followed"][:2] == ["Ilsabet Brenwick", "Osric Strand"]
    assert answer.citations[0].text == FACTS[2]
    assert answer.usage.llm_calls == 2 and len(prompt) < 4000  # a few sentences, not chunks


async def test_fewer_hops_miss_the_last_fact(tmp_path) -> None:
    lib, doc = haystack(tmp_path)
    backend = ScriptedBackend(default=reader)
    answer = await follow_names(ReadingContext(lib, backend, [doc]), QUESTION, BridgeConfig(max_hops=2))
    assert not answer.found and FACTS[2] not in backend.requests[-1]["messages"][-1].content


async def test_no_match_is_not_found_without_an_answer_call(tmp_path) -> None:
    lib, doc = haystack(tmp_path)
    backend = ScriptedBackend(default=reader)
    answer = await follow_names(
        ReadingContext(lib, backend, [doc]), "Who painted the xylophone quokka?", BridgeConfig(use_model_keywords=False)
    )
    assert not answer.found and backend.requests == []


async def test_a_miscited_chain_answer_is_cited_where_its_words_are(tmp_path) -> None:
    lib, doc = haystack(tmp_path)

    def cites_the_first(messages: list[Message], tools: object, options: ChatOptions) -> str:
        reply = json.loads(reader(messages, tools, options))
        return json.dumps({**reply, "evidence": [1]}) if "answer" in reply else json.dumps(reply)

    answer = await follow_names(ReadingContext(lib, ScriptedBackend(default=cites_the_first), [doc]), QUESTION)
    assert answer.found and answer.grounded
    assert [c.text for c in answer.citations] == [FACTS[2]] and answer.answer.endswith("[1]")


async def test_an_answer_no_evidence_holds_stays_ungrounded(tmp_path) -> None:
    lib, doc = haystack(tmp_path)

    def invents(messages: list[Message], tools: object, options: ChatOptions) -> str:
        reply = json.loads(reader(messages, tools, options))
        return json.dumps({"answer": "Harwell College", "evidence": [1]}) if "answer" in reply else json.dumps(reply)

    answer = await follow_names(ReadingContext(lib, ScriptedBackend(default=invents), [doc]), QUESTION)
    assert answer.found and not answer.grounded


MEDAL_QUESTION = "In what settlement did the recipient of the 1952 Quillon Medal spend their childhood?"
MEDAL_FACTS = [
    "The Quillon Medal of 1952 was awarded to the engraver Tamsin Vonnegrau.",
    "Tamsin Vonnegrau grew up in the hill village of Orrin Ford.",
]


def crowded_haystack(tmp_path) -> tuple[Library, str]:
    """The chain's second fact shares no word with the question, and a frequent name ("the Harbour Guild") that
    the first hop also picks up fills a joint search for both names."""
    words = ["weather", "barley", "orchard", "harvest", "river", "market", "mill", "fence", "cattle", "road"]
    paras = [f"Paragraph {i} tells of the {words[i % 10]} and the {words[(i * 3) % 10]}." for i in range(2400)]
    for i in range(0, 2400, 8):
        paras[i] = f"The Harbour Guild met in the settlement to spend day {i} on the {words[i % 10]}."
    paras.insert(1800, MEDAL_FACTS[1])
    paras.insert(300, MEDAL_FACTS[0] + " The Harbour Guild spent that settlement's childhood fund.")
    lib = Library(cache_dir=tmp_path)
    return lib, lib.add_text("\n\n".join(paras), "chronicle.txt")


async def test_the_next_hop_finds_a_rare_name_beside_a_frequent_one(tmp_path) -> None:
    lib, doc = crowded_haystack(tmp_path)

    def reads(messages: list[Message], tools: object, options: ChatOptions) -> str:
        blocks = re.split(r"^\[(\d+)\] \(", messages[-1].content, flags=re.M)
        for number, block in zip(blocks[1::2], blocks[2::2], strict=True):
            if "Orrin Ford" in block:
                return json.dumps({"answer": "Orrin Ford", "evidence": [int(number)]})
        return json.dumps({"answer": "NOT FOUND", "evidence": []})

    backend = ScriptedBackend(default=reads)
    config = BridgeConfig(use_model_keywords=False)
    answer = await follow_names(ReadingContext(lib, backend, [doc]), MEDAL_QUESTION, config)
    assert "Tamsin Vonnegrau" in answer.details["names_followed"]
    assert MEDAL_FACTS[1] in backend.requests[-1]["messages"][-1].content
    assert answer.found and "Orrin Ford" in answer.answer and answer.citations[0].text == MEDAL_FACTS[1]
