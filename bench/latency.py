"""Latency a person sees, idle and under competing CPU load, with Lector's engine settings or llama.cpp's.

Per run (one engine setting, one number of busy-looping burner processes, started by this bench after
the model has loaded, as when a laptop gets busy while Lector runs) it times:

  ttft       first visible token of a chat answer
  tool       a chat turn that calls the calculator once, to its final answer
  chat2      the second turn of a chat (system prompt, tools and the first turn repeated), cold (no prompt
             cache) and warm (the slot still holds the conversation)
  l0..l3     an answer per reading level over a document (Level 0: a short one read whole; Levels 1-3:
             about 30k tokens of the Brown corpus with invented facts; Level 3 on a two-hop question)
  tps        prompt and generation tokens/s, EmbeddedBackend against raw xllamacpp on the same request

Engines: `lector` (threads from the free cores, no busy-polling: `llm.threads`) or `llamacpp` (llama.cpp's
defaults: every core, polling 50). Each result is appended as a JSON line to `--out`; `--table` prints
what the file holds side by side.

    .venv/bin/python -m bench.latency --engine lector --burners 0,1 --parts ttft,tool,chat2,l0,l1,tps
    .venv/bin/python -m bench.latency --engine llamacpp --burners 1,2 --parts l2,l3 --part-timeout 60
    .venv/bin/python -m bench.latency --table
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bench import eval_needles, llm_overhead
from bench.burners import LoadMeter, burners
from lector.llm import embedded
from lector.llm.backend import ChatOptions
from lector.llm.embedded import EmbeddedBackend
from lector.llm.threads import ThreadChoice
from lector.retrieval.keywords import KeywordCache

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "results" / "latency.jsonl"
PARTS = ("ttft", "tool", "chat2", "l0", "l1", "l2", "l3", "tps")
SYSTEM = "You are a helpful assistant. Answer briefly."
LLAMACPP_DEFAULT = ThreadChoice(threads=2, batch_threads=2, poll=50, reason="llama.cpp defaults")
Result = dict[str, Any]


_LECTOR_THREADS = embedded.resolve_threads


def use_engine(engine: str) -> None:
    if engine == "llamacpp":
        embedded.resolve_threads = lambda requested=None: LLAMACPP_DEFAULT  # type: ignore[assignment]
    else:
        embedded.resolve_threads = _LECTOR_THREADS


async def first_token(backend: EmbeddedBackend) -> Result:
    from lector.agent.assistant import Assistant
    from lector.agent.events import TextDelta

    bot = Assistant(backend, system=SYSTEM)
    start = time.perf_counter()
    first = None
    async for event in bot.astream(f"Name three rivers. ({random.random():.6f})"):
        if isinstance(event, TextDelta) and first is None:
            first = time.perf_counter() - start
    return {"ttft_s": first, "total_s": time.perf_counter() - start}


async def tool_turn(backend: EmbeddedBackend) -> Result:
    from lector.agent.assistant import Assistant
    from lector.agent.events import Final, ToolCallStarted

    bot = Assistant(backend, tools=["calculator"], system=SYSTEM)
    a, b = random.randrange(10000, 99999), random.randrange(1000, 9999)  # a new prompt: nothing cached
    start, called, answer = time.perf_counter(), 0, ""
    async for event in bot.astream(f"What is {a} * {b}? Use the calculator."):
        called += isinstance(event, ToolCallStarted)
        if isinstance(event, Final):
            answer = event.text
    correct = str(a * b) in answer.replace(",", "")
    return {"total_s": time.perf_counter() - start, "tool_calls": called, "correct": correct}


async def second_turn(backend: EmbeddedBackend) -> Result:
    """The same two-turn chat twice: without the prompt cache, then with it (timing the second turn)."""
    from lector.agent.assistant import Assistant

    out: Result = {}
    for label, cache in (("cold", False), ("warm", True)):
        backend.prompt_cache = cache
        bot = Assistant(backend, tools=["calculator"], system=SYSTEM + f" Session {random.random():.6f}.")
        await bot.aask("In two sentences, what is a lighthouse for?")
        start = time.perf_counter()
        await bot.aask("And who keeps it running?")
        out[f"{label}_s"] = time.perf_counter() - start
        out[f"{label}_prompt_per_second"] = (backend.last_timings or {}).get("prompt_per_second")
        out[f"{label}_cached_tokens"] = (backend.last_timings or {}).get("cache_n")
    backend.prompt_cache = True
    out["speedup"] = out["cold_s"] / out["warm_s"] if out["warm_s"] else None
    return out


class Documents:
    """A short document for Level 0 and a ~30k-token one with invented facts for Levels 1-3.

    Each `seed` gives other text, names and values of the same sizes.
    """

    def __init__(self, folder: Path, seed: int = 13) -> None:
        from lector.retrieval.library import Library

        rng = random.Random(seed)
        self.questions = eval_needles.make_questions(rng, 1, 1)
        long_text = eval_needles.place(eval_needles.haystack(30_000, rng), self.questions, rng)
        short_q = eval_needles.make_questions(random.Random(seed + 1000), 1, 0)[0]
        short_text = eval_needles.place(eval_needles.haystack(1_500, rng), [short_q], rng)
        self.short_question = short_q
        self.library = Library(cache_dir=folder / f"cache-{seed}")
        self.long_id = self.library.add_text(long_text, "haystack.txt")
        self.short_id = self.library.add_text(short_text, "short.txt")


async def read_level(backend: EmbeddedBackend, docs: Documents, level: int) -> Result:
    from lector.agent.reader import aask

    question = docs.short_question if level == 0 else docs.questions[1 if level == 3 else 0]
    doc_id = docs.short_id if level == 0 else docs.long_id
    start = time.perf_counter()
    answer = await aask(docs.library, question.question, level, backend, doc_ids=[doc_id], keyword_cache=KeywordCache())
    return {
        "total_s": time.perf_counter() - start,
        "correct": eval_needles.correct(answer.answer, question.answer),
        "calls": answer.usage.llm_calls,
        "prompt_tokens": answer.usage.prompt_tokens,
        "completion_tokens": answer.usage.completion_tokens,
    }


async def throughput(backend: EmbeddedBackend) -> Result:
    options = ChatOptions(max_tokens=48, temperature=0, seed=1)
    trial = random.randrange(1000, 9999)
    request = backend.build_request(llm_overhead.messages_for(trial, "raw", 12), None, options)
    raw = await asyncio.to_thread(llm_overhead.run_raw, backend, request)
    messages = llm_overhead.messages_for(trial, "embedded", 12)
    ours = await asyncio.to_thread(llm_overhead.run_embedded, backend, messages, options)
    return {
        "raw_prompt_tps": raw.prompt_tps,
        "raw_gen_tps": raw.gen_tps,
        "prompt_tps": ours.prompt_tps,
        "gen_tps": ours.gen_tps,
        "engine_prompt_tps": ours.engine_prompt_tps,
        "engine_gen_tps": ours.engine_gen_tps,
    }


def part_runner(part: str, backend: EmbeddedBackend, docs: Documents) -> Callable[[], Coroutine[Any, Any, Result]]:
    if part.startswith("l"):
        return lambda: read_level(backend, docs, int(part[1:]))
    runners: dict[str, Callable[[EmbeddedBackend], Coroutine[Any, Any, Result]]] = {
        "ttft": first_token,
        "tool": tool_turn,
        "chat2": second_turn,
        "tps": throughput,
    }
    return lambda: runners[part](backend)


def parse_parts(text: str) -> list[str]:
    parts = [p for p in text.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown parts: {', '.join(sorted(unknown))} (known: {', '.join(PARTS)})")
    return parts


async def timed_part(part: str, backend: EmbeddedBackend, docs: Documents, limit: float) -> Result:
    """The part's figures, or how long it ran before it was stopped at `limit` seconds."""
    try:
        return await asyncio.wait_for(part_runner(part, backend, docs)(), limit)
    except TimeoutError:
        return {"total_s": limit, "timed_out": True}


def run(args: argparse.Namespace) -> None:
    """Per engine and burner count (burners start after the model has loaded), every part in turn."""
    with tempfile.TemporaryDirectory() as folder:
        for engine in args.engine.split(","):
            run_engine(args, engine, Path(folder) / engine)


def run_engine(args: argparse.Namespace, engine: str, folder: Path) -> None:
    """Per burner count a freshly loaded engine (an empty prompt cache) and the same documents, so that every
    column asks the same questions cold and the columns compare like for like."""
    use_engine(engine)
    docs = Documents(folder, seed=13)
    for count in (int(c) for c in args.burners.split(",")):
        backend = EmbeddedBackend(args.model, n_ctx=8192, n_parallel=4, progress=False)
        threads = backend.threads.describe() if backend.threads else ""
        print(f"{engine}, {count} burner(s): {backend.name} on {threads}", flush=True)
        asyncio.run(first_token(backend))  # warm-up
        parts = parse_parts(args.loaded_parts if count and args.loaded_parts else args.parts)
        with burners(count) as pids:
            for part in parts:
                meter = LoadMeter(pids)
                meter.start()
                result = asyncio.run(timed_part(part, backend, docs, args.part_timeout))
                row = {
                    "engine": engine,
                    "burners": count,
                    "part": part,
                    "threads": threads,
                    "others": round(meter.stop(), 2),
                    "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    **result,
                }
                print(json.dumps(row), flush=True)
                with open(args.out, "a") as f:
                    f.write(json.dumps(row) + "\n")
        backend.close()


COLUMNS = [
    ("ttft", "ttft_s", "first token s"),
    ("tool", "total_s", "tool turn s"),
    ("chat2", "cold_s", "2nd turn cold s"),
    ("chat2", "warm_s", "2nd turn warm s"),
    ("l0", "total_s", "L0 s"),
    ("l1", "total_s", "L1 s"),
    ("l2", "total_s", "L2 s"),
    ("l3", "total_s", "L3 s"),
    ("tps", "prompt_tps", "prompt tok/s"),
    ("tps", "gen_tps", "gen tok/s"),
    ("tps", "raw_prompt_tps", "raw prompt tok/s"),
    ("tps", "raw_gen_tps", "raw gen tok/s"),
]


def table(path: Path) -> str:
    """Median of each figure per engine and burner count: one column per (engine, burners)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    groups = sorted({(r["engine"], r["burners"]) for r in rows})
    lines = [
        "| figure | " + " | ".join(f"{e}, {b} burner(s)" for e, b in groups) + " |",
        "|---|" + "---|" * len(groups),
    ]
    for part, key, label in COLUMNS:
        cells = []
        for engine, count in groups:
            found = [
                r
                for r in rows
                if (r["engine"], r["burners"], r["part"]) == (engine, count, part)
                and isinstance(r.get(key), int | float)
            ]
            stopped = ">" if any(r.get("timed_out") for r in found) else ""  # stopped at the time limit
            cells.append(f"{stopped}{statistics.median(r[key] for r in found):.1f}" if found else "")
        if any(cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", default="lector", help="lector, llamacpp, or both comma-separated (run in turn)")
    ap.add_argument("--burners", default="0", help="busy processes started after the model loads; counts, e.g. 0,1,2")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    ap.add_argument("--loaded-parts", default="", help="the parts run under burners (default: --parts)")
    ap.add_argument("--part-timeout", type=float, default=150.0, help="seconds before a part is stopped")
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--table", action="store_true", help="print the table of what --out holds, run nothing")
    args = ap.parse_args()
    if args.table:
        print(table(args.out))
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
