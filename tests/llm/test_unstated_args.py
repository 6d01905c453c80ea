"""Optional arguments the conversation never gave are left out of a call; what it gave, and required ones, stay."""

from __future__ import annotations

import json

from lector.llm.messages import Message, ToolCall, ToolSpec
from lector.llm.unstated_args import conversation_text, without_unstated

WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather.",
    parameters={
        "type": "object",
        "required": ["location"],
        "properties": {
            "location": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
            "days": {"type": "integer", "default": 1},
            "lang": {"type": "string", "default": "en"},
            "note": {"type": "string"},
            "hourly": {"type": "boolean", "default": False},
        },
    },
)


def trimmed(arguments: dict[str, object], said: str) -> dict[str, object]:
    call = ToolCall(name="get_weather", arguments=json.dumps(arguments))
    (out,) = without_unstated([call], [WEATHER], said)
    result: dict[str, object] = json.loads(out.arguments)
    return result


def test_a_value_equal_to_the_declared_default_is_left_out() -> None:
    said = "Weather in Boston in celsius for 1 day, please"
    assert trimmed({"location": "Boston", "unit": "Celsius", "days": 1}, said) == {"location": "Boston"}


def test_a_value_nobody_stated_is_left_out_where_the_tool_has_a_default_or_a_choice() -> None:
    said = "What's the weather in Boston and San Francisco?"
    args = {"location": "Boston, MA", "unit": "fahrenheit", "days": 3, "lang": "de"}
    assert trimmed(args, said) == {"location": "Boston, MA"}


def test_stated_values_stay() -> None:
    said = "Weather in Boston in Fahrenheit for the next 3 days, in German (lang de)"
    args = {"location": "Boston", "unit": "fahrenheit", "days": 3, "lang": "de"}
    assert trimmed(args, said) == args


def test_a_whole_word_is_needed() -> None:
    assert trimmed({"location": "Oslo", "days": 3}, "Weather in Oslo for 30 days") == {"location": "Oslo"}


def test_required_values_and_free_optional_ones_stay_even_unstated() -> None:
    args = {"location": "Paris, France", "note": "bring an umbrella", "hourly": True}
    assert trimmed(args, "Is it raining?") == args


def test_nothing_changes_without_a_conversation_or_tools() -> None:
    call = ToolCall(name="get_weather", arguments='{"location": "X", "unit": "celsius"}')
    assert without_unstated([call], [WEATHER], "") == [call]
    assert without_unstated([call], None, "hi") == [call]
    broken = ToolCall(name="get_weather", arguments="{not json")
    assert without_unstated([broken], [WEATHER], "hi") == [broken]


def test_the_system_prompt_does_not_count_as_stated() -> None:
    messages = [
        Message.system("Tools: unit is celsius or fahrenheit"),
        Message.user("Weather in Rome?"),
        Message(role="tool", content="22 degrees fahrenheit", tool_call_id="c1"),
    ]
    said = conversation_text(messages)
    assert "celsius" not in said and "Rome" in said and "fahrenheit" in said
