"""Prompt-based function calling for models without native tool calls (stub; being filled in)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from llm.messages import Message, ToolCall, ToolSpec

ToolChoiceArg = str


class ParseResult(BaseModel):
    """Text outside any call (call markup removed), the calls found, and a parse error if any."""

    text: str = ""
    calls: list[ToolCall] = Field(default_factory=list)
    error: str | None = None


def render_tools_prompt(tools: list[ToolSpec], tool_choice: ToolChoiceArg = "auto") -> str:
    raise NotImplementedError


def inject_tools(
    messages: list[Message], tools: list[ToolSpec] | None, tool_choice: ToolChoiceArg = "auto"
) -> list[Message]:
    raise NotImplementedError


def parse_tool_calls(text: str, tools: list[ToolSpec] | None = None) -> ParseResult:
    return ParseResult(text=text)


class StreamingToolCallParser:
    def __init__(self, tools: list[ToolSpec] | None = None) -> None:
        self.tools = tools

    def feed(self, chunk: str) -> str:
        raise NotImplementedError

    def finish(self) -> ParseResult:
        raise NotImplementedError


def forced_call_schema(tools: list[ToolSpec] | None, tool_choice: ToolChoiceArg) -> dict[str, Any] | None:
    raise NotImplementedError


def parse_forced_call(text: str) -> ToolCall:
    raise NotImplementedError


def apply_tool_choice(result: ParseResult, tool_choice: ToolChoiceArg) -> ParseResult:
    raise NotImplementedError
