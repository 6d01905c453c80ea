"""Build a backend from a short spec, so commands and configs can name a model in one string.

qwen2.5-coder-1.5b | qwen2.5-coder-0.5b        embedded GGUF model (the default is the 1.5B)
embedded:NAME_OR_PATH.gguf                      embedded engine on any GGUF file
openai:BASE_URL[#MODEL]                         any OpenAI-compatible server (vLLM, llama.cpp, Ollama)
transformers:PATH_OR_GGUF                       Hugging Face transformers, in process
vllm:MODEL                                      vLLM in process (needs a GPU and `pip install vllm`)
"""

from __future__ import annotations

import os
from typing import Any

from lector.llm.backend import Backend
from lector.llm.models import DEFAULT_MODEL


def default_spec() -> str:
    return os.environ.get("LECTOR_MODEL", DEFAULT_MODEL)


def is_embedded(spec: str | None) -> bool:
    """True when `spec` (None: the default) runs a model in this process, which takes a while to load."""
    kind, _, rest = (spec or default_spec()).partition(":")
    return not rest or kind in ("embedded", "transformers", "vllm")


def make_backend(spec: str | None = None, **kwargs: Any) -> Backend:
    spec = spec or default_spec()
    kind, _, rest = spec.partition(":")
    if not rest:
        kind, rest = "embedded", spec
    if kind == "embedded":
        from lector.llm.embedded import EmbeddedBackend

        return EmbeddedBackend(rest, **kwargs)
    if kind == "openai":
        from lector.llm.openai_http import OpenAIBackend

        base_url, _, model = rest.partition("#")
        return OpenAIBackend(base_url=base_url, model=model or "default", **kwargs)
    if kind == "transformers":
        from lector.llm.transformers_backend import TransformersBackend

        return TransformersBackend(rest, **kwargs)
    if kind == "vllm":
        from lector.llm.vllm_backend import VLLMBackend

        return VLLMBackend(rest, **kwargs)
    raise ValueError(f"unknown model spec {spec!r}: expected a model name, or embedded:/openai:/transformers:/vllm:")
