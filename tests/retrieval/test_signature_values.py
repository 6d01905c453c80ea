"""A parameter's value as its signature line writes it, and the pointers built on it."""

import functools
import json

from lector.llm.scripted import ScriptedBackend
from lector.retrieval.answer_prompt import PARAMETER_TAIL, answer_from_evidence, answer_messages, as_written
from lector.retrieval.pointers import parameter_lines, signature_default, signature_type, with_defining_lines
from lector.retrieval.reading_types import Evidence, UsageMeter
from lector.retrieval.signature_values import argument_text, argument_type, argument_value, return_type
from tests.retrieval.evidence_items import items as evidence_items

LAYOUT = (
    ".. function:: spring_layout(G, k=None, pos=None, weight='weight', center=(0, 1), *, method='auto', gravity=1.0)"
)


def test_argument_text_as_written() -> None:
    assert argument_text(LAYOUT, "weight") == "weight='weight'"
    assert argument_text(LAYOUT, "center") == "center=(0, 1)"
    assert argument_text(LAYOUT, "method") == "method='auto'"
    assert argument_text(LAYOUT, "gravity") == "gravity=1.0"
    assert argument_text(LAYOUT, "G") is None  # no default
    assert argument_text(LAYOUT, "ravity") is None  # not part of a longer name
    assert (
        argument_text('def f(x, axes: tuple[int, int] = (0, 1), sep=",")', "axes") == "axes: tuple[int, int] = (0, 1)"
    )
    assert argument_text('def f(x, sep=",", end=")")', "sep") == 'sep=","'
    assert argument_text('def f(x, sep=",", end=")")', "end") == 'end=")"'
    assert argument_text("def f(k: int, j=3)", "k") is None


items = functools.partial(evidence_items, source="m.rst")


QUESTION = "What is the default value of the `weight` parameter of `networkx.spring_layout`?"


def test_the_parameter_of_the_named_function_is_pointed_out() -> None:
    evidence = items(">>> pos = nx.spring_layout(G, weight='w')", f"{LAYOUT}\n\n   Position nodes.")
    assert parameter_lines(QUESTION, evidence) == ["`spring_layout` [2]: weight='weight'"]
    prompt = answer_messages(QUESTION, evidence)[-1].content
    assert f"{PARAMETER_TAIL} `spring_layout` [2]: weight='weight'\n" in prompt
    assert parameter_lines("What does `spring_layout` return?", evidence) == []
    assert parameter_lines(QUESTION, items(">>> nx.spring_layout(G, weight='w')")) == []  # a call, not the signature


def test_a_defining_line_left_out_by_the_windows_is_added_in_document_order() -> None:
    whole = items("Intro.", f"Mentions spring_layout(G) twice.\n{LAYOUT}\n   Position nodes.")
    window = whole[1]
    shown = [whole[0], Evidence(window.chunk, window.text[:32], window.start, window.start + 32)]
    out = with_defining_lines(QUESTION, shown, whole)
    assert [e.text for e in out] == ["Intro.", "Mentions spring_layout(G) twice.", LAYOUT]
    assert out[2].text == out[2].chunk.text[out[2].start - out[2].chunk.start : out[2].end - out[2].chunk.start]
    assert with_defining_lines(QUESTION, whole, whole) == whole  # already shown
    assert with_defining_lines("What is a graph?", shown, whole) == shown


def test_argument_value() -> None:
    assert argument_value(LAYOUT, "weight") == "'weight'"
    assert argument_value("def f(x, axes: tuple[int, int] = (0, 1))", "axes") == "(0, 1)"
    assert argument_value(LAYOUT, "G") is None


def test_an_answer_without_the_signatures_default_is_given_it() -> None:
    evidence = items("Compute the layout.", f"{LAYOUT}\n\n   Position nodes.")
    assert signature_default(QUESTION, evidence) == (2, "'weight'")
    assert as_written(QUESTION, "None [2]", evidence) == "'weight' [2]"
    assert as_written(QUESTION, "It is `weight` [2]", evidence) == "It is `weight` [2]"  # said, quotes aside
    assert as_written("What does the `weight` parameter of `spring_layout` do?", "Weights edges.", evidence) == (
        "Weights edges."
    )
    assert signature_default("What is the default of `k`?", evidence) is None  # no function named


async def test_the_cited_answer_states_the_default() -> None:
    evidence = items("Compute the layout.", f"{LAYOUT}\n\n   Position nodes.")
    backend = ScriptedBackend([json.dumps({"answer": "None", "evidence": [2]})])
    composed = await answer_from_evidence(backend, QUESTION, evidence, UsageMeter())
    assert composed.text.startswith("'weight'") and [c.text for c in composed.citations][0].startswith(".. function")


FREE = ".. c:function:: void ieee802154_free_device(struct ieee802154_dev *dev)"
DRVDATA = ".. c:function:: void *cec_get_drvdata(const struct cec_adapter *adap, u8 lqi, char buf[], ...)"


def test_types_as_the_signature_declares_them() -> None:
    assert argument_type(FREE, "ieee802154_free_device", "dev") == "struct ieee802154_dev *"
    assert argument_type(DRVDATA, "cec_get_drvdata", "adap") == "const struct cec_adapter *"
    assert argument_type(DRVDATA, "cec_get_drvdata", "lqi") == "u8"
    assert argument_type(DRVDATA, "cec_get_drvdata", "buf") == "char"
    assert argument_type(DRVDATA, "cec_get_drvdata", "ada") is None  # not part of a longer name
    assert argument_type("def f(x, axes: tuple[int, int] = (0, 1))", "f", "axes") == "tuple[int, int]"
    assert argument_type(LAYOUT, "spring_layout", "weight") is None  # no type declared
    assert return_type(FREE, "ieee802154_free_device") == "void"
    assert return_type(DRVDATA, "cec_get_drvdata") == "void *"
    assert return_type("def numpy.fft.fft(a, n: int = None) -> numpy.ndarray:", "fft") == "numpy.ndarray"
    assert return_type("async def fetch(url)", "fetch") is None
    assert return_type(LAYOUT, "spring_layout") is None


def test_an_answer_without_the_declared_type_is_given_it() -> None:
    evidence = items("Allocation of a device.", f"{FREE}\n\nFreeing allocated device.")
    asks_param = "What is the type of the `dev` parameter of `ieee802154_free_device()` in the kernel docs?"
    asks_return = "What is the return type of `ieee802154_free_device()`?"
    assert signature_type(asks_param, evidence) == (2, "struct ieee802154_dev *")
    assert signature_type(asks_return, evidence) == (2, "void")
    assert as_written(asks_param, "void [2]", evidence) == "struct ieee802154_dev * [2]"  # not the return type
    assert as_written(asks_return, "It returns `void` [2]", evidence) == "It returns `void` [2]"
    assert signature_type("What does `ieee802154_free_device()` do?", evidence) is None
    assert parameter_lines(asks_param, evidence) == ["`ieee802154_free_device` [2]: struct ieee802154_dev *dev"]


def test_a_value_said_bare_is_written_as_the_signature_writes_it_and_cited_to_it() -> None:
    evidence = items("Compute the layout.", f"{LAYOUT}\n\n   Position nodes.")
    assert as_written(QUESTION, "weight [1]", evidence) == "'weight' [2]"
    assert as_written(QUESTION, "It is 'weight' [1]", evidence) == "It is 'weight' [2]"  # said, cited elsewhere
    assert as_written(QUESTION, "It is 'weight' [2]", evidence) == "It is 'weight' [2]"


def test_a_compound_question_on_one_signature_gets_every_value() -> None:
    evidence = items("Compute the layout.", f"{LAYOUT}\n\n   Position nodes.")
    both = "What is the default value of `weight` in `networkx.spring_layout`, and what is the default of `method`?"
    assert as_written(both, "'weight' [2]", evidence) == "'weight' [2]; 'auto' [2]"  # half an answer completed
    assert as_written(both, "'weight' and 'auto' [2]", evidence) == "'weight' and 'auto' [2]"
    other = "What is the default value of `weight` in `networkx.spring_layout`, and what does it weigh?"
    assert as_written(other, "'weight' [2]", evidence) == "'weight' [2]"  # a part no signature answers
