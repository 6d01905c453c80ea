"""End-to-end checks of the embedded engine with the real 0.5B model (short replies only)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from lector.llm.backend import ChatOptions
from lector.llm.call_gate import DEFAULT_THRESHOLD
from lector.llm.embedded import EmbeddedBackend
from lector.llm.errors import ContextOverflowError, ModelNotFoundError
from lector.llm.messages import Message, ToolSpec

SHORT = ChatOptions(max_tokens=16, temperature=0)


async def test_streams_incremental_deltas_with_usage(small_model: EmbeddedBackend) -> None:
    prompt = [Message.user("Count from 1 to 20, comma separated.")]
    deltas = [d async for d in small_model.astream(prompt, None, SHORT)]
    texts = [d.text for d in deltas if d.text]
    assert len(texts) >= 3
    whole = "".join(texts)
    assert all(len(t) < len(whole) for t in texts)  # pieces, not the message again each time
    last = deltas[-1]
    assert last.usage is not None and last.usage.prompt_tokens > 0 and last.usage.completion_tokens > 0
    assert last.finish_reason in {"stop", "length"}


def test_sync_chat(small_model: EmbeddedBackend) -> None:
    result = small_model.chat([Message.user("Reply with the word yes.")], options=SHORT)
    assert result.message.content.strip()
    assert result.usage.completion_tokens > 0


def test_count_tokens_uses_the_model_tokenizer(small_model: EmbeddedBackend) -> None:
    assert small_model.count_tokens("") == 0
    assert small_model.count_tokens("Hello world") == 2
    text = "The quick brown fox jumps over the lazy dog. " * 20
    assert len(text) / 8 < small_model.count_tokens(text) < len(text) / 2


async def test_concurrent_requests_both_complete(small_model: EmbeddedBackend) -> None:
    questions = ["Name one fruit.", "Name one colour."]
    results = await asyncio.gather(*(small_model.achat([Message.user(q)], options=SHORT) for q in questions))
    assert all(r.message.content.strip() and r.usage.completion_tokens > 0 for r in results)


ADD_INTEGERS = ToolSpec(
    name="add",
    description="Add two integers.",
    parameters={
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
)


def test_forced_tool_choice_yields_a_valid_call(small_model: EmbeddedBackend) -> None:
    options = ChatOptions(max_tokens=48, temperature=0, tool_choice="add")
    result = small_model.chat([Message.user("What is 2 plus 3?")], [ADD_INTEGERS], options)
    assert [c.name for c in result.message.tool_calls] == ["add"]
    args = json.loads(result.message.tool_calls[0].arguments)
    assert isinstance(args["a"], int) and isinstance(args["b"], int)
    assert result.finish_reason == "tool_calls"


def test_json_schema_constrains_the_reply(small_model: EmbeddedBackend) -> None:
    schema = {"type": "object", "properties": {"colour": {"type": "string"}}, "required": ["colour"]}
    options = ChatOptions(max_tokens=24, temperature=0, json_schema=schema)
    result = small_model.chat([Message.user("Name a colour, as JSON.")], options=options)
    assert isinstance(json.loads(result.message.content)["colour"], str)


def test_context_overflow_is_a_clear_error(small_model: EmbeddedBackend) -> None:
    with pytest.raises(ContextOverflowError, match="context"):
        small_model.chat([Message.user("word " * 5000)], options=SHORT)


def test_shared_engine_and_unknown_model(small_model: EmbeddedBackend) -> None:
    with EmbeddedBackend("qwen2.5-coder-0.5b", n_ctx=4096, n_parallel=2) as again:
        assert again.engine is small_model.engine  # one loaded model per process and settings
    assert small_model.chat([Message.user("Say hi.")], options=SHORT).message.content  # still usable
    with pytest.raises(ModelNotFoundError):
        EmbeddedBackend("no-such-model")


def test_threads_are_chosen_at_load_and_shown(small_model: EmbeddedBackend) -> None:
    threads = small_model.threads
    assert threads is not None and threads.poll == 0  # waiting threads sleep instead of spinning
    assert 1 <= threads.threads <= threads.batch_threads
    assert threads.describe() in small_model.runtime()
    with EmbeddedBackend("qwen2.5-coder-0.5b", n_ctx=4096, n_parallel=2, n_threads=threads.threads + 1) as other:
        assert other.engine is small_model.engine and other.threads == threads  # the first load chose them


def test_a_lazy_backend_loads_when_told(small_model: EmbeddedBackend) -> None:
    lazy = EmbeddedBackend("qwen2.5-coder-0.5b", n_ctx=4096, n_parallel=2, lazy=True)
    assert lazy.threads is None and lazy.runtime() == ""
    lazy.load()
    assert lazy.engine is small_model.engine and lazy.threads is not None
    lazy.close()


def test_second_turn_reuses_the_cached_prefix(small_model: EmbeddedBackend) -> None:
    first = [Message.system("You are terse. " + "Lighthouses guide ships. " * 60), Message.user("Say hi.")]
    reply = small_model.chat(first, options=SHORT).message
    small_model.chat([*first, reply, Message.user("Say bye.")], options=SHORT)
    timings = small_model.last_timings or {}
    assert timings.get("cache_n", 0) > 300  # the system prompt and first turn were not evaluated again


def test_auto_choice_calls_come_out_typed_and_text_stays_free(
    small_model: EmbeddedBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = ChatOptions(max_tokens=96, temperature=0, tool_choice="auto")
    assert small_model.call_gate == DEFAULT_THRESHOLD, "the call gate decides, on by default"
    monkeypatch.setattr(small_model, "call_gate", None)
    assert "grammar" not in small_model.build_request([Message.user("hi")], [ADD_INTEGERS], options), "no gate: free"
    monkeypatch.undo()
    ask = [Message.user("Use the add tool: what is 2 plus 3, and 10 plus 20?")]
    result = small_model.chat(ask, [ADD_INTEGERS], options)
    calls = [json.loads(c.arguments) for c in result.message.tool_calls]
    assert calls and all(c.keys() == {"a", "b"} and all(type(v) is int for v in c.values()) for c in calls)
    chat = small_model.chat([Message.user("Say hello to Ada in one short sentence.")], [ADD_INTEGERS], options)
    assert chat.message.tool_calls == [] and "Ada" in chat.message.content


def test_the_call_grammar_holds_a_reply_to_a_list_of_typed_calls(small_model: EmbeddedBackend) -> None:
    from lector.llm.forced_calls import auto_call_grammar

    request = small_model.build_request([Message.user("Say hello to Ada.")], [ADD_INTEGERS], SHORT)
    request.update(grammar=auto_call_grammar([ADD_INTEGERS]), max_tokens=48)
    text = "".join(
        (c.get("delta") or {}).get("content") or ""
        for chunk in asyncio.run(_collect(small_model, request))
        for c in chunk.get("choices", [])
    )
    assert text.startswith("<tool_call>\n[{") and '"name": "add"' in text, "held even where no call fits"


async def _collect(backend: EmbeddedBackend, request: dict[str, Any]) -> list[dict[str, Any]]:
    return [c async for c in backend._chunks(request)]
