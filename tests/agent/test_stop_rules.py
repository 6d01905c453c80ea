"""The stop rules as a table: what happened in a turn so far, then one more thing, and the decision it gets.

Pure logic: no model, scripted or real, is involved.
"""

from __future__ import annotations

import pytest

from lector.agent.stop_rules import (
    ANSWER_NOTE,
    BUDGET_NOTE,
    CALL_ERROR_NOTE,
    EMPTY_BUDGET_ANSWER,
    NO_ANSWER,
    NO_ANSWER_TOKEN_LIMIT,
    NO_ANSWER_UNREADABLE_CALL,
    REPEAT_NOTE,
    STUCK_NOTE,
    AskForAnswer,
    Continue,
    Decision,
    Finish,
    Replied,
    Retry,
    StopRules,
    ToolsRan,
)
from lector.llm.messages import ToolCall
from lector.llm.scripted import call
from lector.tools.base import ToolResult

ADD = call("add", {"a": 2, "b": 3})
ADD_REORDERED = ToolCall(name="add", arguments='{"b": 3,  "a": 2}')
ADD_OTHER = call("add", {"a": 4, "b": 4})
CALC = call("calculator", {"expression": "12345*6789"})
CALC_OWN_RESULT = call("calculator", {"expression": "83810205"})
READ_RESULT = call("read", {"page": "83810205"})
BROKEN = "invalid JSON after 'add'"
UNREADABLE = NO_ANSWER_UNREADABLE_CALL.format(error=BROKEN)

Happening = Replied | ToolsRan


def asked(*calls: ToolCall, text: str = "") -> Replied:
    return Replied(text, list(calls))


def ran(the_call: ToolCall, content: str = "5") -> ToolsRan:
    return ToolsRan([the_call], [ToolResult(content=content)])


def failed(the_call: ToolCall) -> ToolsRan:
    return ToolsRan([the_call], [ToolResult.failure("Error: boom")])


def answered(the_call: ToolCall, content: str = "5") -> list[Happening]:
    return [asked(the_call), ran(the_call, content)]


def failing(the_call: ToolCall) -> list[Happening]:
    return [asked(the_call), failed(the_call)]


def garbled(text: str = "") -> Replied:
    return Replied(text, call_error=BROKEN)


RETRY = Retry(CALL_ERROR_NOTE.format(error=BROKEN))
ASK_AGAIN = AskForAnswer(ANSWER_NOTE, "done")
OUT_OF_STEPS = AskForAnswer(BUDGET_NOTE, "budget")
STUCK = AskForAnswer(STUCK_NOTE, "budget")
REPEAT = AskForAnswer(REPEAT_NOTE, "budget")
LONG = "8" * 201

CASES = [
    # (what the case shows, max_steps, what happened before, what happens now, the decision)
    ("a text answer ends the turn", 8, [], Replied("It is 5."), Finish("It is 5.")),
    ("a call is run", 8, [], asked(ADD), Continue()),
    ("after a round within budget, go on", 8, [asked(ADD)], ran(ADD), Continue()),
    ("an empty reply is never an empty answer", 8, [], Replied(""), Finish(NO_ANSWER)),
    ("blank text counts as empty", 8, [], Replied(" \n "), Finish(NO_ANSWER)),
    ("empty at the token limit", 8, [], Replied("", finish_reason="length"), Finish(NO_ANSWER_TOKEN_LIMIT)),
    ("silent after results: ask again", 8, answered(ADD), Replied(""), ASK_AGAIN),
    ("still silent when asked again", 8, [*answered(ADD), Replied("")], Replied(""), Finish(NO_ANSWER)),
    ("the answer when asked again", 8, [*answered(ADD), Replied("")], Replied("5"), Finish("5")),
    ("an unreadable call is explained", 8, [], garbled(), RETRY),
    ("and explained a second time", 8, [garbled()], garbled(), RETRY),
    ("the third ends the turn, saying why", 8, [garbled()] * 2, garbled(), Finish(UNREADABLE)),
    ("out of retries, its text stands", 8, [garbled()] * 2, garbled("Maybe 5."), Finish("Maybe 5.")),
    ("a readable call after a retry is run", 8, [garbled()], asked(ADD), Continue()),
    ("no retry once the steps are used up", 1, [], garbled(), OUT_OF_STEPS),
    ("the steps are used up", 2, [*answered(ADD_OTHER), asked(ADD)], ran(ADD), OUT_OF_STEPS),
    ("one step left", 3, [*answered(ADD_OTHER), asked(ADD)], ran(ADD), Continue()),
    ("a call failing a third time is stuck", 8, [*failing(ADD) * 2, asked(ADD)], failed(ADD), STUCK),
    ("two failures are not", 8, [*failing(ADD), asked(ADD)], failed(ADD), Continue()),
    ("different calls failing are not", 8, [*failing(ADD), *failing(ADD_OTHER), asked(CALC)], failed(CALC), Continue()),
    ("stuck comes before the budget", 3, [*failing(ADD) * 2, asked(ADD)], failed(ADD), STUCK),
    ("the budget with failures", 2, [*failing(ADD), asked(ADD)], failed(ADD), OUT_OF_STEPS),
    ("repeating an answered call, however written", 8, answered(ADD), asked(ADD_REORDERED), REPEAT),
    ("a failed call may be tried again", 8, failing(ADD), asked(ADD), Continue()),
    ("a repeat beside a new call is run", 8, answered(ADD), asked(ADD, ADD_OTHER), Continue()),
    ("feeding a tool its own result is an echo", 8, answered(CALC, "83810205"), asked(CALC_OWN_RESULT), REPEAT),
    ("passing a result on is chaining", 8, answered(CALC, "83810205"), asked(READ_RESULT), Continue()),
    ("long results are not echoes", 8, answered(CALC, LONG), asked(call("calculator", {"x": LONG})), Continue()),
    ("the answer after the budget", 1, answered(ADD), Replied("It is 5."), Finish("It is 5.", "budget")),
    ("no answer after the budget", 1, answered(ADD), Replied(""), Finish(EMPTY_BUDGET_ANSWER, "budget")),
    ("calls in the last reply are ignored", 1, answered(ADD), asked(ADD, text="5"), Finish("5", "budget")),
]


@pytest.mark.parametrize(("max_steps", "before", "now", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decision(max_steps: int, before: list[Happening], now: Happening, expected: Decision) -> None:
    rules = StopRules(max_steps)
    for happened in before:
        assert not isinstance(rules.decide(happened), Finish), f"the turn ended early, at {happened}"
    assert rules.decide(now) == expected


def test_the_step_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        StopRules(0)


def test_a_lower_failure_limit_stops_sooner() -> None:
    rules = StopRules(8, max_repeated_failures=1)
    rules.decide(asked(ADD))
    assert rules.decide(failed(ADD)) == STUCK
    assert StopRules(8, max_repeated_failures=1).decide(garbled()) == Finish(UNREADABLE)
