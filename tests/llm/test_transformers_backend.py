"""The transformers backend: cheap checks always; one end-to-end run on the 0.5B GGUF.

The end-to-end module fixture dequantizes the GGUF through transformers once (about a minute and
~4 GB RAM on two idle cores). Set LECTOR_SKIP_TRANSFORMERS=1 to skip it locally.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lector.llm.backend import ChatOptions
from lector.llm.errors import LLMError, ModelNotFoundError
from lector.llm.messages import Message, ToolCall
from lector.llm.transformers_backend import TransformersBackend, _StopTrimmer, resolve_source
from lector.llm.vllm_backend import VLLMBackend
from tests.llm.call_cases import ADD

# ---------------------------------------------------------------- cheap checks, no model


def test_importing_llm_backends_does_not_import_torch() -> None:
    code = (
        "import sys, lector.llm.factory, lector.llm.transformers_backend, lector.llm.vllm_backend\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules and 'vllm' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_missing_torch_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(LLMError, match=r"pip install 'lector\[transformers\]'"):
        TransformersBackend("whatever")


def test_missing_vllm_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(LLMError, match="vLLM is not installed.*openai:.*--tool-call-parser hermes"):
        VLLMBackend("Qwen/Qwen2.5-7B-Instruct")


def test_resolve_source(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_source(gguf) == (str(tmp_path), "m.gguf")
    assert resolve_source(tmp_path, "m.gguf") == (str(tmp_path), "m.gguf")
    assert resolve_source(tmp_path) == (str(tmp_path), None)
    assert resolve_source("Qwen/Qwen2.5-0.5B-Instruct") == ("Qwen/Qwen2.5-0.5B-Instruct", None)
    with pytest.raises(ModelNotFoundError):
        resolve_source(tmp_path / "absent.gguf")
    with pytest.raises(ModelNotFoundError):
        resolve_source(tmp_path, "other.gguf")


def test_stop_trimmer_holds_back_partial_stops() -> None:
    trimmer = _StopTrimmer(["</end>", "STOP"])
    out = [trimmer.feed(piece) for piece in ["Hello </", "en", "d> more"]]
    assert "".join(out) + trimmer.finish() == "Hello "
    assert trimmer.stopped
    plain = _StopTrimmer(None)
    assert plain.feed("abc") == "abc" and plain.finish() == ""
    held = _StopTrimmer(["STOP"])
    assert held.feed("no ST") + held.finish() == "no ST"


# ---------------------------------------------------------------- the real 0.5B GGUF through transformers


def _skip_reason() -> str | None:
    if os.environ.get("LECTOR_SKIP_TRANSFORMERS"):
        return "LECTOR_SKIP_TRANSFORMERS is set"
    for module in ("torch", "transformers", "gguf"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install 'lector[transformers]')"
    return None


@pytest.fixture(scope="module")
def small_tf() -> Iterator[TransformersBackend]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    try:
        backend = TransformersBackend("qwen2.5-coder-0.5b")
    except ModelNotFoundError as exc:
        pytest.skip(f"the 0.5B model parts are not installed: {exc}")
    yield backend
    backend.close()


def test_gguf_through_transformers_streams_with_usage(small_tf: TransformersBackend) -> None:
    ask = [Message.user("Count from 1 to 10, comma separated.")]
    deltas = list(small_tf.stream(ask, None, ChatOptions(max_tokens=8)))
    texts = [d.text for d in deltas if d.text]
    assert len(texts) >= 2, "text arrives as several deltas"
    assert "1" in "".join(texts)
    last = deltas[-1]
    assert last.usage is not None and last.usage.prompt_tokens > 5
    assert last.usage.completion_tokens == 8 and last.finish_reason == "length"
    assert small_tf.count_tokens("hello world") == 2
    assert small_tf.context_size >= 8192

    stream = small_tf.stream(ask, None, ChatOptions(max_tokens=200))
    next(iter(stream))
    stream.close()  # type: ignore[attr-defined]  # stops generation; the next request is not blocked
    after = small_tf.chat(ask, options=ChatOptions(max_tokens=2))
    assert after.usage.completion_tokens == 2


def test_tools_go_through_the_chat_template(small_tf: TransformersBackend) -> None:
    assert small_tf.template_tools, "Qwen's template takes tools"
    prompt = small_tf.render([Message.user("What is 2 + 3?")], [ADD])
    assert "<tools>" in prompt and '"name": "add"' in prompt
    call = ToolCall(id="call_1", name="add", arguments='{"a": 2, "b": 3}')
    history = [Message.user("What is 2 + 3?"), Message.assistant("", [call]), Message.tool("call_1", "add", "5")]
    prompt = small_tf.render(history, [ADD])
    assert '<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}' in prompt
    assert "<tool_response>\n5\n</tool_response>" in prompt
    forced = small_tf.render([Message.user("Add 2 and 3.")], [ADD], ChatOptions(tool_choice="add"))
    assert "You must call the function `add`" in forced
