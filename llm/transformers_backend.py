"""Hugging Face transformers, in process: an HF model folder, or a GGUF file dequantized by transformers.

torch and transformers are imported when a backend is built, never when `llm` is imported
(`pip install 'lector[transformers]'`). A GGUF file needs the `gguf` package; transformers dequantizes
it to full precision on load, which costs time and memory (the 0.5B model: about a minute and ~4 GB
on two CPU cores), so the embedded engine remains the better way to run GGUF files.

Tool calls go through `llm.prompt_calling`: with tool_choice 'auto' the specs are rendered by the
model's chat template when the template takes `tools` (Qwen's does), else by the pipeline's system
prompt. transformers has no grammar, so `json_schema` and forced tool choices are asked for in the
prompt and checked afterwards, not enforced while decoding.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from lector.llm.backend import ChatOptions, Usage
from lector.llm.errors import ContextOverflowError, LLMError, ModelNotFoundError
from lector.llm.messages import Message, ToolCall, ToolSpec
from lector.llm.prompt_calling import PromptCallingBackend, PromptRequest, RawChunk

DEFAULT_MAX_NEW_TOKENS = 1024
_CHAT_END_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<|endoftext|>", "<end_of_turn>")
_INSTALL_HINT = "the transformers backend needs torch and transformers: pip install 'lector[transformers]'"


def resolve_source(path_or_gguf: str | os.PathLike[str], gguf_file: str | None = None) -> tuple[str, str | None]:
    """(folder or hub id, GGUF file name in it or None) for a catalogue name, a .gguf path or an HF folder."""
    key = os.fspath(path_or_gguf)
    if gguf_file is None:
        from lector.llm.models import CATALOGUE, ensure_model

        if key in CATALOGUE:
            path = ensure_model(key)
            return str(path.parent), path.name
    path = Path(key).expanduser()
    if path.is_file():
        if gguf_file is not None:
            raise ModelNotFoundError(f"{path} is a file; gguf_file= goes with a folder")
        return str(path.parent), path.name
    if path.is_dir():
        if gguf_file is not None and not (path / gguf_file).is_file():
            raise ModelNotFoundError(f"no GGUF file {gguf_file!r} in {path}")
        return str(path), gguf_file
    if key.endswith(".gguf") or key.startswith((".", "/", "~")):
        raise ModelNotFoundError(f"no model at {key}: not a file nor a folder")
    return key, gguf_file  # a hub id; transformers finds it in the local HF cache or fails clearly


class _StopTrimmer:
    """Holds back streamed text that may be the start of a stop string; cuts the text at the first stop."""

    def __init__(self, stops: list[str] | None) -> None:
        self.stops = [s for s in stops or [] if s]
        self.hold = max((len(s) for s in self.stops), default=1) - 1
        self.buf = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        if not self.stops:
            return text
        self.buf += text
        cut = min((i for i in (self.buf.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            out, self.buf, self.stopped = self.buf[:cut], "", True
            return out
        safe = len(self.buf) - self.hold
        if safe <= 0:
            return ""
        out, self.buf = self.buf[:safe], self.buf[safe:]
        return out

    def finish(self) -> str:
        out, self.buf = ("" if self.stopped else self.buf), ""
        return out


def hf_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Messages as chat templates expect them: tool-call arguments as objects, content never None."""
    out: list[dict[str, Any]] = []
    for m in messages:
        item: dict[str, Any] = {"role": m.role, "content": m.content or ""}
        if m.tool_calls:
            item["tool_calls"] = [_hf_call(c) for c in m.tool_calls]
        if m.role == "tool":
            item["tool_call_id"] = m.tool_call_id
            if m.name:
                item["name"] = m.name
        out.append(item)
    return out


def _hf_call(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments_or_text()}}


def template_takes_tools(tokenizer: Any) -> bool:
    template = getattr(tokenizer, "chat_template", None)
    return isinstance(template, str) and "tools" in template


def render_prompt(tokenizer: Any, request: PromptRequest) -> str:
    """The prompt text of `request` through a HF tokenizer's chat template (tool specs included when the
    pipeline left them to the template); a tokenizer without a template gets plain role-prefixed lines."""
    if not getattr(tokenizer, "chat_template", None):
        lines = [f"{m.role}: {m.content}" for m in request.messages]
        return "\n".join(lines) + "\nassistant: "
    kwargs: dict[str, Any] = {"add_generation_prompt": True, "tokenize": False}
    if request.template_tools:
        kwargs["tools"] = [t.to_openai() for t in request.template_tools]
    try:
        prompt = tokenizer.apply_chat_template(hf_messages(request.messages), **kwargs)
    except Exception as exc:  # template errors are jinja exceptions of many kinds
        raise LLMError(f"the model's chat template failed: {exc}") from exc
    return str(prompt)


class TransformersBackend(PromptCallingBackend):
    """A causal LM run by transformers on `device` ("cpu", "cuda", "cuda:1", "mps").

    `path_or_gguf`: a catalogue name (its GGUF is joined on first use), a .gguf file, an HF model folder
    (with `gguf_file=` naming a GGUF inside it, or a safetensors model), or a hub id already in the HF
    cache. `dtype` defaults to float32 on CPU and bfloat16 elsewhere. `threads` sets torch's CPU threads
    (a process-wide setting). One generation runs at a time (parallel_slots = 1).
    Tool calls are prompt-based (`llm.prompt_calling`); transformers has no grammar, so a forced call
    and `json_schema` are asked for in the prompt and checked afterwards.
    """

    parallel_slots = 1
    grammar = False

    def __init__(
        self,
        path_or_gguf: str | os.PathLike[str],
        gguf_file: str | None = None,
        device: str = "cpu",
        dtype: str | None = None,
        context_size: int | None = None,
        threads: int | None = None,
        trust_remote_code: bool = False,
        template_tools: bool = True,
    ) -> None:
        try:
            import torch
            import transformers
        except ImportError as exc:
            raise LLMError(f"{_INSTALL_HINT} ({exc})") from exc
        self._torch = torch
        folder, gguf = resolve_source(path_or_gguf, gguf_file)
        if gguf is not None:
            try:
                import gguf as _gguf  # noqa: F401  (transformers needs it to read GGUF files)
            except ImportError as exc:
                raise LLMError("loading a GGUF file through transformers needs the `gguf` package") from exc
        if threads:
            torch.set_num_threads(threads)
        self.device = device
        self.name = f"transformers:{gguf or Path(folder).name}"
        torch_dtype = getattr(torch, dtype) if dtype else (torch.float32 if device == "cpu" else torch.bfloat16)
        dtype_key = "dtype" if _version_at_least(transformers.__version__, (4, 56)) else "torch_dtype"
        load: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        if gguf is not None:
            load["gguf_file"] = gguf
        self._tokenizer: Any
        self._model: Any
        try:
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(folder, **load)
            model: Any = transformers.AutoModelForCausalLM.from_pretrained(folder, **load, **{dtype_key: torch_dtype})
        except OSError as exc:
            raise ModelNotFoundError(f"cannot load a transformers model from {folder}: {exc}") from exc
        self._model = model.to(device).eval()
        configured = getattr(self._model.config, "max_position_embeddings", None)
        self.context_size = context_size or int(configured or 8192)
        self.template_tools = template_tools and template_takes_tools(self._tokenizer)
        self._eos_ids = self._end_token_ids()
        self._lock = threading.Lock()

    def _end_token_ids(self) -> list[int]:
        ids: set[int] = set()
        configured = getattr(self._model.generation_config, "eos_token_id", None)
        if isinstance(configured, int):
            ids.add(configured)
        elif configured:
            ids.update(int(i) for i in configured)
        if self._tokenizer.eos_token_id is not None:
            ids.add(int(self._tokenizer.eos_token_id))
        vocab = self._tokenizer.get_vocab()
        ids.update(vocab[t] for t in _CHAT_END_TOKENS if t in vocab)
        return sorted(ids)

    # ---------------------------------------------------------------- prompt

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False)) if text else 0

    def render(
        self, messages: list[Message], tools: list[ToolSpec] | None = None, options: ChatOptions | None = None
    ) -> str:
        """The prompt text for `messages`."""
        return render_prompt(self._tokenizer, self.prompt_request(messages, tools, options or ChatOptions()))

    # ---------------------------------------------------------------- generation

    async def raw_stream(self, request: PromptRequest, options: ChatOptions) -> AsyncGenerator[RawChunk, None]:
        prompt = render_prompt(self._tokenizer, request)
        inputs = self._tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(self.device)
        prompt_tokens = int(inputs["input_ids"].shape[1])
        room = self.context_size - prompt_tokens
        if room <= 0 or (options.max_tokens is not None and options.max_tokens > room):
            raise ContextOverflowError(
                f"the prompt ({prompt_tokens} tokens) plus {options.max_tokens or 1} new tokens does not fit "
                f"the context window of {self.name} ({self.context_size} tokens)"
            )
        max_new = min(options.max_tokens or DEFAULT_MAX_NEW_TOKENS, room)
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str | None] = asyncio.Queue()
        cancel = threading.Event()
        outcome: dict[str, Any] = {}
        thread = threading.Thread(
            target=self._generate,
            args=(inputs, max_new, options, loop, pieces, cancel, outcome),
            name="transformers-generate",
            daemon=True,
        )
        thread.start()
        trimmer = _StopTrimmer(options.stop)
        try:
            while (piece := await pieces.get()) is not None:
                yield RawChunk(text=trimmer.feed(piece))
                if trimmer.stopped:
                    cancel.set()
        finally:
            cancel.set()
        if "error" in outcome:
            raise LLMError(f"{self.name} failed while generating: {outcome['error']}") from outcome["error"]
        completion = int(outcome.get("completion_tokens", 0))
        cut = completion >= max_new and not outcome.get("ended", False) and not trimmer.stopped
        yield RawChunk(
            text=trimmer.finish(),
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=completion),
            finish_reason="length" if cut else "stop",
        )

    def _generate(
        self,
        inputs: Any,
        max_new: int,
        options: ChatOptions,
        loop: asyncio.AbstractEventLoop,
        pieces: asyncio.Queue[str | None],
        cancel: threading.Event,
        outcome: dict[str, Any],
    ) -> None:
        """Runs in a thread: generate under the lock, pushing decoded text onto the event loop's queue."""
        import transformers

        torch = self._torch

        def push(text: str | None) -> None:
            try:
                loop.call_soon_threadsafe(pieces.put_nowait, text)
            except RuntimeError:  # the consumer's loop is closed: stop generating
                cancel.set()

        class Streamer(transformers.TextStreamer):
            def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
                if text:
                    push(text)

        class Cancelled(transformers.StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool, device=input_ids.device)

        sample = options.temperature is not None and options.temperature > 0
        config = transformers.GenerationConfig(
            max_new_tokens=max_new,
            do_sample=sample,
            temperature=options.temperature if sample else None,
            top_p=options.top_p if sample else None,
            top_k=None,
            eos_token_id=self._eos_ids or None,
            pad_token_id=self._tokenizer.pad_token_id or (self._eos_ids[0] if self._eos_ids else None),
        )
        try:
            with self._lock:
                if cancel.is_set():
                    return
                if options.seed is not None:
                    torch.manual_seed(options.seed)
                with torch.inference_mode():
                    output = self._model.generate(
                        **inputs,
                        generation_config=config,
                        streamer=Streamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True),
                        stopping_criteria=transformers.StoppingCriteriaList([Cancelled()]),
                    )
            new_tokens = output[0][inputs["input_ids"].shape[1] :]
            outcome["completion_tokens"] = int(new_tokens.shape[0])
            outcome["ended"] = bool(new_tokens.shape[0]) and int(new_tokens[-1]) in self._eos_ids
        except Exception as exc:
            outcome["error"] = exc
        finally:
            push(None)

    def close(self) -> None:
        self._model = None
        self._tokenizer = None


def _version_at_least(version: str, wanted: tuple[int, int]) -> bool:
    parts: list[int] = []
    for piece in version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts) >= wanted
