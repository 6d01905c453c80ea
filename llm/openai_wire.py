"""The OpenAI chat-completions wire format, both ways: the one place its JSON shapes are written.

Clients (the HTTP backend, the embedded engine, whose server speaks the same chunks) build request
bodies and read streamed chunks and tool-call fragments; servers (the model server, Lector's own /v1)
read request fields and write chunks, whole completions and Server-Sent Events.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from lector.llm.backend import ChatOptions, Usage
from lector.llm.call_gate import TokenProb
from lector.llm.messages import Message, ToolCall, ToolSpec, new_call_id, to_openai
from lector.llm.unicode import valid_json

SSE_DONE = "data: [DONE]\n\n"
FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter")
_SAMPLING_FIELDS = ("temperature", "top_p", "max_tokens", "stop", "seed")


class WireFormatError(ValueError):
    """A request field that does not have the OpenAI shape; `param` names the field."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


# ---------------------------------------------------------------- requests


def tool_choice_json(tool_choice: str) -> str | dict[str, Any]:
    """'auto', 'none', 'required', or a tool's name, as the `tool_choice` field."""
    if tool_choice in ("auto", "none", "required"):
        return tool_choice
    return {"type": "function", "function": {"name": tool_choice}}


def tool_choice_from_json(raw: str | dict[str, Any] | None) -> str:
    """The `tool_choice` field as 'auto', 'none', 'required' or a tool's name."""
    if raw is None:
        return "auto"
    if isinstance(raw, str):
        if raw not in ("auto", "none", "required"):
            message = f"tool_choice {raw!r} must be 'auto', 'none', 'required' or a function"
            raise WireFormatError(message, "tool_choice")
        return raw
    name = (raw.get("function") or {}).get("name") if isinstance(raw, dict) else None
    if not isinstance(name, str) or not name:
        shape = "{'type': 'function', 'function': {'name': ...}}"
        raise WireFormatError(f"tool_choice must name a function: {shape}", "tool_choice")
    return name


def response_format_json(schema: dict[str, Any], name: str = "response") -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


def schema_from_response_format(fmt: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON schema a `response_format` field asks for, or None for plain text."""
    fmt = fmt or {}
    if fmt.get("type") == "json_object":
        return {"type": "object"}
    if fmt.get("type") != "json_schema":
        return None
    schema = (fmt.get("json_schema") or {}).get("schema")
    if not isinstance(schema, dict):
        raise WireFormatError("response_format.json_schema.schema must be a JSON schema", "response_format")
    return schema


def tools_from_json(raw: list[dict[str, Any]] | None) -> list[ToolSpec] | None:
    """The `tools` field as tool specs (None when there are none)."""
    if not raw:
        return None
    specs = []
    for i, item in enumerate(raw):
        fn = item.get("function") if isinstance(item, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            shape = "{'type': 'function', 'function': {'name': ...}}"
            raise WireFormatError(f"tools[{i}] must be {shape}", "tools")
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(params, dict):
            raise WireFormatError(f"tools[{i}].function.parameters must be a JSON schema object", "tools")
        specs.append(ToolSpec(name=fn["name"], description=str(fn.get("description") or ""), parameters=params))
    return specs


def request_body(
    messages: list[Message],
    options: ChatOptions,
    *,
    model: str | None = None,
    tools: list[ToolSpec] | None = None,
    schema: dict[str, Any] | None = None,
    schema_name: str = "response",
) -> dict[str, Any]:
    """A streamed chat-completions request; `schema` becomes `response_format`, `tools` go with tool_choice."""
    body: dict[str, Any] = {} if model is None else {"model": model}
    body.update(messages=to_openai(messages), stream=True, stream_options={"include_usage": True})
    for key in _SAMPLING_FIELDS:
        value = getattr(options, key)
        if value is not None:
            body[key] = value
    if schema is not None:
        body["response_format"] = response_format_json(schema, schema_name)
    if tools:
        body["tools"] = [t.to_openai() for t in tools]
        body["tool_choice"] = tool_choice_json(options.tool_choice)
    return body


# ---------------------------------------------------------------- streamed chunks, read


@dataclass
class ChunkContent:
    """What one streamed chunk carries: new text, tool-call fragments, a finish reason, usage."""

    text: str = ""
    fragments: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None
    top_tokens: list[TokenProb] | None = None
    """The top candidates of the chunk's first token, where the request asked for `top_logprobs`."""


def read_chunk(chunk: dict[str, Any]) -> ChunkContent:
    content = ChunkContent(usage=usage_from_json(chunk["usage"]) if chunk.get("usage") else None)
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        content.text += delta.get("content") or ""
        content.fragments.extend(delta.get("tool_calls") or [])
        content.finish_reason = choice.get("finish_reason") or content.finish_reason
        content.top_tokens = content.top_tokens or top_tokens(choice.get("logprobs"))
    return content


def top_tokens(logprobs: dict[str, Any] | None) -> list[TokenProb] | None:
    """A choice's `logprobs` field as the top candidates of its first token (None when it has none)."""
    items = (logprobs or {}).get("content") or []
    if not items:
        return None
    return [TokenProb(str(t["token"]), float(t["logprob"])) for t in items[0].get("top_logprobs") or []]


def usage_from_json(data: dict[str, Any]) -> Usage:
    return Usage(
        prompt_tokens=int(data.get("prompt_tokens") or 0), completion_tokens=int(data.get("completion_tokens") or 0)
    )


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ToolCallFragments:
    """Streamed tool-call fragments gathered by their index into complete calls."""

    def __init__(self) -> None:
        self._calls: dict[int, _PartialCall] = {}

    def add(self, fragment: dict[str, Any]) -> None:
        acc = self._calls.setdefault(self._index(fragment), _PartialCall())
        if fragment.get("id"):
            acc.id = fragment["id"]
        fn = fragment.get("function") or {}
        if fn.get("name"):
            acc.name = fn["name"]
        args = fn.get("arguments")
        if args:
            acc.arguments.append(args if isinstance(args, str) else json.dumps(args, ensure_ascii=False))

    def _index(self, fragment: dict[str, Any]) -> int:
        index = fragment.get("index")
        if index is not None:
            return int(index)
        # servers that send whole calls without an index
        call_id = fragment.get("id")
        known = {acc.id: i for i, acc in self._calls.items() if acc.id}
        if call_id and call_id in known:
            return known[call_id]
        if call_id or not self._calls:
            return len(self._calls)
        return max(self._calls)

    def calls(self) -> list[ToolCall]:
        return [
            ToolCall(id=acc.id or new_call_id(), name=acc.name, arguments="".join(acc.arguments) or "{}")
            for _, acc in sorted(self._calls.items())
        ]


async def sse_payloads(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The data of each Server-Sent Event, up to `[DONE]`; comments and other fields are skipped."""
    data: list[str] = []
    async for line in lines:
        if line.startswith("data:"):
            data.append(line[5:].lstrip())
            continue
        if line.strip() or not data:
            continue  # comments (": ping"), event:/id: fields, keep-alive blank lines
        payload, data = "\n".join(data), []
        if payload.strip() == "[DONE]":
            return
        yield payload
    if data and "\n".join(data).strip() != "[DONE]":
        yield "\n".join(data)


# ---------------------------------------------------------------- responses, written


def sse(data: dict[str, Any]) -> str:
    """One Server-Sent Event of JSON, valid Unicode whatever the model wrote (lone surrogates replaced)."""
    return f"data: {json.dumps(valid_json(data), ensure_ascii=False)}\n\n"


def usage_json(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def tool_call_json(call: ToolCall, index: int | None = None) -> dict[str, Any]:
    out = call.to_openai()
    if index is not None:
        out["index"] = index
    return out


@dataclass(frozen=True)
class CompletionId:
    """What every chunk of one completion repeats."""

    id: str
    created: int
    model: str

    def _head(self, kind: str) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> str:
        """One `chat.completion.chunk` event."""
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return sse({**self._head("chat.completion.chunk"), "choices": [choice]})

    def usage_chunk(self, usage: Usage) -> str:
        return sse({**self._head("chat.completion.chunk"), "choices": [], "usage": usage_json(usage)})

    def whole(self, text: str, calls: list[ToolCall], finish: str, usage: Usage) -> dict[str, Any]:
        """A complete (not streamed) `chat.completion`."""
        message: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
        if calls:
            message["tool_calls"] = [tool_call_json(c) for c in calls]
        choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
        return {**self._head("chat.completion"), "choices": [choice], "usage": usage_json(usage)}
