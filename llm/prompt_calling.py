"""Prompt-based tool calling, once for every backend: each backend only supplies its transport.

`prepare` turns a request into what to send: the tool specs and any tool history rendered into the
prompt (or left to a chat template that renders specs itself), and the JSON schema the engine must hold
the reply to (the forced call's for tool_choice 'required' or a named tool, else the caller's
json_schema). Where the engine has no grammar, both demands are spelled out in the system prompt.

The transport sends that and yields the model's raw text as `RawChunk`s. `read_reply` turns them into
deltas: calls are parsed out of the stream by `llm.call_parser`'s parser; a forced reply is parsed the same
way, so when the grammar did not hold (a server that ignores `response_format`, a reply cut short) the
model's text is still shown and a damaged call still repaired; then tool_choice is applied, and a call
that could not be used, or a required call that is missing, is reported as `Delta.tool_call_error`,
which the agent loop answers with "write it again". Calls a server returned natively get the parser's
treatment of arguments too: valid Unicode, values of the types the tool's schema declares.
"""

from __future__ import annotations

import contextlib
import json
import logging
from abc import abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from lector.llm import call_gate, call_grounding, call_parser, forced_calls, tool_prompt
from lector.llm.backend import Backend, ChatOptions, Delta, PromptRead, Usage
from lector.llm.errors import LLMError
from lector.llm.messages import Message, ToolCall, ToolSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromptRequest:
    """What a transport sends for one reply."""

    messages: list[Message]
    """The conversation, with tool specs and tool history as text unless `template_tools` is set."""
    template_tools: list[ToolSpec] | None
    """Specs for a chat template (or a server) that renders tools itself; the messages then keep their
    tool history."""
    schema: dict[str, Any] | None
    """The JSON schema the reply must match, for engines with a grammar."""
    forced: bool
    """Whether `schema` is the forced call's."""
    parse_tools: list[ToolSpec] | None
    """The tools whose calls are read out of the reply; None: the reply is plain text."""
    tool_choice: str
    grammar: str | None = None
    """For engines that take grammars (llguidance's Lark syntax), held from the first token: in tool_choice 'auto',
    the calls grammar (`forced_calls.auto_call_grammar`) while `decide` is set and after a "call" decision,
    `TEXT_GRAMMAR` after a "no call" decision."""
    decide: bool = False
    """Ask the model first, in a one-word reply, whether to call (`decision_request`), then hold the reply to calls
    or to text (`decided`). Without it a reply in 'auto' is free: the embedded engine applies an llguidance grammar
    from the first token even when asked to wait for a trigger, so no grammar can hold only a call once started."""
    gate: bool = False
    """Read the reply's first-token probabilities first (`llm.call_gate`), then hold the reply to calls or to
    text."""
    probe_tokens: int | None = None
    """Ask the engine for this many top candidates of each generated token (`RawChunk.top_tokens`)."""


@dataclass
class RawChunk:
    """A piece of the model's raw output as the transport got it."""

    text: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    """Complete calls a server returned natively (they win over calls written in the text)."""
    prompt_read: PromptRead | None = None
    """How far the engine has read the prompt, where it says."""
    top_tokens: list[call_gate.TokenProb] | None = None
    """The top candidates of the chunk's first token, where the request asked for them (`probe_tokens`)."""


def has_tool_history(messages: list[Message]) -> bool:
    return any(m.role == "tool" or m.tool_calls for m in messages)


def prepare(
    messages: list[Message],
    tools: list[ToolSpec] | None,
    options: ChatOptions,
    *,
    grammar: bool = True,
    template_tools: bool = False,
    lark_grammar: bool = False,
    decide: bool = False,
    gate: bool = False,
) -> PromptRequest:
    """The request to send. `grammar`: the engine can hold a reply to a JSON schema; `lark_grammar`: it takes a
    Lark grammar (llguidance) in tool_choice 'auto' (`PromptRequest.grammar`); `template_tools`:
    its chat template renders tool specs and tool history itself (used for tool_choice 'auto' only,
    since a forced choice needs the demand spelled out); `decide`: on such an engine, a reply to a user's
    message is preceded by the call / no-call decision (`PromptRequest.decide`); `gate`: instead, by the call gate
    (`PromptRequest.gate`). Raises LLMError for a
    tool_choice naming no tool."""
    choice = options.tool_choice
    original = messages
    use_tools = bool(tools) and choice != "none"
    try:
        forced = forced_calls.forced_call_schema(tools, choice) if use_tools else None
    except ValueError as exc:
        raise LLMError(str(exc)) from exc
    spec_tools: list[ToolSpec] | None = None
    if use_tools and template_tools and choice == "auto":
        spec_tools = list(tools or [])
    elif use_tools:
        messages = tool_prompt.inject_tools(messages, tools, choice)
    elif not template_tools and has_tool_history(messages):
        messages = tool_prompt.inject_tools(messages, None, "none")
    schema = forced if forced is not None else options.json_schema
    if not grammar and options.json_schema is not None and forced is None:
        note = "Reply with only a JSON value that matches this JSON schema:\n"
        messages = _with_system_note(messages, note + json.dumps(options.json_schema, ensure_ascii=False))
    free_calls = lark_grammar and use_tools and choice == "auto" and spec_tools is None and options.json_schema is None
    user_turn = free_calls and bool(original) and original[-1].role == "user"
    decide_now, gate_now = user_turn and decide, user_turn and gate and not decide
    return PromptRequest(
        grammar=forced_calls.auto_call_grammar(tools) if decide_now or gate_now else None,
        decide=decide_now,
        gate=gate_now,
        messages=messages,
        template_tools=spec_tools,
        schema=schema if grammar else None,
        forced=grammar and forced is not None,
        parse_tools=list(tools or []) if use_tools else None,
        tool_choice=choice,
    )


def _with_system_note(messages: list[Message], note: str) -> list[Message]:
    if messages and messages[0].role == "system":
        first = messages[0].model_copy(update={"content": f"{messages[0].content}\n\n{note}".strip()})
        return [first, *messages[1:]]
    return [Message.system(note), *messages]


DECISION_QUESTION = (
    "Before you reply: does one of the functions in <tools> do what the user asks, and does the conversation give "
    "the values of its required arguments? Answer yes or no."
)
DECISION_GRAMMAR = '%llguidance {}\nstart: "yes" | "no" | "Yes" | "No"\n'
TEXT_GRAMMAR = "%llguidance {}\nstart: /(?s:.*)/\n"
"""Plain text: a grammar lets special tokens through only where it names them, so `<tool_call>` cannot start."""


def decision_request(request: PromptRequest) -> PromptRequest:
    """The one-word question whether to call, asked after the conversation: the prompt up to it is the reply's
    own, so an engine with prompt caching reads the reply's prompt only once."""
    return PromptRequest(
        messages=[*request.messages, Message.user(DECISION_QUESTION)],
        template_tools=None,
        schema=None,
        forced=False,
        parse_tools=None,
        tool_choice="none",
        grammar=DECISION_GRAMMAR,
    )


def decision_options(options: ChatOptions) -> ChatOptions:
    return options.model_copy(update={"max_tokens": 1, "temperature": 0.0, "stop": None, "json_schema": None})


def decided(request: PromptRequest, answer: str) -> PromptRequest:
    """The reply's request after the decision: "yes" holds it to calls from the first token (a list of one or more,
    where a small model goes on to every call a query needs), "no" to plain text. What the reply holds is parsed as
    ever, so a call written as bare JSON anyway still counts."""
    if answer.strip().lower().startswith("yes"):
        return replace(request, decide=False)
    return replace(request, decide=False, grammar=TEXT_GRAMMAR)


class ReplyReader:
    """Reads one reply's raw chunks: `feed` returns the text to show now, `finish` the last delta."""

    def __init__(
        self, parse_tools: list[ToolSpec] | None, tool_choice: str, conversation: list[Message] | None = None
    ) -> None:
        """`conversation`: the messages the reply answers; in tool_choice 'auto', calls on required values it never
        gave are held back and the reply asks for them (`llm.call_grounding`)."""
        self.conversation = conversation
        self.parser = call_parser.StreamingToolCallParser(parse_tools) if parse_tools is not None else None
        self.tools = parse_tools
        self.tool_choice = tool_choice
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.native_calls: list[ToolCall] = []

    def feed(self, chunk: RawChunk) -> str:
        if chunk.usage is not None:
            self.usage = chunk.usage
        self.finish_reason = chunk.finish_reason or self.finish_reason
        self.native_calls.extend(chunk.tool_calls)
        if not chunk.text or self.parser is None:
            return chunk.text
        return self.parser.feed(chunk.text)

    def result(self) -> call_parser.ParseResult:
        native = [call_parser.coerce_call(c, self.tools) for c in self.native_calls]
        if self.parser is None:
            return call_parser.ParseResult(calls=native)
        parsed = self.parser.finish()  # its text is what `feed` held back
        if native:
            return call_parser.ParseResult(text=parsed.text, calls=native)
        return forced_calls.apply_tool_choice(parsed, self.tool_choice)

    def grounded(self, result: call_parser.ParseResult) -> call_parser.ParseResult:
        if self.tool_choice != "auto" or self.conversation is None or not result.calls:
            return result
        missing = call_grounding.ungrounded(result.calls, self.tools or [], self.conversation)
        if not missing:
            return result
        log.info("calls held back, required values not in the conversation: %s", missing)
        text = "\n\n".join(t for t in (result.text.strip(), call_grounding.missing_note(missing)) if t)
        return call_parser.ParseResult(text=text)

    def finish(self) -> Delta:
        result = self.grounded(self.result())
        if result.error:
            log.info("tool call parse error: %s", result.error)
        finish = self.finish_reason
        if result.calls and finish in (None, "stop"):
            finish = "tool_calls"
        return Delta(
            text=result.text,
            tool_calls=result.calls,
            usage=self.usage or Usage(),
            finish_reason=finish or "stop",
            tool_call_error=result.error,
        )


async def read_reply(
    chunks: AsyncGenerator[RawChunk, None],
    parse_tools: list[ToolSpec] | None,
    tool_choice: str,
    conversation: list[Message] | None = None,
) -> AsyncGenerator[Delta, None]:
    """Deltas of one reply: text as it becomes safe to show, then one delta with the calls and usage."""
    reader = ReplyReader(parse_tools, tool_choice, conversation)
    async with contextlib.aclosing(chunks):
        async for chunk in chunks:
            if chunk.prompt_read is not None:
                yield Delta(prompt_read=chunk.prompt_read)
            visible = reader.feed(chunk)
            if visible:
                yield Delta(text=visible)
    yield reader.finish()


class PromptCallingBackend(Backend):
    """A backend without native tool calls. Subclasses implement `raw_stream`, their transport.

    `grammar`: the engine holds replies to `PromptRequest.schema`; `template_tools`: its chat template
    renders tool specs itself; `lark_grammar`: it takes `PromptRequest.grammar`.
    """

    native_tools = False
    grammar: bool = True
    template_tools: bool = False
    lark_grammar: bool = False
    decide_calls: bool = False
    """With `lark_grammar`: decide whether to call before each reply to a user's message (`PromptRequest.decide`).
    Off by default: the default Coder-1.5B answers the question "yes" to most requests no tool fits (see
    bench/results/bfcl-session-2026-12-02c.md)."""
    first_token_probs: bool = False
    """The transport reports the top candidates of a generated token when asked (`PromptRequest.probe_tokens`)."""
    call_gate: float | None = None
    """With `lark_grammar` and `first_token_probs`: the call gate's threshold (`llm.call_gate`) before each reply to
    a user's message in 'auto'; None: no gate."""

    @abstractmethod
    def raw_stream(self, request: PromptRequest, options: ChatOptions) -> AsyncGenerator[RawChunk, None]:
        """Send `request` and yield the raw output; closing it stops the generation."""

    def prompt_request(
        self, messages: list[Message], tools: list[ToolSpec] | None, options: ChatOptions
    ) -> PromptRequest:
        return prepare(
            messages,
            tools,
            options,
            grammar=self.grammar,
            template_tools=self.template_tools,
            lark_grammar=self.lark_grammar,
            decide=self.decide_calls,
            gate=self.first_token_probs and self.call_gate is not None,
        )

    async def astream(
        self,
        messages: list[Message],
        tools: list[ToolSpec] | None = None,
        options: ChatOptions | None = None,
    ) -> AsyncIterator[Delta]:
        options = options or ChatOptions()
        request = self.prompt_request(messages, tools, options)
        if request.decide:
            answer: list[str] = []
            chunks = self.raw_stream(decision_request(request), decision_options(options))
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    if chunk.prompt_read is not None:
                        yield Delta(prompt_read=chunk.prompt_read)
                    answer.append(chunk.text)
            log.debug("call decision: %r", "".join(answer))
            request = decided(request, "".join(answer))
        if request.gate:
            top: list[call_gate.TokenProb] = []
            chunks = self.raw_stream(call_gate.probe_request(request), call_gate.probe_options(options))
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    if chunk.prompt_read is not None:
                        yield Delta(prompt_read=chunk.prompt_read)
                    top = top or list(chunk.top_tokens or [])
            p_call = call_gate.call_probability(top)
            log.debug("call gate: P(call) %.3f", p_call)
            request = call_gate.gated(request, p_call, self.call_gate if self.call_gate is not None else 1.0)
        deltas = read_reply(self.raw_stream(request, options), request.parse_tools, request.tool_choice, messages)
        async with contextlib.aclosing(deltas):
            async for delta in deltas:
                yield delta
