"""End to end with the REAL embedded model (Qwen2.5-Coder-0.5B from the `small_model` fixture, not a
scripted one): a question that needs the calculator reaches a correct answer through a real tool call."""

from __future__ import annotations

from lector.agent.assistant import Assistant
from lector.agent.events import Final, ToolCallFinished, ToolCallStarted
from lector.llm.backend import ChatOptions
from lector.llm.embedded import EmbeddedBackend


def test_real_model_calls_the_calculator_and_answers(small_model: EmbeddedBackend) -> None:
    bot = Assistant(small_model, tools=["calculator"], options=ChatOptions(temperature=0.0, seed=0, max_tokens=160))
    events = list(bot.stream("What is 12345 * 6789? Use the calculator."))

    started = [e for e in events if isinstance(e, ToolCallStarted)]
    assert started and started[0].name == "calculator"
    first = next(e for e in events if isinstance(e, ToolCallFinished) and e.call_id == started[0].call_id)
    assert not first.error and first.content == "83810205"

    final = events[-1]
    assert isinstance(final, Final) and final.stopped_reason in ("done", "budget")
    assert "83810205" in final.text.replace(",", "").replace(" ", "")
    assert final.usage.prompt_tokens > 0 and final.usage.completion_tokens > 0
    assert bot.messages[-1] == final.message
