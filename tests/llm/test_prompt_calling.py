"""Every backend's prompt-based tool calling gives the same calls, text and errors for the same model output.

The backends run for real down to their transport; below it a SCRIPTED engine replays model texts
(tests/llm/fake_engines.py; the OpenAI-compatible backend talks HTTP to tests/llm/openai_test_server.py).
No language model is loaded.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from typing import Any, Protocol

import httpx
import pytest

from lector.agent.events import Final, ToolCallFinished
from lector.agent.loop import run_agent
from lector.agent.stop_rules import CALL_ERROR_NOTE
from lector.llm import call_gate, forced_calls, openai_wire
from lector.llm.backend import Backend, ChatOptions, Delta
from lector.llm.call_gate import TokenProb, call_probability
from lector.llm.embedded import EmbeddedBackend, EngineConfig, _Engine
from lector.llm.errors import LLMError
from lector.llm.forced_calls import forced_call_schema
from lector.llm.messages import Message, ToolCall, ToolSpec
from lector.llm.openai_http import OpenAIBackend
from lector.llm.prompt_calling import (
    DECISION_GRAMMAR,
    DECISION_QUESTION,
    TEXT_GRAMMAR,
    PromptCallingBackend,
    RawChunk,
    ReplyReader,
    decided,
    decision_options,
    prepare,
)
from lector.llm.threads import ThreadChoice
from lector.llm.transformers_backend import TransformersBackend
from lector.llm.vllm_backend import VLLMBackend
from lector.tools.base import tool
from lector.tools.registry import ToolRegistry
from tests.llm.call_cases import CASES, TC, TOOLS
from tests.llm.fake_engines import Script, ScriptedLlamaServer, install_fake_transformers, install_fake_vllm
from tests.llm.openai_test_server import OpenAITestServer

PROSE = "2+2 is 4, and I cannot fetch pages."
ASK = [Message.system("You are terse."), Message.user("What is 2+2? Then fetch u (https://a.org).")]
"""The values of the table's calls are the user's: in 'auto' a call on a value nobody gave is held back
(tests/llm/test_call_grounding.py)."""
BACKENDS = ["embedded", "openai", "transformers", "vllm"]
GRAMMAR = {"embedded", "openai", "vllm"}
"""Backends whose engine holds a reply to a JSON schema (transformers asks for it in the prompt)."""


class Harness(Protocol):
    kind: str
    script: Script

    async def reply(
        self, text: str, tools: list[ToolSpec] | None, options: ChatOptions, messages: list[Message] = ASK
    ) -> list[Delta]: ...


class EngineHarness:
    """A backend whose engine is scripted in-process."""

    def __init__(self, kind: str, backend: Backend, script: Script) -> None:
        self.kind = kind
        self.backend = backend
        self.script = script

    async def reply(
        self, text: str, tools: list[ToolSpec] | None, options: ChatOptions, messages: list[Message] = ASK
    ) -> list[Delta]:
        self.script.replies.append(text)
        return [d async for d in self.backend.astream(messages, tools, options)]


class HTTPHarness:
    """The OpenAI-compatible backend in prompt mode against the loopback test server."""

    kind = "openai"

    def __init__(self, server: OpenAITestServer) -> None:
        self.server = server
        self.script = Script()

    async def reply(
        self, text: str, tools: list[ToolSpec] | None, options: ChatOptions, messages: list[Message] = ASK
    ) -> list[Delta]:
        key = uuid.uuid4().hex[:8]
        self.server.scripts[key] = text
        backend = OpenAIBackend(self.server.url("plain"), model=f"script:{key}", native_tools=False)
        deltas = [d async for d in backend.astream(messages, tools, options)]
        (sent,) = self.server.chat_requests(f"script:{key}")
        schema = ((sent.body.get("response_format") or {}).get("json_schema") or {}).get("schema")
        self.script.record(json.dumps(sent.body["messages"], ensure_ascii=False), schema)
        return deltas


def embedded_backend(script: Script) -> EmbeddedBackend:
    """An EmbeddedBackend whose llama.cpp engine is SCRIPTED: nothing is loaded."""
    backend = EmbeddedBackend("scripted.gguf", lazy=True, progress=False)
    config = EngineConfig(path="scripted.gguf", n_ctx=8192, n_parallel=1, n_batch=512, cache_ram_mib=0)
    threads = ThreadChoice(threads=1, batch_threads=1, poll=0, reason="scripted")
    backend._engine = _Engine(
        config=config,
        threads=threads,
        server=ScriptedLlamaServer(script),
        address="",
        api_key="",
        http=httpx.Client(),
        users=1,
    )
    return backend


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as srv:
        yield srv


@pytest.fixture(params=BACKENDS)
def harness(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    script = Script()
    if request.param == "embedded":
        backend: Backend = embedded_backend(script)
    elif request.param == "openai":
        yield HTTPHarness(request.getfixturevalue("server"))
        return
    elif request.param == "transformers":
        install_fake_transformers(monkeypatch, script)
        backend = TransformersBackend("scripted-model")
    else:
        install_fake_vllm(monkeypatch, script)
        backend = VLLMBackend("scripted-model")
    yield EngineHarness(request.param, backend, script)
    backend.close()


def names_args(calls: list[ToolCall]) -> list[tuple[str, Any]]:
    return [(c.name, json.loads(c.arguments)) for c in calls]


def outcome(deltas: list[Delta]) -> tuple[list[tuple[str, Any]], str, str | None]:
    """Calls, visible text and call error of a streamed reply; only the last delta may carry calls."""
    assert all(not d.tool_calls and d.tool_call_error is None for d in deltas[:-1])
    last = deltas[-1]
    assert last.usage is not None and last.usage.completion_tokens > 0
    assert last.finish_reason == ("tool_calls" if last.tool_calls else "stop")
    return names_args(last.tool_calls), "".join(d.text for d in deltas), last.tool_call_error


def assert_error(error: str | None, expected: str | None) -> None:
    if expected is None:
        assert error is None
    else:
        assert error is not None and expected in error


# Cases parsed without tools are the parser's alone (a backend given no tools parses nothing); a stray
# </think> is the documented case where a stream cannot match the whole-text parse.
TABLE = [c for c in CASES if not c[0].endswith("-notools") and c[0] != "close-think-only"]


@pytest.mark.parametrize(("output", "calls", "text", "error"), [c[1:] for c in TABLE], ids=[c[0] for c in TABLE])
async def test_the_parser_table_through_every_backend(
    harness: Harness, output: str, calls: list[Any], text: str, error: str | None
) -> None:
    got_calls, got_text, got_error = outcome(await harness.reply(output, TOOLS, ChatOptions()))
    assert got_calls == calls
    assert got_text == text
    assert_error(got_error, error)
    assert all(t.description in harness.script.prompts[-1] for t in TOOLS), "the tool specs are in the prompt"
    assert harness.script.schemas[-1] is None


E = {"expression": "2+2"}
CALL_JSON = '{"name": "calculator", "arguments": {"expression": "2+2"}}'
# (id, tool_choice, model output, expected calls, expected text, error substring or None)
FORCED: list[tuple[str, str, str, list[tuple[str, Any]], str, str | None]] = [
    ("named", "calculator", CALL_JSON, [("calculator", E)], "", None),
    ("required", "required", CALL_JSON, [("calculator", E)], "", None),
    ("required-tagged", "required", TC, [("calculator", E)], "", None),
    (
        "cut-short-is-repaired",
        "calculator",
        '{"name": "calculator", "arguments": {"expression": "2+',
        [("calculator", {"expression": "2+"})],
        "",
        None,
    ),
    ("grammar-ignored", "required", "I think it is 4.", [], "I think it is 4.", "a tool call was required"),
    (
        "other-tool",
        "calculator",
        '<tool_call>{"name": "web_fetch", "arguments": {"url": "u"}}</tool_call>',
        [],
        "",
        "a call to calculator was required, but the reply has calls to web_fetch only",
    ),
    ("unreadable", "required", "<tool_call>calculator 2+2</tool_call>", [], "", "tool call 1 is not valid JSON"),
    ("none-is-plain-text", "none", TC, [], TC, None),
]


@pytest.mark.parametrize(
    ("choice", "output", "calls", "text", "error"), [c[1:] for c in FORCED], ids=[c[0] for c in FORCED]
)
async def test_forced_calls_and_their_failures_through_every_backend(
    harness: Harness, choice: str, output: str, calls: list[Any], text: str, error: str | None
) -> None:
    got_calls, got_text, got_error = outcome(await harness.reply(output, TOOLS, ChatOptions(tool_choice=choice)))
    assert got_calls == calls
    assert got_text == text
    assert_error(got_error, error)
    schema = forced_call_schema(TOOLS, choice)
    sent_schema, prompt = harness.script.schemas[-1], harness.script.prompts[-1]
    if schema is None:
        assert sent_schema is None and "<tools>" not in prompt
    elif harness.kind in GRAMMAR:
        assert sent_schema == schema, "the engine's grammar holds the reply to the call schema"
    else:
        assert sent_schema is None and "You must call" in prompt, "without a grammar the prompt demands the call"


async def test_json_schema_is_held_by_the_grammar_or_asked_for(harness: Harness) -> None:
    schema = {"type": "object", "properties": {"colour": {"type": "string"}}, "required": ["colour"]}
    deltas = await harness.reply('{"colour": "red"}', None, ChatOptions(json_schema=schema))
    assert outcome(deltas) == ([], '{"colour": "red"}', None)
    if harness.kind in GRAMMAR:
        assert harness.script.schemas[-1] == schema
    else:
        prompt = harness.script.prompts[-1]
        assert harness.script.schemas[-1] is None and "matches this JSON schema" in prompt and "colour" in prompt


async def test_a_tool_choice_naming_no_tool_is_a_clear_error(harness: Harness) -> None:
    with pytest.raises(LLMError, match="unknown tool: 'nope'"):
        await harness.reply("unused", TOOLS, ChatOptions(tool_choice="nope"))


@pytest.mark.parametrize("tools", [TOOLS, None], ids=["with-tools", "without-tools"])
async def test_tool_history_reaches_every_backend(harness: Harness, tools: list[ToolSpec] | None) -> None:
    call = ToolCall(id="call_1", name="calculator", arguments='{"expression": "6*7"}')
    history = [*ASK, Message.assistant("", [call]), Message.tool("call_1", "calculator", "42")]
    deltas = await harness.reply("It is 42.", tools, ChatOptions(), history)
    assert outcome(deltas) == ([], "It is 42.", None)
    prompt = harness.script.prompts[-1]
    assert "6*7" in prompt and "42" in prompt
    if harness.kind in ("transformers", "vllm"):
        assert '"role": "tool"' in prompt, "a chat template that renders tools gets the history as messages"
    else:
        assert "<tool_response>" in prompt and '"role": "tool"' not in prompt, "the history is text"


# ---------------------------------------------------------------- the agent loop on the default backend


@tool
def calculator(expression: str) -> str:
    """Evaluate arithmetic.

    Args:
        expression: what to evaluate
    """
    return "4" if expression == "2+2" else "?"


async def test_a_malformed_call_on_the_embedded_backend_makes_the_agent_ask_again() -> None:
    script = Script(replies=["<tool_call>calculator 2+2</tool_call>", TC, "It is 4."])
    backend = embedded_backend(script)
    events = [e async for e in run_agent(backend, [Message.user("What is 2+2?")], ToolRegistry([calculator]))]
    backend.close()
    retry = CALL_ERROR_NOTE.split("{error}")[0]
    assert retry not in script.prompts[0]
    assert retry in script.prompts[1] and "tool call 1 is not valid JSON" in script.prompts[1]
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    assert [(e.name, e.content) for e in finished] == [("calculator", "4")]
    final = next(e for e in events if isinstance(e, Final))
    assert final.text == "It is 4."


# ---------------------------------------------------------------- calls a server returned natively


def test_native_calls_get_valid_unicode_and_their_declared_types() -> None:
    reader = ReplyReader(TOOLS, "auto")
    calls = [
        ToolCall(id="call_1", name="web_fetch", arguments='{"url": "https://a.org", "max_chars": "200"}'),
        ToolCall(id="call_2", name="calculator", arguments='{"expression": "\\ud800"}'),
        ToolCall(id="call_3", name="calculator", arguments="not json"),
    ]
    reader.feed(RawChunk(tool_calls=calls))
    delta = reader.finish()
    assert [(c.id, c.name) for c in delta.tool_calls] == [
        ("call_1", "web_fetch"),
        ("call_2", "calculator"),
        ("call_3", "calculator"),
    ]
    assert delta.tool_calls[0].parsed_arguments() == {"url": "https://a.org", "max_chars": 200}
    assert delta.tool_calls[1].parsed_arguments() == {"expression": "\ufffd"}
    assert delta.tool_calls[2].arguments == "not json", "left for the tool's validation to report"
    assert delta.finish_reason == "tool_calls"


def test_a_call_grammar_only_for_a_decision_on_engines_that_take_one_in_auto_choice_without_a_json_schema() -> None:
    ask = [Message.user("2+2?")]
    assert prepare(ask, TOOLS, ChatOptions(tool_choice="auto"), lark_grammar=True, decide=True).grammar is not None
    assert prepare(ask, TOOLS, ChatOptions(tool_choice="auto"), lark_grammar=True).grammar is None
    for options in (ChatOptions(tool_choice="required"), ChatOptions(tool_choice="none")):
        assert prepare(ask, TOOLS, options, lark_grammar=True, decide=True).grammar is None
    with_schema = ChatOptions(tool_choice="auto", json_schema={"type": "object"})
    assert prepare(ask, TOOLS, with_schema, lark_grammar=True, decide=True).grammar is None
    assert prepare(ask, TOOLS, ChatOptions(), decide=True).grammar is None
    assert EmbeddedBackend.lark_grammar and not PromptCallingBackend.lark_grammar


# ---------------------------------------------------------------- the call / no-call decision


@pytest.mark.parametrize(("answer", "grammar_of_reply"), [("yes", "calls"), ("No", "text")])
async def test_the_embedded_engine_decides_whether_to_call_then_holds_the_reply_to_that(
    answer: str, grammar_of_reply: str
) -> None:
    script = Script(replies=[TC], decision=answer)
    backend = embedded_backend(script)
    backend.decide_calls = True
    deltas = [d async for d in backend.astream(ASK, TOOLS, ChatOptions(tool_choice="auto", max_tokens=50))]
    backend.close()
    question, reply = script.requests
    assert question["grammar"] == DECISION_GRAMMAR and question["max_tokens"] == 1 and question["temperature"] == 0
    assert question["messages"][-1] == {"role": "user", "content": DECISION_QUESTION}
    assert question["messages"][:-1] == reply["messages"], "the reply's prompt is the question's prefix"
    assert "grammar_lazy" not in reply and "grammar_lazy" not in question and reply["max_tokens"] == 50
    assert reply["grammar"] == (forced_calls.auto_call_grammar(TOOLS) if grammar_of_reply == "calls" else TEXT_GRAMMAR)
    assert [c.name for c in deltas[-1].tool_calls] == ["calculator"], "what the reply holds is parsed as ever"


async def test_no_decision_after_tool_results_nor_where_no_call_is_free() -> None:
    script = Script(replies=[TC, "It is 4.", "4", "4"], decision="no")
    backend = embedded_backend(script)
    backend.decide_calls = True
    call = ToolCall(id="c1", name="calculator", arguments='{"expression": "2+2"}')
    after_results = [*ASK, Message.assistant("", [call]), Message.tool("c1", "calculator", "4")]
    for messages, options in [
        (after_results, ChatOptions()),
        (ASK, ChatOptions(tool_choice="required")),
        (ASK, ChatOptions(tool_choice="none")),
        (ASK, ChatOptions(tool_choice="auto", json_schema={"type": "string"})),
    ]:
        [d async for d in backend.astream(messages, TOOLS, options)]
    backend.close()
    assert all(r.get("grammar") != DECISION_GRAMMAR for r in script.requests) and len(script.requests) == 4
    assert "grammar" not in script.requests[0], "after tool results the reply is free: a call, or text"
    default = EmbeddedBackend("scripted.gguf", lazy=True, progress=False)
    assert not default.prompt_request(ASK, TOOLS, ChatOptions()).decide, "off unless asked for"
    assert backend.prompt_request(ASK, TOOLS, ChatOptions()).decide
    assert prepare(ASK, TOOLS, ChatOptions(), lark_grammar=True, decide=True).decide
    assert not prepare(ASK, TOOLS, ChatOptions(), decide=True).decide, "only engines that take a lazy grammar"


def test_the_decision_answer_picks_calls_or_text() -> None:
    request = prepare(ASK, TOOLS, ChatOptions(), lark_grammar=True, decide=True)
    assert decision_options(ChatOptions(max_tokens=400, stop=["x"], temperature=0.7)).model_dump(
        include={"max_tokens", "stop", "temperature"}
    ) == {"max_tokens": 1, "stop": None, "temperature": 0.0}
    for answer in ("yes", "Yes", " yes"):
        calls = decided(request, answer)
        assert calls.grammar == request.grammar and not calls.decide
    for answer in ("no", "No", ""):
        text = decided(request, answer)
        assert text.grammar == TEXT_GRAMMAR and not text.decide and text.parse_tools == request.parse_tools


# ---------------------------------------------------------------- the call gate


def test_the_call_probability_is_the_mass_of_first_tokens_that_start_a_call() -> None:
    top = [
        TokenProb("<tool_call>", math.log(0.3)),
        TokenProb(' {"', math.log(0.2)),
        TokenProb("[", math.log(0.1)),
        TokenProb("```", math.log(0.05)),
        TokenProb("The", math.log(0.25)),
        TokenProb("`x`", math.log(0.05)),
    ]
    assert call_probability(top) == pytest.approx(0.65)
    assert call_probability([]) == 0.0


@pytest.mark.parametrize(("p_call", "branch"), [(0.8, "calls"), (0.79, "text")])
def test_the_gate_holds_the_reply_to_calls_at_or_above_its_threshold_else_to_text(p_call: float, branch: str) -> None:
    request = prepare(ASK, TOOLS, ChatOptions(), lark_grammar=True, gate=True)
    assert request.gate and request.grammar == forced_calls.auto_call_grammar(TOOLS)
    probe = call_gate.probe_request(request)
    assert probe.grammar is None and probe.probe_tokens and probe.messages == request.messages and not probe.gate
    after = call_gate.gated(request, p_call, 0.8)
    assert not after.gate
    if branch == "calls":
        assert after.grammar == request.grammar and after.parse_tools == request.parse_tools
    else:
        assert after.grammar == call_gate.NO_CALL_GRAMMAR and after.parse_tools == request.parse_tools


@pytest.mark.parametrize(
    ("first_token", "branch"), [({"<tool_call>": 0.5, '{"': 0.35}, "calls"), ({"[": 0.3, "The": 0.7}, "text")]
)
async def test_the_embedded_engine_reads_the_first_token_then_holds_the_reply_to_calls_or_text(
    first_token: dict[str, float], branch: str
) -> None:
    script = Script(replies=[TC if branch == "calls" else PROSE], first_token=first_token)
    backend = embedded_backend(script)
    assert backend.call_gate == call_gate.DEFAULT_THRESHOLD, "on by default"
    deltas = [d async for d in backend.astream(ASK, TOOLS, ChatOptions(tool_choice="auto", max_tokens=50))]
    backend.close()
    probe, reply = script.requests
    assert probe["top_logprobs"] and probe["logprobs"] and probe["max_tokens"] == 1 and "grammar" not in probe
    assert probe["messages"] == reply["messages"], "the reply reads the probe's prompt from the cache"
    if branch == "calls":
        assert reply["grammar"] == forced_calls.auto_call_grammar(TOOLS) and "top_logprobs" not in reply
        assert [c.name for c in deltas[-1].tool_calls] == ["calculator"]
    else:
        assert reply["grammar"] == call_gate.NO_CALL_GRAMMAR
        assert not deltas[-1].tool_calls and "".join(d.text for d in deltas) == PROSE, "below the threshold: text"


async def test_a_call_the_gated_text_goes_on_to_write_is_read() -> None:
    fenced = 'Use the calculator:\n```json\n{"name": "calculator", "arguments": {"expression": "2+2"}}\n```'
    script = Script(replies=[fenced], first_token={"Use": 0.9})
    backend = embedded_backend(script)
    deltas = [d async for d in backend.astream(ASK, TOOLS, ChatOptions(tool_choice="auto", max_tokens=50))]
    backend.close()
    assert script.requests[-1]["grammar"] == call_gate.NO_CALL_GRAMMAR
    assert [(c.name, c.parsed_arguments()) for c in deltas[-1].tool_calls] == [("calculator", {"expression": "2+2"})]


async def test_no_gate_after_tool_results_nor_without_a_free_choice_nor_when_switched_off() -> None:
    script = Script(replies=[TC, "It is 4.", "4", "4", "4"], first_token={"The": 0.9})
    backend = embedded_backend(script)
    call = ToolCall(id="c1", name="calculator", arguments='{"expression": "2+2"}')
    after_results = [*ASK, Message.assistant("", [call]), Message.tool("c1", "calculator", "4")]
    for messages, options in [
        (after_results, ChatOptions()),
        (ASK, ChatOptions(tool_choice="required")),
        (ASK, ChatOptions(tool_choice="none")),
        (ASK, ChatOptions(tool_choice="auto", json_schema={"type": "string"})),
    ]:
        [d async for d in backend.astream(messages, TOOLS, options)]
    backend.call_gate = None
    [d async for d in backend.astream(ASK, TOOLS, ChatOptions())]
    backend.close()
    assert len(script.requests) == 5 and not any(r.get("top_logprobs") for r in script.requests)
    assert not prepare(ASK, TOOLS, ChatOptions(), gate=True).gate, "only engines that take a grammar"
    assert not PromptCallingBackend.first_token_probs and PromptCallingBackend.call_gate is None


def test_a_chunks_logprobs_give_its_first_tokens_candidates() -> None:
    logprobs = {"content": [{"token": "[", "logprob": -0.1, "top_logprobs": [{"token": "[", "logprob": -0.1}]}]}
    chunk = {"choices": [{"index": 0, "delta": {"content": "["}, "logprobs": logprobs}]}
    assert openai_wire.read_chunk(chunk).top_tokens == [TokenProb("[", -0.1)]
    assert openai_wire.read_chunk({"choices": [{"index": 0, "delta": {"content": "a"}}]}).top_tokens is None
