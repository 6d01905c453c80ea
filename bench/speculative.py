"""Speculative decoding on the embedded engine: generation tokens/s and identical output at temperature 0.

Drafts tried: none, n-gram lookups in the prompt and reply (`ngram_simple`, `ngram_mod`), and the 0.5B
model drafting for the 1.5B. Prompts: an answer that copies its evidence (a document question) and one
that does not (free text).

    .venv/bin/python -m bench.speculative [--drafts none,ngram_simple,ngram_mod,draft05]
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from bench.engine_sweep import time_request
from lector.llm.models import resolve_model
from lector.llm.threads import resolve_threads

EVIDENCE = (
    "[1] The keeper of the Aldermoor lighthouse, Mara Quint, trimmed the wick every evening at six and "
    "logged the passing ships in a green ledger that is now kept at the harbour museum.\n"
    "[2] In 1911 the lamp was converted from oil to acetylene, which let it burn unattended for a month.\n"
    "[3] The tower is 31 metres tall and its light can be seen 22 nautical miles out to sea.\n"
)
PROMPTS = {
    "copying": [
        {"role": "system", "content": "Answer from the evidence only, quoting it, and cite it as [n]."},
        {
            "role": "user",
            "content": EVIDENCE + "\nQuestion: what did the keeper do every evening, when was the "
            "lamp converted, and how tall is the tower? Quote the evidence.",
        },
    ],
    "free": [{"role": "user", "content": "Write a short paragraph about why lighthouses were built."}],
}


def load(path: str, draft: str, draft_path: str) -> Any:
    import xllamacpp

    choice = resolve_threads()
    params = xllamacpp.CommonParams()
    params.model.path = path
    params.n_ctx = 4096
    params.n_parallel = 1
    params.verbosity = 0
    params.cpuparams.n_threads = choice.threads
    params.cpuparams.poll = choice.poll
    params.cpuparams_batch.n_threads = choice.batch_threads
    params.cpuparams_batch.poll = choice.poll
    kinds = xllamacpp.common_speculative_type
    if draft == "draft05":
        params.speculative.types = [kinds.COMMON_SPECULATIVE_TYPE_DRAFT_SIMPLE]
        params.speculative.draft.mparams.path = draft_path
        params.speculative.draft.cpuparams.n_threads = choice.threads
        params.speculative.draft.cpuparams_batch.n_threads = choice.batch_threads
    elif draft != "none":
        params.speculative.types = [getattr(kinds, f"COMMON_SPECULATIVE_TYPE_{draft.upper()}")]
    return xllamacpp.Server(params)


def generate(server: Any, messages: list[dict[str, str]], gen: int) -> tuple[str, float, dict[str, Any]]:
    pieces: list[str] = []
    timings: dict[str, Any] = {}

    def on_chunk(chunk: Any) -> bool:
        if isinstance(chunk, dict):
            for choice in chunk.get("choices") or []:
                pieces.append((choice.get("delta") or {}).get("content") or "")
            timings.update(chunk.get("timings") or {})
        return False

    request = {
        "messages": messages,
        "max_tokens": gen,
        "temperature": 0,
        "seed": 1,
        "stream": True,
        "cache_prompt": False,
    }
    start = time.perf_counter()
    server.handle_chat_completions(request, on_chunk)
    return "".join(pieces), time.perf_counter() - start, timings


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--draft-model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--drafts", default="none,ngram_simple,ngram_mod,draft05")
    ap.add_argument("--gen", type=int, default=96)
    args = ap.parse_args()
    path = str(resolve_model(args.model, progress=False))
    draft_path = str(resolve_model(args.draft_model, progress=False))
    reference: dict[str, str] = {}
    print(f"{'draft':>13} {'prompt':>8} {'gen tok/s':>9} {'drafted':>8} {'accepted':>8} {'same output':>11}")
    for draft in args.drafts.split(","):
        server = load(path, draft, draft_path)
        time_request(server, {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "stream": True}, 5)
        for name, messages in PROMPTS.items():
            text, _, timings = generate(server, messages, args.gen)
            reference.setdefault(name, text)
            print(
                f"{draft:>13} {name:>8} {timings.get('predicted_per_second', 0.0):9.1f} "
                f"{timings.get('draft_n', 0):8} {timings.get('draft_n_accepted', 0):8} "
                f"{str(text == reference[name]):>11}",
                flush=True,
            )
        del server
    return 0


if __name__ == "__main__":
    sys.exit(main())
