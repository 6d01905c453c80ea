"""Raw xllamacpp under competing CPU load: prompt and generation tokens/s per thread and polling setting.

Each setting loads its own engine (threads are fixed at load), then times one request of about 450
prompt tokens; generation stops after `--gen` tokens or `--gen-seconds`, whichever comes first, so a
collapsed setting costs seconds, not minutes. Burners are busy-looping processes this bench starts.

    .venv/bin/python -m bench.engine_sweep --burners 0,1,2 [--model qwen2.5-coder-1.5b]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench.burners import LoadMeter, burners
from lector.llm.models import resolve_model

FILLER = (
    "Lector reads long documents in three levels: it retrieves chunks with BM25, reads the candidate "
    "chunks in parallel to copy the relevant sentences, and reasons stepwise over sub-questions. "
)


@dataclass(frozen=True)
class Setting:
    threads: int
    batch_threads: int
    poll: int

    @property
    def label(self) -> str:
        return f"t{self.threads}/b{self.batch_threads}/poll{self.poll}"


DEFAULT_SETTINGS = "2/2/50,2/2/0,2/2/100,1/1/0,1/1/50,1/2/0"
"""threads/batch threads/poll; 2/2/50 is llama.cpp's own default on 2 cores."""


@dataclass
class Timed:
    prompt_tokens: int
    prompt_s: float
    generated: int
    gen_s: float
    load_s: float
    others: float
    """Cores busy with other processes than the bench and its burners during the request."""

    @property
    def prompt_tps(self) -> float:
        return self.prompt_tokens / self.prompt_s if self.prompt_s else 0.0

    @property
    def gen_tps(self) -> float:
        return (self.generated - 1) / self.gen_s if self.gen_s > 0 else 0.0


def load_engine(path: str, setting: Setting, n_ctx: int = 4096) -> Any:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = path
    params.n_ctx = n_ctx
    params.n_parallel = 1
    params.cache_prompt = False
    params.verbosity = 0
    params.cpuparams.n_threads = setting.threads
    params.cpuparams.poll = setting.poll
    params.cpuparams_batch.n_threads = setting.batch_threads
    params.cpuparams_batch.poll = setting.poll
    return xllamacpp.Server(params)


def time_request(server: Any, request: dict[str, Any], gen_seconds: float) -> tuple[float, list[float], int]:
    """(start, token arrival times, prompt tokens); generation is cut after `gen_seconds`."""
    marks: list[float] = []
    usage: dict[str, Any] = {}

    def on_chunk(chunk: Any) -> bool:
        if isinstance(chunk, dict):
            for choice in chunk.get("choices") or []:
                if (choice.get("delta") or {}).get("content"):
                    marks.append(time.perf_counter())
            usage.update(chunk.get("usage") or {})
        return bool(marks) and marks[-1] - marks[0] > gen_seconds

    start = time.perf_counter()
    server.handle_chat_completions(request, on_chunk)
    return start, marks, int(usage.get("prompt_tokens", 0))


def request_for(nonce: int, gen: int) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": f"Run {nonce}. You are a helpful assistant.\n\n" + FILLER * 12},
            {"role": "user", "content": "Count from 1 to 400, separated by commas. Output only the numbers."},
        ],
        "max_tokens": gen,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
        "cache_prompt": False,
    }


def measure(path: str, setting: Setting, args: argparse.Namespace, nonce: int, meter: LoadMeter) -> list[Timed]:
    """`args.repeats` timed requests on one engine loaded with `setting`."""
    t0 = time.perf_counter()
    server = load_engine(path, setting)
    load_s = time.perf_counter() - t0
    time_request(server, {**request_for(-nonce, 2), "messages": [{"role": "user", "content": "Hi"}]}, 5)
    runs = []
    for i in range(args.repeats):
        meter.start()
        start, marks, prompt_tokens = time_request(server, request_for(nonce + i, args.gen), args.gen_seconds)
        others = meter.stop()
        prompt_tokens = prompt_tokens or _PROMPT_TOKENS.get(0, 0)  # a cut stream carries no usage
        _PROMPT_TOKENS[0] = prompt_tokens
        end = marks or [time.perf_counter()]
        runs.append(Timed(prompt_tokens, end[0] - start, len(marks), end[-1] - end[0], load_s, others))
    del server
    return runs


_PROMPT_TOKENS: dict[int, int] = {}


def parse_settings(text: str) -> list[Setting]:
    out = []
    for item in text.split(","):
        t, b, p = (int(v) for v in item.split("/"))
        out.append(Setting(t, b, p))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--burners", default="0,1,2", help="competing busy processes, comma-separated counts")
    ap.add_argument("--settings", default=DEFAULT_SETTINGS, help="threads/batch_threads/poll, comma-separated")
    ap.add_argument("--gen", type=int, default=64)
    ap.add_argument("--gen-seconds", type=float, default=12.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    path = str(resolve_model(args.model, progress=False))
    settings = parse_settings(args.settings)
    print(
        f"{args.model}: ~450 prompt tokens, up to {args.gen} generated, {args.repeats} runs per setting "
        f"(median / best); 'others' = cores busy with processes outside this bench",
        flush=True,
    )
    print(f"{'burners':>7} {'setting':>16} {'prompt tok/s':>14} {'gen tok/s':>12} {'others':>6}")
    nonce = 10000 + int(time.time()) % 80000  # five digits: the same prompt length every run
    for count in (int(c) for c in args.burners.split(",")):
        with burners(count) as pids:
            time.sleep(0.5)
            for setting in settings:
                nonce += 10
                runs = measure(path, setting, args, nonce, LoadMeter(pids))
                print(
                    f"{count:>7} {setting.label:>16} {_spread([r.prompt_tps for r in runs]):>14} "
                    f"{_spread([r.gen_tps for r in runs]):>12} {statistics.median(r.others for r in runs):6.2f}",
                    flush=True,
                )
    return 0


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} / {max(values):.1f}"


if __name__ == "__main__":
    sys.exit(main())
