"""Prompt-based function calling, going in: for models without native tool calls.

`inject_tools` puts the tool specs and the call format into the system prompt and turns earlier
calls and results into plain text. The calls the model writes back are found by llm.call_parser.
"""

from __future__ import annotations

import json

from lector.llm.call_parser import CALL_CLOSE, CALL_OPEN
from lector.llm.messages import Message, ToolCall, ToolSpec

ToolChoiceArg = str
"""'auto', 'none', 'required', or the name of the one tool to call."""

PARALLEL_NOTE = (
    "You may make several calls in one reply: write them all in one <tool_call> block as a JSON list, one object "
    "per call. When the query asks for several things (several places, items, dates or actions), make one call for "
    'each of them. For example, for "Convert 10 USD and 20 EUR to JPY" with a currency function, the reply is:\n'
    "<tool_call>\n["
    + ", ".join(
        f'{{"name": "<the currency function>", "arguments": {{"amount": {n}, "from": "{c}", "to": "JPY"}}}}'
        for n, c in ((10, "USD"), (20, "EUR"))
    )
    + "]\n</tool_call>"
)
"""A worked example in the prompt: without one, the default Coder-1.5B answers a query about two things with one
call. The list form is what a forced call's grammar holds (`forced_calls`), and inside a list the model goes on to
the next call, where after one `<tool_call>` block it stops (seen on BFCL's live_parallel_multiple)."""
ARGUMENTS_NOTE = "Leave out an optional argument unless the user gave its value."
NO_CALL_NOTE = (
    "Call a function only when the user asks for what it does and gives the values its required arguments need. "
    "Otherwise call none: answer in plain text, or ask for what is missing."
)


def render_tools_prompt(tools: list[ToolSpec], tool_choice: ToolChoiceArg = "auto") -> str:
    """System-prompt text that describes the tools and the exact call format."""
    tools = _offered_tools(tools, tool_choice)
    if not tools:
        return ""
    lines = "\n".join(json.dumps(t.to_openai(), ensure_ascii=False) for t in tools)
    # Qwen2.5's own chat-template wording: small models call tools far more reliably with the text they
    # were trained on (measured with Qwen2.5-Coder-1.5B: a looser paraphrase made it answer in bare JSON).
    text = (
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n"
        f"<tools>\n{lines}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within "
        "<tool_call></tool_call> XML tags:\n"
        '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
        f"\n\n{PARALLEL_NOTE}\n\n{ARGUMENTS_NOTE}"
    )
    if tool_choice == "auto":
        text += f"\n\n{NO_CALL_NOTE}"
    elif tool_choice == "required":
        text += "\n\nYou must call at least one function now; do not answer directly."
    elif tool_choice not in ("auto", "none"):
        text += f"\n\nYou must call the function `{tool_choice}` now; do not answer directly."
    return text


def _offered_tools(tools: list[ToolSpec] | None, tool_choice: ToolChoiceArg) -> list[ToolSpec]:
    if not tools or tool_choice == "none":
        return []
    if tool_choice in ("auto", "required"):
        return list(tools)
    return [t for t in tools if t.name == tool_choice]


def render_call(call: ToolCall) -> str:
    """One call as the text a model writes for it."""
    body = json.dumps({"name": call.name, "arguments": call.arguments_or_text()}, ensure_ascii=False)
    return f"{CALL_OPEN}\n{body}\n{CALL_CLOSE}"


def inject_tools(
    messages: list[Message], tools: list[ToolSpec] | None, tool_choice: ToolChoiceArg = "auto"
) -> list[Message]:
    """New messages for a model without native tools.

    The tool prompt is appended to the first system message (one is created if missing);
    earlier assistant calls become `<tool_call>` text; tool results become user messages of
    `<tool_response>` blocks, consecutive results merged in the order of the calls.
    With no tools or tool_choice 'none' no tool prompt is added.
    """
    prompt = render_tools_prompt(tools or [], tool_choice)
    out: list[Message] = []
    call_order: dict[str, int] = {}
    pending: list[Message] = []
    question = ""

    def flush() -> None:
        if not pending:
            return
        ordered = sorted(
            enumerate(pending), key=lambda p: (call_order.get(p[1].tool_call_id or "", len(call_order)), p[0])
        )
        body = "\n".join(f"<tool_response>\n{m.content}\n</tool_response>" for _, m in ordered)
        out.append(Message.user(body))
        pending.clear()

    for msg in messages:
        if msg.role == "tool":
            pending.append(msg)
            continue
        flush()
        if msg.role == "user":
            question = msg.content
        if msg.role == "assistant" and msg.tool_calls:
            call_order = {c.id: i for i, c in enumerate(msg.tool_calls)}
            parts = [msg.content.strip()] if msg.content.strip() else []
            parts += [render_call(c) for c in msg.tool_calls]
            out.append(Message.assistant("\n".join(parts)))
        else:
            out.append(msg.model_copy(deep=True))
    if pending and question:
        # Small models often answer a bare tool response with small talk; restate what it is for.
        flush()
        out[-1] = Message.user(f"{out[-1].content}\n\nUse these results to answer: {question.strip()[:500]}")
    flush()
    if prompt:
        first_system = next((i for i, m in enumerate(out) if m.role == "system"), None)
        if first_system is None:
            out.insert(0, Message.system(prompt))
        else:
            old = out[first_system].content.rstrip()
            out[first_system] = Message.system(f"{old}\n\n{prompt}" if old else prompt)
    return out
