"""The planner loop's logic, driven by the SCRIPTED model (llm/scripted.py), which replays canned replies.

No real model runs here; see test_e2e_embedded.py for that.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lector.agent.events import (
    CallRetried,
    ErrorEvent,
    Final,
    StepStarted,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    parse_event,
)
from lector.agent.loop import run_agent
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
)
from lector.agent.tool_round import CANCELLED_TOOL
from lector.llm.backend import Backend, ChatOptions, Delta, Usage
from lector.llm.errors import BackendUnavailableError
from lector.llm.messages import Message, ToolCall, ToolSpec
from lector.llm.scripted import ScriptedBackend, call
from lector.tools.base import Tool, ToolContext, ToolResult, tool
from lector.tools.registry import ToolRegistry

QUESTION = [Message.system("You are a test."), Message.user("What is 2 + 3?")]


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first number
        b: the second number
    """
    return a + b


@tool
def explode(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"boom: {reason}")


async def collect(agen: AsyncIterator[Any]) -> list[Any]:
    return [event async for event in agen]


def final_of(events: list[Any]) -> Final:
    assert isinstance(events[-1], Final), events[-1]
    assert sum(isinstance(e, Final) for e in events) == 1
    return events[-1]


def assert_well_formed(messages: list[Message]) -> None:
    """Every assistant tool call is answered by one tool message, in call order, right after it."""
    i = 0
    while i < len(messages):
        m = messages[i]
        if m.role == "assistant" and m.tool_calls:
            answers = messages[i + 1 : i + 1 + len(m.tool_calls)]
            assert [a.role for a in answers] == ["tool"] * len(m.tool_calls)
            assert [a.tool_call_id for a in answers] == [c.id for c in m.tool_calls]
            i += len(m.tool_calls)
        i += 1


async def test_plain_answer_streams_text_then_final() -> None:
    """SCRIPTED model: a reply without tool calls ends the turn at once."""
    model = ScriptedBackend(["Five, since two plus three is five."], chunk_size=5)
    events = await collect(run_agent(model, QUESTION, ToolRegistry([add])))
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(texts) > 1 and "".join(texts) == "Five, since two plus three is five."
    final = final_of(events)
    assert final.stopped_reason == "done" and final.steps == 1
    assert final.text == "Five, since two plus three is five."
    assert [m.role for m in final.messages] == ["assistant"]
    assert final.usage.completion_tokens > 0
    assert isinstance(events[0], StepStarted) and events[0].step == 1
    assert model.requests[0]["tools"][0].name == "add"


async def test_tool_call_result_goes_back_and_model_answers() -> None:
    """SCRIPTED model: call add, see its result as a tool message, then answer."""
    model = ScriptedBackend(
        [Message.assistant("Let me add.", [call("add", {"a": 2, "b": 3})]), "It is 5."], chunk_size=100
    )
    messages = list(QUESTION)
    events = await collect(run_agent(model, messages, ToolRegistry([add])))
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "StepStarted",
        "TextDelta",
        "ToolCallStarted",
        "ToolCallFinished",
        "StepStarted",
        "TextDelta",
        "Final",
    ]
    started = next(e for e in events if isinstance(e, ToolCallStarted))
    finished = next(e for e in events if isinstance(e, ToolCallFinished))
    assert started.name == "add" and '"a": 2' in started.arguments
    assert finished.call_id == started.call_id and finished.content == "5" and not finished.error
    second_prompt = model.requests[1]["messages"]
    assert second_prompt[-1].role == "tool" and second_prompt[-1].content == "5"
    assert second_prompt[-1].tool_call_id == started.call_id
    final = final_of(events)
    assert final.text == "It is 5." and final.steps == 2 and final.stopped_reason == "done"
    assert [m.role for m in final.messages] == ["assistant", "tool", "assistant"]
    assert_well_formed(final.messages)
    assert messages == QUESTION, "the caller's list is not modified"


async def test_parallel_calls_run_concurrently_and_results_keep_call_order() -> None:
    """SCRIPTED model: two calls in one reply. Each tool waits until the other has entered, which can only
    finish if both run at the same time; the first call also finishes last, yet its result comes first."""
    entered = {"slow": asyncio.Event(), "fast": asyncio.Event()}
    slow_may_leave = asyncio.Event()
    log: list[str] = []

    @tool
    async def slow(x: int) -> str:
        """Waits for fast."""
        entered["slow"].set()
        log.append("slow in")
        await asyncio.wait_for(entered["fast"].wait(), 5)
        await asyncio.wait_for(slow_may_leave.wait(), 5)
        log.append("slow out")
        return f"slow {x}"

    @tool
    async def fast(x: int) -> str:
        """Waits for slow to have started."""
        entered["fast"].set()
        log.append("fast in")
        await asyncio.wait_for(entered["slow"].wait(), 5)
        log.append("fast out")
        slow_may_leave.set()
        return f"fast {x}"

    model = ScriptedBackend([Message.assistant("", [call("slow", {"x": 1}), call("fast", {"x": 2})]), "done"])
    events = await collect(run_agent(model, QUESTION, ToolRegistry([slow, fast])))
    assert log.index("slow in") < log.index("fast out") and log.index("fast in") < log.index("slow out")
    finished = [e.name for e in events if isinstance(e, ToolCallFinished)]
    assert finished == ["fast", "slow"], "finish events come as they happen"
    started = [e.name for e in events if isinstance(e, ToolCallStarted)]
    assert started == ["slow", "fast"]
    tool_messages = [m for m in model.requests[1]["messages"] if m.role == "tool"]
    assert [m.content for m in tool_messages] == ["slow 1", "fast 2"], "results go back in call order"
    assert_well_formed(final_of(events).messages)


async def test_tool_exception_goes_back_to_model_and_loop_continues() -> None:
    """SCRIPTED model: a tool raising becomes a short error result; the model then answers."""
    model = ScriptedBackend([Message.assistant("", [call("explode", {"reason": "x"})]), "Sorry, it failed."])
    events = await collect(run_agent(model, QUESTION, ToolRegistry([explode])))
    finished = next(e for e in events if isinstance(e, ToolCallFinished))
    assert finished.error and "boom: x" in finished.content and "Traceback" not in finished.content
    assert model.requests[1]["messages"][-1].content == finished.content
    assert final_of(events).text == "Sorry, it failed."


@pytest.mark.parametrize(
    ("the_call", "expected"),
    [
        (call("add", {"a": "two", "b": 3}), "invalid arguments for add"),
        (call("add", {"a": 2}), "invalid arguments for add"),
        (call("add", {"a": 1, "b": 2, "c": 3}), "invalid arguments for add"),
        (ToolCall(name="add", arguments='{"a": 2, "b": '), "not valid JSON"),
        (ToolCall(name="add", arguments="[1, 2]"), "must be a JSON object"),
        (call("multiply", {"a": 2, "b": 3}), "unknown tool 'multiply'. Available tools: add"),
        (ToolCall(name="", arguments="{}"), "unknown tool ''"),
    ],
)
async def test_bad_calls_become_error_results(the_call: ToolCall, expected: str) -> None:
    """SCRIPTED model: invalid arguments, malformed JSON and unknown tools come back as errors; the loop
    goes on."""
    model = ScriptedBackend([Message.assistant("", [the_call]), "I could not compute it."])
    events = await collect(run_agent(model, QUESTION, ToolRegistry([add])))
    finished = next(e for e in events if isinstance(e, ToolCallFinished))
    assert finished.error and expected in finished.content
    final = final_of(events)
    assert final.stopped_reason == "done" and final.text == "I could not compute it."
    assert_well_formed(final.messages)


async def test_budget_runs_out_then_one_final_call_without_tools() -> None:
    """SCRIPTED model that always calls a tool while it has tools; the budget forces a tool-free answer."""

    def reply(messages: list[Message], tools: list[ToolSpec] | None, options: ChatOptions) -> Message:
        if tools:
            return Message.assistant("", [call("add", {"a": len(messages), "b": 1})])
        return Message.assistant("Best answer from what I have: 5.")

    model = ScriptedBackend(default=reply)
    events = await collect(run_agent(model, QUESTION, ToolRegistry([add]), max_steps=3))
    final = final_of(events)
    assert final.stopped_reason == "budget" and final.steps == 4
    assert final.text == "Best answer from what I have: 5."
    assert len(model.requests) == 4
    last = model.requests[-1]
    assert last["tools"] is None and last["options"].tool_choice == "none"
    assert last["messages"][-1] == Message.user(BUDGET_NOTE)
    assert all(r["tools"] for r in model.requests[:3])
    steps = [e for e in events if isinstance(e, StepStarted)]
    assert [(s.step, s.final) for s in steps] == [(1, False), (2, False), (3, False), (4, True)]
    assert BUDGET_NOTE not in [m.content for m in final.messages], "the note is not kept in the transcript"
    assert_well_formed(final.messages)


async def test_budget_answer_is_never_silent() -> None:
    """SCRIPTED model that keeps calling tools even when told not to: its calls are ignored, a text stands."""
    model = ScriptedBackend(default=Message.assistant("", [call("add", {"a": 1, "b": 1})]))
    events = await collect(run_agent(model, QUESTION, ToolRegistry([add]), max_steps=1))
    final = final_of(events)
    assert final.stopped_reason == "budget" and final.text == EMPTY_BUDGET_ANSWER
    assert not final.message.tool_calls


async def test_repeated_identical_failures_stop_tool_use() -> None:
    """SCRIPTED model that repeats the same failing call: after 3 failures the loop stops offering tools."""

    def reply(messages: list[Message], tools: list[ToolSpec] | None, options: ChatOptions) -> Message:
        if tools:
            return Message.assistant("", [call("explode", {"reason": "same"})])
        return Message.assistant("The tool keeps failing.")

    model = ScriptedBackend(default=reply)
    events = await collect(run_agent(model, QUESTION, ToolRegistry([explode]), max_steps=8))
    final = final_of(events)
    assert final.stopped_reason == "budget" and final.steps == 4
    assert model.requests[-1]["messages"][-1].content == STUCK_NOTE
    assert final.text == "The tool keeps failing."


async def test_a_reply_that_only_repeats_answered_calls_ends_tool_use() -> None:
    """SCRIPTED model that loops like a small real one: it calls add(2, 3) again after seeing the result.
    The repeat is not run; the model is asked to answer from the results it has."""

    def reply(messages: list[Message], tools: list[ToolSpec] | None, options: ChatOptions) -> Message:
        if tools:
            return Message.assistant("", [call("add", {"b": 3, "a": 2})])
        return Message.assistant("2 + 3 = 5")

    model = ScriptedBackend(default=reply)
    events = await collect(run_agent(model, QUESTION, ToolRegistry([add])))
    final = final_of(events)
    assert final.text == "2 + 3 = 5" and final.stopped_reason == "budget" and final.steps == 3
    assert sum(isinstance(e, ToolCallStarted) for e in events) == 1
    assert model.requests[-1]["messages"][-1].content == REPEAT_NOTE
    assert [m.role for m in final.messages] == ["assistant", "tool", "assistant"]


async def test_text_beside_a_repeated_call_stays_in_the_transcript() -> None:
    """SCRIPTED model: what it wrote beside a repeated call was streamed to the person, so the record keeps it,
    before the answer it gives when told to stop."""
    again = Message.assistant("Checking again.", [call("add", {"a": 2, "b": 3})])
    model = ScriptedBackend([Message.assistant("", [call("add", {"a": 2, "b": 3})]), again, "It is 5."])
    events = await collect(run_agent(model, QUESTION, ToolRegistry([add])))
    final = final_of(events)
    assert [m.content for m in final.messages[2:]] == ["Checking again.", "It is 5."]
    assert model.requests[-1]["messages"][-2:] == [Message.assistant("Checking again."), Message.user(REPEAT_NOTE)]


async def test_feeding_a_tool_its_own_result_counts_as_a_repeat() -> None:
    """SCRIPTED model doing what the real 0.5B does: calculator("12345*6789") returns 83810205, then it
    calls calculator("83810205"). That call is not run; the model is asked for the answer."""

    @tool
    def calculator(expression: str) -> str:
        """Evaluates."""
        return {"12345*6789": "83810205"}.get(expression, expression)

    model = ScriptedBackend(
        [
            Message.assistant("", [call("calculator", {"expression": "12345*6789"})]),
            Message.assistant("", [call("calculator", {"expression": "83810205"})]),
            "83810205",
        ]
    )
    events = await collect(run_agent(model, QUESTION, ToolRegistry([calculator])))
    assert sum(isinstance(e, ToolCallStarted) for e in events) == 1
    assert model.requests[-1]["messages"][-1].content == REPEAT_NOTE
    assert final_of(events).text == "83810205"


async def test_passing_a_result_to_another_tool_is_not_a_repeat() -> None:
    """SCRIPTED model: a result handed to a different tool is ordinary chaining."""

    @tool
    def find(topic: str) -> str:
        """Finds a page."""
        return "page-1"

    @tool
    def read(page: str) -> str:
        """Reads a page."""
        return f"text of {page}"

    model = ScriptedBackend(
        [
            Message.assistant("", [call("find", {"topic": "x"})]),
            Message.assistant("", [call("read", {"page": "page-1"})]),
            "done",
        ]
    )
    events = await collect(run_agent(model, QUESTION, ToolRegistry([find, read])))
    assert [e.name for e in events if isinstance(e, ToolCallFinished)] == ["find", "read"]
    assert final_of(events).stopped_reason == "done"


async def test_an_empty_reply_after_tool_use_asks_once_more_for_the_answer() -> None:
    """SCRIPTED model that says nothing after seeing the tool result; the loop asks for the answer."""
    model = ScriptedBackend([Message.assistant("", [call("add", {"a": 2, "b": 3})]), "  ", "It is 5."])
    events = await collect(run_agent(model, QUESTION, ToolRegistry([add])))
    final = final_of(events)
    assert final.text == "It is 5." and final.stopped_reason == "done" and final.steps == 3
    assert model.requests[-1]["messages"][-1].content == ANSWER_NOTE
    assert model.requests[-1]["tools"] is None


async def test_an_empty_reply_is_never_an_empty_answer() -> None:
    """SCRIPTED model that answers with nothing at all: the person is told so in a plain sentence."""
    model = ScriptedBackend(["  "])
    events = await collect(run_agent(model, QUESTION, ToolRegistry([add])))
    final = final_of(events)
    assert final.text == NO_ANSWER and final.stopped_reason == "done" and final.steps == 1
    assert [m.content for m in final.messages] == [NO_ANSWER]


class CutShort(ScriptedBackend):
    """SCRIPTED model whose every reply ends at its output token limit."""

    async def astream(
        self, messages: list[Message], tools: list[ToolSpec] | None = None, options: ChatOptions | None = None
    ) -> AsyncIterator[Delta]:
        async for delta in super().astream(messages, tools, options):
            yield delta.model_copy(update={"finish_reason": "length"}) if delta.finish_reason else delta


async def test_an_empty_reply_cut_at_the_token_limit_says_so() -> None:
    """SCRIPTED model that spends its tokens without visible text (as a model that only thinks does)."""
    events = await collect(run_agent(CutShort([""]), QUESTION, ToolRegistry([add])))
    assert final_of(events).text == NO_ANSWER_TOKEN_LIMIT


class GarbledCalls(ScriptedBackend):
    """SCRIPTED model whose first `garbled` replies are tool calls its parser could not read."""

    def __init__(self, replies: list[Any], garbled: int) -> None:
        super().__init__(replies)
        self.garbled = garbled

    async def astream(
        self, messages: list[Message], tools: list[ToolSpec] | None = None, options: ChatOptions | None = None
    ) -> AsyncIterator[Delta]:
        async for delta in super().astream(messages, tools, options):
            if delta.finish_reason and self.garbled:
                self.garbled -= 1
                delta = delta.model_copy(update={"tool_call_error": "invalid JSON after 'add'"})
            yield delta


async def test_an_unreadable_tool_call_is_explained_to_the_model_which_retries() -> None:
    """SCRIPTED model: its first call could not be parsed; it hears why (once, not kept), then calls right."""
    model = GarbledCalls([" ", Message.assistant("", [call("add", {"a": 2, "b": 3})]), "5"], garbled=1)
    events = await collect(run_agent(model, QUESTION, ToolRegistry([add])))
    final = final_of(events)
    assert final.text == "5" and final.stopped_reason == "done" and final.steps == 3
    note = CALL_ERROR_NOTE.format(error="invalid JSON after 'add'")
    assert model.requests[1]["messages"][-1] == Message.user(note)
    assert note not in [m.content for m in model.requests[2]["messages"]]
    assert [m.role for m in final.messages] == ["assistant", "tool", "assistant"]
    retried = [e for e in events if isinstance(e, CallRetried)]
    assert [(e.step, e.error) for e in retried] == [(1, "invalid JSON after 'add'")]  # the person is told too


async def test_unreadable_calls_do_not_loop_forever() -> None:
    """SCRIPTED model that never writes a readable call: after a couple of tries the turn ends."""
    model = GarbledCalls(["", "", "", "", ""], garbled=5)
    events = await collect(run_agent(model, QUESTION, ToolRegistry([add])))
    final = final_of(events)
    assert final.steps == 3 and final.stopped_reason == "done"
    assert final.text == NO_ANSWER_UNREADABLE_CALL.format(error="invalid JSON after 'add'")


async def test_forced_tool_choice_applies_to_first_step_only() -> None:
    """SCRIPTED model: tool_choice="required" is sent once, then "auto", so the model can answer."""
    model = ScriptedBackend([Message.assistant("", [call("add", {"a": 1, "b": 1})]), "2"])
    options = ChatOptions(tool_choice="required", temperature=0.0)
    events = await collect(run_agent(model, QUESTION, ToolRegistry([add]), options=options))
    assert [r["options"].tool_choice for r in model.requests] == ["required", "auto"]
    assert model.requests[1]["options"].temperature == 0.0
    assert final_of(events).text == "2"


async def test_repeated_call_ids_are_made_unique() -> None:
    """SCRIPTED model that gives two calls the same id: the results still pair up one to one."""
    twins = [
        ToolCall(id="same", name="add", arguments='{"a": 1, "b": 1}'),
        ToolCall(id="same", name="add", arguments='{"a": 2, "b": 2}'),
    ]
    model = ScriptedBackend([Message.assistant("", twins), "ok"])
    events = await collect(run_agent(model, QUESTION, ToolRegistry([add])))
    ids = [e.call_id for e in events if isinstance(e, ToolCallStarted)]
    assert len(set(ids)) == 2
    assert_well_formed(final_of(events).messages)


async def test_long_tool_output_is_shortened_for_the_model_only() -> None:
    """SCRIPTED model: a huge result is cut in the tool message; the event keeps it whole for the UI."""

    @tool
    def flood() -> str:
        """A lot of text."""
        return "x" * 50_000

    model = ScriptedBackend([Message.assistant("", [call("flood")]), "ok"])
    events = await collect(run_agent(model, QUESTION, ToolRegistry([flood]), max_tool_chars=2000))
    finished = next(e for e in events if isinstance(e, ToolCallFinished))
    assert len(finished.content) == 50_000
    shown = model.requests[1]["messages"][-1].content
    assert len(shown) < 2100 and "48000 more characters cut" in shown


async def test_result_source_and_images_are_noted_for_the_model() -> None:
    """SCRIPTED model: a result's source and images are mentioned in the tool message, images go to the UI."""

    class Plot(Tool):
        name = "plot"
        description = "Draws."

        async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
            return ToolResult(content="drawn", images=["data:image/png;base64,AAAA"], source="sandbox")

    model = ScriptedBackend([Message.assistant("", [call("plot")]), "ok"])
    events = await collect(run_agent(model, QUESTION, ToolRegistry([Plot()])))
    finished = next(e for e in events if isinstance(e, ToolCallFinished))
    assert finished.images == ["data:image/png;base64,AAAA"] and finished.source == "sandbox"
    shown = model.requests[1]["messages"][-1].content
    assert shown.startswith("Source: sandbox\ndrawn") and "1 image(s)" in shown and "base64" not in shown


async def test_hanging_tool_is_bounded_by_its_timeout() -> None:
    """SCRIPTED model: a tool that never returns is stopped by its own timeout; the loop answers."""
    stopped = asyncio.Event()

    @tool(timeout=0.2)
    async def hang() -> str:
        """Never returns."""
        try:
            await asyncio.sleep(3600)
        finally:
            stopped.set()
        return "never"

    model = ScriptedBackend([Message.assistant("", [call("hang")]), "It timed out."])
    events = await asyncio.wait_for(collect(run_agent(model, QUESTION, ToolRegistry([hang]))), 30)
    finished = next(e for e in events if isinstance(e, ToolCallFinished))
    assert finished.error and "did not finish within 0.2 s" in finished.content
    assert finished.elapsed >= 0.2
    assert stopped.is_set()
    assert final_of(events).text == "It timed out."


async def test_tool_timeout_override_bounds_a_tool_that_ignores_cancellation() -> None:
    """SCRIPTED model: a blocking sync tool cannot be interrupted; the loop's cap still ends the wait."""

    @tool
    def block() -> str:
        """Blocks its thread."""
        time.sleep(1.0)
        return "late"

    model = ScriptedBackend([Message.assistant("", [call("block")]), "gave up"])
    events = await asyncio.wait_for(collect(run_agent(model, QUESTION, ToolRegistry([block]), tool_timeout=0.1)), 30)
    finished = next(e for e in events if isinstance(e, ToolCallFinished))
    assert finished.error and "took longer than 0.1 s; it was not stopped" in finished.content  # it runs on
    assert 0.1 <= finished.elapsed < 1.0, "the loop stopped waiting before the tool returned"
    assert final_of(events).text == "gave up"


async def test_cancel_event_mid_stream_stops_and_keeps_partial_text() -> None:
    """SCRIPTED model streaming slowly: setting the cancel event stops it; Final says cancelled."""
    long_text = "word " * 400
    model = ScriptedBackend([long_text], chunk_size=5, delay=0.01)
    cancel = asyncio.Event()
    events = []
    async for event in run_agent(model, QUESTION, ToolRegistry([add]), cancel=cancel):
        events.append(event)
        if sum(isinstance(e, TextDelta) for e in events) == 3:
            cancel.set()
    final = final_of(events)
    assert final.stopped_reason == "cancelled"
    assert final.text == "word " * 3
    assert sum(isinstance(e, TextDelta) for e in events) == 3


async def test_cancel_event_mid_tool_stops_running_tools() -> None:
    """SCRIPTED model: cancel while a tool waits forever; the tool is stopped and reported; no more steps."""
    tool_cancelled = asyncio.Event()

    @tool
    async def wait_forever() -> str:
        """Waits."""
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            tool_cancelled.set()
            raise
        return "never"

    model = ScriptedBackend([Message.assistant("", [call("wait_forever"), call("add", {"a": 1, "b": 2})])])
    cancel = asyncio.Event()
    events = []
    async for event in run_agent(model, QUESTION, ToolRegistry([wait_forever, add]), cancel=cancel):
        events.append(event)
        if isinstance(event, ToolCallFinished) and event.name == "add":
            cancel.set()
    assert tool_cancelled.is_set()
    finished = {e.name: e for e in events if isinstance(e, ToolCallFinished)}
    assert finished["add"].content == "3"
    assert finished["wait_forever"].error and finished["wait_forever"].content == CANCELLED_TOOL
    final = final_of(events)
    assert final.stopped_reason == "cancelled" and len(model.requests) == 1
    assert_well_formed(final.messages)


async def test_cancelling_the_consuming_task_mid_tool_unwinds_and_keeps_a_valid_transcript() -> None:
    """SCRIPTED model: cancelling the task that iterates the loop cancels the running tool, and the
    transcript still answers every call."""
    tool_started = asyncio.Event()
    tool_cancelled = asyncio.Event()

    @tool
    async def wait_forever() -> str:
        """Waits."""
        tool_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            tool_cancelled.set()
            raise
        return "never"

    model = ScriptedBackend([Message.assistant("Checking.", [call("wait_forever")])])
    transcript: list[Message] = []

    async def consume() -> None:
        async for _ in run_agent(model, QUESTION, ToolRegistry([wait_forever]), transcript=transcript):
            pass

    task = asyncio.create_task(consume())
    await asyncio.wait_for(tool_started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert tool_cancelled.is_set()
    assert [m.role for m in transcript] == ["assistant", "tool"]
    assert transcript[1].content == CANCELLED_TOOL
    assert_well_formed(transcript)


class RecordingStream(Backend):
    """A hand-written test backend: streams forever and records whether its stream was closed."""

    name = "recording"

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    def count_tokens(self, text: str) -> int:
        return len(text)

    async def astream(
        self, messages: list[Message], tools: list[ToolSpec] | None = None, options: ChatOptions | None = None
    ) -> AsyncIterator[Delta]:
        try:
            while True:
                await asyncio.sleep(0.001)
                yield Delta(text="la ")
        finally:
            self.closed.set()


async def test_cancelling_the_consuming_task_mid_stream_closes_the_model_stream() -> None:
    """Hand-written endless model: cancelling the consumer closes the model's stream; partial text is kept."""
    model = RecordingStream()
    transcript: list[Message] = []
    seen = asyncio.Event()

    async def consume() -> None:
        async for event in run_agent(model, QUESTION, ToolRegistry(), transcript=transcript):
            if isinstance(event, TextDelta):
                seen.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(seen.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert model.closed.is_set()
    assert len(transcript) == 1 and transcript[0].content.startswith("la ")


async def test_closing_the_generator_closes_the_model_stream() -> None:
    """Hand-written endless model: closing the loop's generator early closes the model's stream."""
    model = RecordingStream()
    agen = run_agent(model, QUESTION, ToolRegistry())
    async for event in agen:
        if isinstance(event, TextDelta):
            break
    await agen.aclose()
    assert model.closed.is_set()


class FailingBackend(Backend):
    """A hand-written test backend whose server is down (optionally after some text or some calls)."""

    name = "failing"

    def __init__(self, text_before: str = "", ok_replies: list[Message] | None = None) -> None:
        self.text_before = text_before
        self.scripted = ScriptedBackend(list[Any](ok_replies or []))

    def count_tokens(self, text: str) -> int:
        return len(text)

    async def astream(
        self, messages: list[Message], tools: list[ToolSpec] | None = None, options: ChatOptions | None = None
    ) -> AsyncIterator[Delta]:
        if self.scripted.replies:
            async for delta in self.scripted.astream(messages, tools, options):
                yield delta
            return
        if self.text_before:
            yield Delta(text=self.text_before)
        raise BackendUnavailableError("no model server at http://127.0.0.1:9 (connection refused)")


@pytest.mark.parametrize("text_before", ["", "Partial "])
async def test_backend_down_gives_a_clear_error_and_a_final(text_before: str) -> None:
    """Hand-written failing model: the loop reports the error and ends the turn; it does not raise."""
    events = await collect(run_agent(FailingBackend(text_before), QUESTION, ToolRegistry([add])))
    error = next(e for e in events if isinstance(e, ErrorEvent))
    assert error.kind == "BackendUnavailableError" and "connection refused" in error.message
    final = final_of(events)
    assert final.stopped_reason == "error" and final.text == text_before


async def test_backend_down_after_a_tool_round_keeps_that_round() -> None:
    """Hand-written model that answers once with a call, then its server goes away."""
    model = FailingBackend(ok_replies=[Message.assistant("", [call("add", {"a": 1, "b": 1})])])
    events = await collect(run_agent(model, QUESTION, ToolRegistry([add])))
    final = final_of(events)
    assert final.stopped_reason == "error" and final.steps == 2
    assert [m.role for m in final.messages] == ["assistant", "tool", "assistant"]
    assert any(isinstance(e, ErrorEvent) for e in events)


async def test_scripted_model_running_out_is_an_error_not_a_crash() -> None:
    """SCRIPTED model with no replies left: any exception from a backend ends the turn cleanly."""
    events = await collect(run_agent(ScriptedBackend([]), QUESTION, ToolRegistry()))
    assert final_of(events).stopped_reason == "error"
    assert "ran out of replies" in next(e for e in events if isinstance(e, ErrorEvent)).message


class FixedUsage(ScriptedBackend):
    """SCRIPTED model whose every call reports 100 prompt and 7 completion tokens."""

    async def astream(
        self, messages: list[Message], tools: list[ToolSpec] | None = None, options: ChatOptions | None = None
    ) -> AsyncIterator[Delta]:
        async for delta in super().astream(messages, tools, options):
            if delta.usage is not None:
                delta = delta.model_copy(update={"usage": Usage(prompt_tokens=100, completion_tokens=7)})
            yield delta


async def test_usage_is_summed_over_all_model_calls() -> None:
    """SCRIPTED model: three calls of 100 + 7 tokens each."""
    replies: list[Any] = [
        Message.assistant("", [call("add", {"a": 1, "b": 1})]),
        Message.assistant("", [call("add", {"a": 2, "b": 2})]),
        "4",
    ]
    events = await collect(run_agent(FixedUsage(replies), QUESTION, ToolRegistry([add])))
    final = final_of(events)
    assert final.usage == Usage(prompt_tokens=300, completion_tokens=21) and final.steps == 3


async def test_tools_see_the_context() -> None:
    """SCRIPTED model: a tool that takes ctx receives the one passed to the loop."""

    @tool
    def whoami(ctx: ToolContext) -> str:
        """The conversation id."""
        return ctx.conversation_id

    model = ScriptedBackend([Message.assistant("", [call("whoami")]), "ok"])
    ctx = ToolContext(conversation_id="conv-42")
    events = await collect(run_agent(model, QUESTION, ToolRegistry([whoami]), ctx=ctx))
    assert next(e for e in events if isinstance(e, ToolCallFinished)).content == "conv-42"


async def test_events_round_trip_through_json() -> None:
    """SCRIPTED model: every event serialises to JSON with a type tag and parses back equal."""
    model = ScriptedBackend([Message.assistant("hm", [call("add", {"a": 2, "b": 3})]), "5"])
    events = await collect(run_agent(model, QUESTION, ToolRegistry([add])))
    for event in events:
        data = event.model_dump_json()
        assert '"type":' in data
        assert parse_event(data) == event
    assert parse_event({"type": "error", "message": "x"}) == ErrorEvent(message="x")


async def test_max_steps_must_be_positive() -> None:
    """SCRIPTED model: a zero budget is a caller error."""
    with pytest.raises(ValueError):
        await collect(run_agent(ScriptedBackend(["x"]), QUESTION, ToolRegistry(), max_steps=0))
