"""Pointing the model at the evidence line that holds what the question names."""

from __future__ import annotations

from lector.retrieval.answer_prompt import NAMED_TAIL, answer_messages
from lector.retrieval.pointers import named_lines, question_names
from tests.retrieval.evidence_items import items

KTIME = """Like ktime_get(), but uses the International Atomic Time (TAI) reference.

.. c:function:: u64 ktime_get_ns( void )
\t\tu64 ktime_get_boottime_ns( void )

.. c:function:: time64_t ktime_get_seconds( void )
\t\ttime64_t ktime_get_boottime_seconds( void )
"""


def test_code_names_of_a_question() -> None:
    assert question_names("What is the default of `dim` in `networkx.random_layout`?") == ["random_layout"]
    assert question_names("What does ktime_get_seconds() return?") == ["ktime_get_seconds"]
    assert question_names("Who wrote Hamlet?") == []


def test_the_defining_line_is_chosen_over_a_mention() -> None:
    evidence = items("Call ktime_get_seconds() when a coarse time will do.", KTIME)
    assert named_lines("What does `ktime_get_seconds()` return?", evidence) == [
        "`ktime_get_seconds`: [2] .. c:function:: time64_t ktime_get_seconds( void )"
    ]
    assert named_lines("What does ktime_get_boottime_seconds return?", evidence) == [
        "`ktime_get_boottime_seconds`: [2] time64_t ktime_get_boottime_seconds( void )"
    ]


def test_a_dotted_signature_and_a_python_def() -> None:
    evidence = items("numpy.arange([start, ]stop, [step, ]dtype=None)", "def linspace(start, stop, num=50):")
    assert named_lines("Default of step in numpy.arange?", evidence) == [
        "`arange`: [1] numpy.arange([start, ]stop, [step, ]dtype=None)"
    ]
    assert named_lines("What is num's default in np.linspace?", evidence)[0].startswith("`linspace`: [2]")


def test_a_mention_is_used_when_nothing_defines_the_name() -> None:
    evidence = items("Like ktime_get(), but slower.")
    assert named_lines("What is ktime_get()?", evidence) == ["`ktime_get`: [1] Like ktime_get(), but slower."]
    assert named_lines("What is ktime_set()?", evidence) == []


def test_the_answer_prompt_names_the_line() -> None:
    prompt = answer_messages("What is the return type of `ktime_get_seconds()`?", items(KTIME))[-1].content
    assert f"{NAMED_TAIL} `ktime_get_seconds`: [1] .. c:function:: time64_t ktime_get_seconds( void )\n" in prompt
    assert NAMED_TAIL not in answer_messages("Who is Ophelia?", items(KTIME))[-1].content
