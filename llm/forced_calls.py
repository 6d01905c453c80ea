"""tool_choice for prompt-based function calling: grammars that only let calls through, and its enforcement.

`forced_call_schema` and `auto_call_grammar` constrain decoding; `parse_forced_calls` reads what they let
through; `apply_tool_choice` enforces tool_choice on a parsed reply (llm.call_parser).
"""

from __future__ import annotations

import json
from typing import Any

from lector.llm.call_parser import CALL_CLOSE, CALL_OPEN, MAX_CALLS, ParseResult, parse_tool_calls
from lector.llm.messages import ToolCall, ToolSpec
from lector.llm.tool_prompt import ToolChoiceArg, _offered_tools


def forced_call_schema(tools: list[ToolSpec] | None, tool_choice: ToolChoiceArg) -> dict[str, Any] | None:
    """A JSON schema that only lets calls through, for grammar-constrained decoding: one call object, or a
    list of one or more of them (parallel calls).

    A call, for 'required': `{"name": one of the tools, "arguments": that tool's parameters}`, as one anyOf
    branch per tool (no sibling keywords, which some grammar compilers ignore); for a tool's name: that
    tool only. 'auto', 'none' or no tools: None. Raises ValueError for a tool_choice that names no offered
    tool. `$defs` of the tools' schemas are hoisted to the top.
    """
    if not tools or tool_choice in ("auto", "none"):
        return None
    offered = _offered_tools(tools, tool_choice)
    if not offered:
        raise ValueError(f"tool_choice names an unknown tool: {tool_choice!r}")
    call, defs = _any_call(offered)
    schema: dict[str, Any] = {"anyOf": [call, {"type": "array", "items": call, "minItems": 1}]}
    if defs:
        schema = {**schema, "$defs": defs}
    return schema


def _any_call(offered: list[ToolSpec]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The schema of a call to any of the tools (a `{"name", "arguments"}` object, one anyOf branch per tool), and
    the tools' `$defs` hoisted out of it."""
    defs: dict[str, Any] = {}
    options = []
    for t in offered:
        params = _declared_keys_only(dict(t.parameters or {"type": "object"}))
        defs.update(params.pop("$defs", {}))
        if "properties" in params:  # a tool that declares no parameters takes none
            params.setdefault("additionalProperties", False)
        options.append(
            {
                "type": "object",
                "properties": {"name": {"type": "string", "enum": [t.name]}, "arguments": params},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
        )
    return (options[0] if len(options) == 1 else {"type": "object", "anyOf": options}), defs


_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions")


def _declared_keys_only(schema: Any) -> Any:
    """`schema` where every object that lists its properties, at any depth, forbids other keys unless it says
    otherwise: a grammar lets through any key a schema does not forbid, and under one the model made up keys
    ("url ", "genre': ", "currentJobMode ")."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key in _SUBSCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {k: _declared_keys_only(v) for k, v in out[key].items()}
    for key in _SUBSCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [_declared_keys_only(v) for v in out[key]]
    if isinstance(out.get("items"), dict):
        out["items"] = _declared_keys_only(out["items"])
    if isinstance(out.get("properties"), dict) and out["properties"]:
        out.setdefault("additionalProperties", False)
    return out


def auto_call_grammar(tools: list[ToolSpec] | None) -> str | None:
    """A grammar for a reply of calls (llguidance's Lark syntax, as llama.cpp takes it), for tool_choice 'auto'
    once the model has decided to call (llm.prompt_calling): one `<tool_call>` block holding a JSON list of one or
    more calls to the offered tools, with arguments of their declared types.

    The list is what gets several calls out of a small model: asked for `<tool_call>` blocks it writes one and
    stops, while inside a list it goes on to the next item (measured on BFCL's live_parallel_multiple). The tags
    are quoted text: Lark's special-token form (`<tool_call>` unquoted) made the embedded engine drop the whole
    grammar without an error."""
    if not tools:
        return None
    call, defs = _any_call(list(tools))
    schema: dict[str, Any] = {"type": "array", "items": call, "minItems": 1, "maxItems": MAX_CALLS}
    if defs:
        schema["$defs"] = defs
    body = json.dumps(schema, ensure_ascii=False)
    return f'%llguidance {{}}\nstart: "{CALL_OPEN}\\n" calls "\\n{CALL_CLOSE}"\ncalls: %json {body}\n'


def parse_forced_calls(text: str) -> list[ToolCall]:
    """The calls in output generated under `forced_call_schema`. Raises ValueError if there is none."""
    result = parse_tool_calls(text)
    if result.calls:
        return result.calls
    raise ValueError(result.error or f"no tool call in the forced output: {text[:200]!r}")


def apply_tool_choice(result: ParseResult, tool_choice: ToolChoiceArg) -> ParseResult:
    """Enforce tool_choice on parsed output.

    'none' drops calls and call errors (the text stays); 'required' without a call sets an
    error; a named tool keeps only calls to it (error when none remain); 'auto' changes nothing.
    """
    if tool_choice == "auto":
        return result
    if tool_choice == "none":
        return ParseResult(text=result.text)
    if tool_choice == "required":
        if result.calls or result.error:
            return result
        return result.model_copy(update={"error": "a tool call was required, but the reply has none"})
    kept = [c for c in result.calls if c.name == tool_choice]
    error = result.error
    if not kept and not error:
        dropped = ", ".join(sorted({c.name for c in result.calls}))
        error = f"a call to {tool_choice} was required, but the reply has " + (
            f"calls to {dropped} only" if dropped else "none"
        )
    return ParseResult(text=result.text, calls=kept, error=error)
