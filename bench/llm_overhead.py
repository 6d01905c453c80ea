"""Overhead of the embedded backend over raw xllamacpp: tokens/s, side by side, on the same prompt.

Both sides use the same loaded engine and the exact same request; trials alternate which goes first,
and every trial starts with a fresh nonce so no prompt cache is reused. Speeds are measured from the
caller's side (prompt: until the first token arrives; generation: first to last token); the engine's
own timings are shown as well.

    .venv/bin/python -m bench.llm_overhead [--model qwen2.5-coder-0.5b] [--trials 3] [--gen 64]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

from lector.llm.backend import ChatOptions
from lector.llm.embedded import EmbeddedBackend
from lector.llm.messages import Message

FILLER = (
    "Lector reads long documents in three levels: it retrieves chunks with BM25, reads the candidate "
    "chunks in parallel to copy the relevant sentences, and reasons stepwise over sub-questions. "
)


@dataclass
class Run:
    prompt_tokens: int
    completion_tokens: int
    prompt_s: float
    gen_s: float
    engine_prompt_tps: float
    engine_gen_tps: float

    @property
    def prompt_tps(self) -> float:
        return self.prompt_tokens / self.prompt_s

    @property
    def gen_tps(self) -> float:
        return (self.completion_tokens - 1) / self.gen_s if self.gen_s > 0 else 0.0

    @property
    def prompt_efficiency(self) -> float:
        """Caller-side speed over the engine's own: what the caller loses, immune to machine load."""
        return self.prompt_tps / self.engine_prompt_tps if self.engine_prompt_tps else 0.0

    @property
    def gen_efficiency(self) -> float:
        return self.gen_tps / self.engine_gen_tps if self.engine_gen_tps else 0.0


def messages_for(trial: int, side: str, repeats: int) -> list[Message]:
    nonce = f"Session {trial:04d}{'ab'[side == 'embedded']}."  # same token count on both sides, no cache hits
    return [
        Message.system(f"{nonce} You are a helpful assistant.\n\n" + FILLER * repeats),
        Message.user("Count from 1 to 400, separated by commas. Output only the numbers."),
    ]


def run_raw(backend: EmbeddedBackend, request: dict[str, Any]) -> Run:
    marks: list[float] = []
    final: dict[str, Any] = {}

    def on_chunk(chunk: dict[str, Any]) -> bool:
        for choice in chunk.get("choices") or []:
            if (choice.get("delta") or {}).get("content"):
                marks.append(time.perf_counter())
        if chunk.get("usage"):
            final.update(chunk)
        return False

    start = time.perf_counter()
    backend.engine.handle_chat_completions(request, on_chunk)
    return _run(start, marks, final)


def run_embedded(backend: EmbeddedBackend, messages: list[Message], options: ChatOptions) -> Run:
    marks: list[float] = []
    usage: Any = None

    async def consume() -> None:
        nonlocal usage
        async for delta in backend.astream(messages, None, options):
            if delta.text:
                marks.append(time.perf_counter())
            if delta.usage is not None:
                usage = delta.usage

    start = time.perf_counter()
    asyncio.run(consume())
    timings = backend.last_timings or {}
    final = {
        "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens},
        "timings": timings,
    }
    return _run(start, marks, final)


def _run(start: float, marks: list[float], final: dict[str, Any]) -> Run:
    usage, timings = final.get("usage") or {}, final.get("timings") or {}
    return Run(
        prompt_tokens=usage.get("prompt_tokens", 0),
        completion_tokens=usage.get("completion_tokens", 0),
        prompt_s=marks[0] - start,
        gen_s=marks[-1] - marks[0],
        engine_prompt_tps=timings.get("prompt_per_second", 0.0),
        engine_gen_tps=timings.get("predicted_per_second", 0.0),
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--gen", type=int, default=64, help="tokens to generate per run")
    ap.add_argument("--repeats", type=int, default=12, help="filler paragraphs (about 35 tokens each)")
    ap.add_argument("--threads", type=int, default=None, help="default: $LECTOR_THREADS, else chosen from the load")
    args = ap.parse_args()

    t0 = time.perf_counter()
    backend = EmbeddedBackend(args.model, n_ctx=4096, n_parallel=1, n_threads=args.threads)
    threads = backend.threads.describe() if backend.threads else "?"
    print(f"model {backend.name} loaded in {time.perf_counter() - t0:.1f} s on {threads}")
    options = ChatOptions(max_tokens=args.gen, temperature=0, seed=1)
    run_embedded(backend, messages_for(9999, "embedded", 1), ChatOptions(max_tokens=4))  # warm-up

    raw: list[Run] = []
    emb: list[Run] = []
    for trial in range(args.trials):
        request = backend.build_request(messages_for(trial, "raw", args.repeats), None, options)
        embedded_messages = messages_for(trial, "embedded", args.repeats)
        if trial % 2 == 0:
            raw.append(run_raw(backend, request))
            emb.append(run_embedded(backend, embedded_messages, options))
        else:
            emb.append(run_embedded(backend, embedded_messages, options))
            raw.append(run_raw(backend, request))
        print(
            f"trial {trial + 1}: raw {raw[-1].prompt_tps:6.1f} / {raw[-1].gen_tps:5.1f} tok/s, "
            f"embedded {emb[-1].prompt_tps:6.1f} / {emb[-1].gen_tps:5.1f} tok/s (prompt / generation)"
        )
    backend.close()

    def med(runs: list[Run], attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in runs)

    rows = [
        ("prompt tok/s (caller)", "prompt_tps"),
        ("generation tok/s (caller)", "gen_tps"),
        ("prompt tok/s (engine timings)", "engine_prompt_tps"),
        ("generation tok/s (engine timings)", "engine_gen_tps"),
        ("prompt: caller / engine speed", "prompt_efficiency"),
        ("generation: caller / engine speed", "gen_efficiency"),
    ]
    print(
        f"\n{args.model}: {raw[0].prompt_tokens} prompt tokens, {raw[0].completion_tokens} generated, "
        f"median of {args.trials} trials"
    )
    print(f"{'metric':36} {'raw xllamacpp':>14} {'EmbeddedBackend':>16} {'ratio':>7}")
    ratios: dict[str, float] = {}
    for label, attr in rows:
        r, e = med(raw, attr), med(emb, attr)
        ratios[attr] = e / r if r else 0.0
        fmt = "{:14.1%}" if "efficiency" in attr else "{:14.1f}"
        print(f"{label:36} {fmt.format(r)} {fmt.format(e):>16} {ratios[attr]:7.1%}")
    direct = min(ratios["prompt_tps"], ratios["gen_tps"])
    relative = min(ratios["prompt_efficiency"], ratios["gen_efficiency"])
    print(
        f"\nEmbeddedBackend / raw tok/s, worst of prompt and generation: {direct:.1%} "
        f"(noisy when the machine is shared)"
    )
    print(
        f"EmbeddedBackend / raw, caller-vs-engine speed, worst of the two: {relative:.1%} "
        f"(target >= 95%: {'met' if relative >= 0.95 else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
