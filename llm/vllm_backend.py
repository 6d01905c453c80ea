"""vLLM in process (a GPU machine with `pip install vllm`): a seam, imported only when built.

Most setups are better served by `vllm serve MODEL --enable-auto-tool-choice --tool-call-parser hermes`
and the `openai:` backend; this one avoids the HTTP hop for batch jobs on the same machine.

The prompt is rendered through the model's chat template as in the transformers backend, and tool calls
go through `llm.prompt_calling`; a forced tool choice and `json_schema` are enforced with vLLM's
structured outputs.
This module cannot run where vLLM is absent; only its clear error is tested there.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from lector.llm.backend import ChatOptions, Usage, run_sync
from lector.llm.errors import ContextOverflowError, LLMError
from lector.llm.prompt_calling import PromptCallingBackend, PromptRequest, RawChunk
from lector.llm.transformers_backend import render_prompt, template_takes_tools

NOT_INSTALLED = (
    "vLLM is not installed; use `openai:` with `vllm serve ... --enable-auto-tool-choice --tool-call-parser hermes` "
    "or pip install vllm on a GPU machine"
)
DEFAULT_MAX_NEW_TOKENS = 1024


class VLLMBackend(PromptCallingBackend):
    """An AsyncLLMEngine for `model` (a hub id or a local folder); `engine_args` go to AsyncEngineArgs
    (e.g. tensor_parallel_size=2, max_model_len=32768, gpu_memory_utilization=0.85)."""

    def __init__(self, model: str, **engine_args: Any) -> None:
        try:
            import vllm
        except ImportError as exc:
            raise LLMError(f"{NOT_INSTALLED} ({exc})") from exc
        self._vllm = vllm
        self.name = f"vllm:{model}"
        try:
            args = vllm.AsyncEngineArgs(model=model, **engine_args)
            self._engine: Any = vllm.AsyncLLMEngine.from_engine_args(args)
        except Exception as exc:  # engine start-up fails in many ways (CUDA, memory, config)
            raise LLMError(f"vLLM could not start {model}: {exc}") from exc
        self._tokenizer: Any = self._load_tokenizer()
        self.template_tools = template_takes_tools(self._tokenizer)
        self.context_size = int(engine_args.get("max_model_len") or self._model_len() or 8192)
        self.parallel_slots = int(engine_args.get("max_num_seqs") or 64)

    def _model_len(self) -> int | None:
        config = getattr(self._engine, "model_config", None)
        return getattr(config, "max_model_len", None)

    def _load_tokenizer(self) -> Any:
        tokenizer = self._engine.get_tokenizer()
        if inspect.isawaitable(tokenizer):  # v1 engines hand the tokenizer out asynchronously
            tokenizer = run_sync(tokenizer)
        return tokenizer

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False)) if text else 0

    def _sampling_params(self, options: ChatOptions, max_new: int, schema: dict[str, Any] | None) -> tuple[Any, bool]:
        """SamplingParams, and whether outputs arrive as deltas (else cumulative, as in older vLLM)."""
        vllm = self._vllm
        kwargs: dict[str, Any] = {
            "max_tokens": max_new,
            "temperature": options.temperature if options.temperature is not None else 0.0,
        }
        if options.top_p is not None:
            kwargs["top_p"] = options.top_p
        if options.stop:
            kwargs["stop"] = options.stop
        if options.seed is not None:
            kwargs["seed"] = options.seed
        delta = True
        try:
            from vllm.sampling_params import RequestOutputKind

            kwargs["output_kind"] = RequestOutputKind.DELTA
        except ImportError:
            delta = False
        if schema is not None:
            kwargs.update(_structured_output(schema))
        return vllm.SamplingParams(**kwargs), delta

    async def raw_stream(self, request: PromptRequest, options: ChatOptions) -> AsyncGenerator[RawChunk, None]:
        prompt = render_prompt(self._tokenizer, request)
        prompt_tokens = len(self._tokenizer.encode(prompt, add_special_tokens=False))
        room = self.context_size - prompt_tokens
        if room <= 0:
            raise ContextOverflowError(
                f"the prompt ({prompt_tokens} tokens) does not fit the context window of {self.name} "
                f"({self.context_size} tokens)"
            )
        max_new = min(options.max_tokens or DEFAULT_MAX_NEW_TOKENS, room)
        params, delta_mode = self._sampling_params(options, max_new, request.schema)
        request_id = uuid.uuid4().hex
        seen = completion_tokens = 0
        finished = False
        try:
            async for output in self._engine.generate(prompt, params, request_id):
                choice = output.outputs[0]
                text = choice.text
                if delta_mode:
                    completion_tokens += len(choice.token_ids)
                else:  # older vLLM: the whole output so far
                    text, seen = text[seen:], len(text)
                    completion_tokens = len(choice.token_ids)
                if output.prompt_token_ids is not None:
                    prompt_tokens = len(output.prompt_token_ids)
                usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
                yield RawChunk(text=text, usage=usage, finish_reason=choice.finish_reason)
            finished = True
        finally:
            if not finished:
                await self._engine.abort(request_id)

    def close(self) -> None:
        shutdown = getattr(self._engine, "shutdown", None)
        if callable(shutdown):
            shutdown()


def _structured_output(schema: dict[str, Any]) -> dict[str, Any]:
    """The SamplingParams field that constrains output to `schema`, across vLLM versions."""
    try:
        from vllm.sampling_params import StructuredOutputsParams

        return {"structured_outputs": StructuredOutputsParams(json=schema)}
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(json=schema)}
