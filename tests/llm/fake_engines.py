"""SCRIPTED stand-ins for the engines under the prompt-based backends; none of them is a language model.

Each replays the texts of its `Script` (one per request) in small pieces, through the same interface
the real engine offers the backend, and records the prompt and the JSON schema it was asked to hold
the reply to:

- `ScriptedLlamaServer`: `xllamacpp.Server.handle_chat_completions` (OpenAI-style chunk dicts);
- `install_fake_transformers`: `torch` and `transformers` modules whose model streams through the
  backend's `TextStreamer`;
- `install_fake_vllm`: a `vllm` module whose engine's `generate` yields delta outputs.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import types
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lector.llm.prompt_calling import DECISION_GRAMMAR

PIECE = 3
"""Characters per streamed piece: small, so that markup is split across pieces."""


def pieces(text: str) -> list[str]:
    return [text[i : i + PIECE] for i in range(0, len(text), PIECE)]


@dataclass
class Script:
    """Reply texts in order; the prompt (as text) and the grammar's JSON schema of every request."""

    replies: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    schemas: list[dict[str, Any] | None] = field(default_factory=list)
    decision: str = "yes"
    """The answer to every call / no-call question (engines with grammars); it uses up no reply."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    """The embedded engine's request bodies, decisions included."""
    first_token: dict[str, float] = field(default_factory=lambda: {"<tool_call>": 0.9, "The": 0.1})
    """The probabilities of the first token, for every request that asks for them (`top_logprobs`); it uses up no
    reply."""

    def record(self, prompt: str, schema: dict[str, Any] | None) -> None:
        self.prompts.append(prompt)
        self.schemas.append(schema)

    def next(self, prompt: str, schema: dict[str, Any] | None) -> str:
        self.record(prompt, schema)
        if not self.replies:
            raise AssertionError("the scripted engine ran out of replies")
        return self.replies.pop(0)


class ScriptedLlamaServer:
    """Answers `handle_chat_completions` like the embedded llama.cpp engine, from a script."""

    def __init__(self, script: Script) -> None:
        self.script = script

    def handle_chat_completions(self, request: dict[str, Any], on_chunk: Callable[[Any], bool]) -> None:
        self.script.requests.append(request)
        if request.get("top_logprobs"):
            top = [{"token": t, "logprob": math.log(p)} for t, p in self.script.first_token.items()]
            first = max(self.script.first_token, key=self.script.first_token.__getitem__)
            logprobs = {
                "content": [{"token": first, "logprob": math.log(self.script.first_token[first]), "top_logprobs": top}]
            }
            on_chunk({"choices": [{"index": 0, "delta": {"content": first}, "logprobs": logprobs}]})
            on_chunk({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
            return
        if request.get("grammar") == DECISION_GRAMMAR:
            text = self.script.decision
        else:
            text = self.script.next(json.dumps(request["messages"], ensure_ascii=False), request.get("json_schema"))
        for piece in pieces(text):
            if on_chunk({"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}):
                return
        on_chunk({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        on_chunk({"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": len(pieces(text))}})


class ScriptedTokenizer:
    """A chat template that renders the messages and tool specs as JSON; a token is a word."""

    def __init__(self, script: Script) -> None:
        self.script = script

    chat_template = "{{ messages }} {{ tools }}"
    eos_token_id = 0
    pad_token_id = 0

    def get_vocab(self) -> dict[str, int]:
        return {}

    def apply_chat_template(self, messages: list[dict[str, Any]], tools: Any = None, **kwargs: Any) -> str:
        return json.dumps({"messages": messages, "tools": tools})

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [1] * len(text.split())

    def __call__(self, text: str, **kwargs: Any) -> Any:
        self.script.prompts.append(text)
        return _Inputs(input_ids=np.ones((1, len(text.split())), dtype=np.int64))


class _Inputs(dict[str, Any]):
    def to(self, device: str) -> _Inputs:
        return self


class _ScriptedCausalLM:
    """`generate` streams the next scripted text through the streamer, then returns the token ids."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.config = types.SimpleNamespace(max_position_embeddings=4096)
        self.generation_config = types.SimpleNamespace(eos_token_id=None)

    def to(self, device: str) -> _ScriptedCausalLM:
        return self

    def eval(self) -> _ScriptedCausalLM:
        return self

    def generate(self, input_ids: Any, generation_config: Any, streamer: Any, stopping_criteria: Any) -> Any:
        text = self.script.next(self.script.prompts.pop(), None)  # the tokenizer saw the prompt; no grammar
        produced = pieces(text)
        for piece in produced:
            streamer.on_finalized_text(piece)
        return np.concatenate([input_ids[0], np.ones(len(produced), dtype=np.int64), [0]])[None, :]


def install_fake_transformers(monkeypatch: Any, script: Script) -> None:
    """`torch` and `transformers` modules just large enough for TransformersBackend, model included."""
    torch = types.ModuleType("torch")
    torch.float32 = torch.bfloat16 = torch.bool = object()  # type: ignore[attr-defined]
    torch.set_num_threads = lambda n: None  # type: ignore[attr-defined]
    torch.manual_seed = lambda seed: None  # type: ignore[attr-defined]
    torch.inference_mode = contextlib.nullcontext  # type: ignore[attr-defined]
    torch.full = lambda shape, value, **kwargs: np.full(shape, value)  # type: ignore[attr-defined]

    class GenerationConfig:
        def __init__(self, **kwargs: Any) -> None:
            self.kwargs = kwargs

    class TextStreamer:
        def __init__(self, tokenizer: Any, **kwargs: Any) -> None:
            self.tokenizer = tokenizer

    transformers = types.ModuleType("transformers")
    transformers.__version__ = "4.57.0"  # type: ignore[attr-defined]
    transformers.AutoTokenizer = types.SimpleNamespace(  # type: ignore[attr-defined]
        from_pretrained=lambda folder, **kw: ScriptedTokenizer(script)
    )
    transformers.AutoModelForCausalLM = types.SimpleNamespace(  # type: ignore[attr-defined]
        from_pretrained=lambda folder, **kw: _ScriptedCausalLM(script)
    )
    transformers.GenerationConfig = GenerationConfig  # type: ignore[attr-defined]
    transformers.TextStreamer = TextStreamer  # type: ignore[attr-defined]
    transformers.StoppingCriteria = object  # type: ignore[attr-defined]
    transformers.StoppingCriteriaList = list  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "transformers", transformers)


class _ScriptedVLLMEngine:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.model_config = types.SimpleNamespace(max_model_len=4096)
        self.aborted: list[str] = []

    def get_tokenizer(self) -> ScriptedTokenizer:
        return ScriptedTokenizer(self.script)

    async def generate(self, prompt: str, params: Any, request_id: str) -> AsyncIterator[Any]:
        structured = params.kwargs.get("structured_outputs")
        text = self.script.next(prompt, structured.kwargs["json"] if structured is not None else None)
        produced = pieces(text)
        for i, piece in enumerate(produced):
            finish = "stop" if i == len(produced) - 1 else None
            output = types.SimpleNamespace(text=piece, token_ids=[1], finish_reason=finish)
            yield types.SimpleNamespace(outputs=[output], prompt_token_ids=[1] * 7)

    async def abort(self, request_id: str) -> None:
        self.aborted.append(request_id)


def install_fake_vllm(monkeypatch: Any, script: Script) -> None:
    """A `vllm` module whose AsyncLLMEngine replays `script` as delta outputs."""

    class Recorded:
        def __init__(self, **kwargs: Any) -> None:
            self.kwargs = kwargs

    vllm = types.ModuleType("vllm")
    vllm.AsyncEngineArgs = Recorded  # type: ignore[attr-defined]
    vllm.SamplingParams = Recorded  # type: ignore[attr-defined]
    vllm.AsyncLLMEngine = types.SimpleNamespace(  # type: ignore[attr-defined]
        from_engine_args=lambda args: _ScriptedVLLMEngine(script)
    )
    sampling = types.ModuleType("vllm.sampling_params")
    sampling.RequestOutputKind = types.SimpleNamespace(DELTA="delta")  # type: ignore[attr-defined]
    sampling.StructuredOutputsParams = Recorded  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sampling)
