"""Berkeley Function Calling Leaderboard, single-turn categories, through any Lector backend.

The cases and the scoring are bfcl-eval's own (PyPI `bfcl-eval==2026.3.23`, installed apart from the project
by `bench/setup_bfcl.sh` into `bench/.bfcl-lib`): its dataset loader (with its language hints), its
`convert_to_tool` as its OpenAI-style handlers call it (`dict` becomes `object`, dots in names become `_`,
mapped back before scoring), its AST checker, and its rule for (ir)relevance (no call at all is right).
One backend call per case, tool_choice "auto".

    make bench-bfcl                                              # setup, then the live categories
    .venv/bin/python -m bench.bfcl --categories live_parallel,live_relevance --limit 40
    .venv/bin/python -m bench.bfcl --model openai:http://127.0.0.1:8000/v1 --cases 40:80

Develop on the live_* categories only: the non-live ones are kept back for an outside check. `--cases A:B`
takes the cases A..B of each category in a fixed shuffled order, so slices are samples and do not overlap.
Writes every case (calls, text, verdict) to bench/results/bfcl-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import random
import re
import sys
import time
import types
from collections.abc import AsyncGenerator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lector.llm.backend import Backend, ChatOptions
from lector.llm.call_gate import call_probability
from lector.llm.errors import LLMError
from lector.llm.factory import make_backend
from lector.llm.messages import Message, ToolSpec
from lector.llm.prompt_calling import PromptCallingBackend, PromptRequest, RawChunk

HERE = Path(__file__).resolve().parent
LIB = HERE / ".bfcl-lib"
CHECKER_MODEL = "lector"
LIVE = ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple", "live_irrelevance", "live_relevance")
KEPT_BACK = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance")
PUBLISHED: dict[str, dict[str, float]] = {
    # BFCL board (FC), as quoted in issue 16
    "Qwen2.5-1.5B-Instruct": {
        "live_simple": 74.0,
        "live_multiple": 66.1,
        "live_parallel": 50.0,
        "live_parallel_multiple": 45.8,
        "live_irrelevance": 60.8,
        "live_relevance": 94.4,
        "simple_python": 92.25,
        "multiple": 87.0,
        "parallel": 81.5,
        "parallel_multiple": 75.5,
        "irrelevance": 64.6,
    },
    "Qwen3-1.7B": {
        "simple_python": 91.0,
        "multiple": 92.5,
        "parallel": 88.5,
        "parallel_multiple": 80.0,
        "irrelevance": 80.0,
    },
    "target": {
        "live_simple": 80.0,
        "live_multiple": 75.0,
        "live_parallel": 70.0,
        "live_parallel_multiple": 60.0,
        "live_irrelevance": 80.0,
        "live_relevance": 85.0,
    },
}


def load_bfcl() -> types.SimpleNamespace:
    """bfcl-eval's loader, tool converter and checker. Its model registry imports every vendor's SDK; the
    checker only asks it whether a model writes dots as underscores, so a one-entry registry stands in."""
    if str(LIB) not in sys.path:
        sys.path.insert(0, str(LIB))

    @dataclass
    class _Config:
        underscore_to_dot: bool = False  # names are mapped back to their dotted form before scoring

    registry = types.ModuleType("bfcl_eval.constants.model_config")
    registry.MODEL_CONFIG_MAPPING = {CHECKER_MODEL: _Config()}  # type: ignore[attr-defined]
    sys.modules["bfcl_eval.constants.model_config"] = registry
    try:
        from bfcl_eval.constants.enums import Language, ModelStyle
        from bfcl_eval.constants.type_mappings import GORILLA_TO_OPENAPI
        from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
        from bfcl_eval.model_handler.utils import convert_to_tool
        from bfcl_eval.utils import is_empty_output, load_dataset_entry, load_ground_truth_entry
    except ImportError as exc:
        raise SystemExit(f"bfcl-eval is not installed ({exc}): run `bash bench/setup_bfcl.sh`") from exc
    return types.SimpleNamespace(
        Language=Language,
        style=ModelStyle.OPENAI_COMPLETIONS,
        mapping=GORILLA_TO_OPENAPI,
        ast_checker=ast_checker,
        convert_to_tool=convert_to_tool,
        is_empty_output=is_empty_output,
        load_cases=load_dataset_entry,
        load_answers=load_ground_truth_entry,
    )


@dataclass
class CaseResult:
    id: str
    category: str
    correct: bool
    seconds: float
    prompt_tokens: int
    completion_tokens: int
    calls: list[dict[str, Any]] = field(default_factory=list)
    text: str = ""
    error: str | None = None
    """The checker's complaint, or the backend's call error."""
    raw: str = ""
    """The model's raw output, for backends on the prompt-calling pipeline."""
    p_call: float | None = None
    """What the call gate read: the probability that the reply's first token starts a call."""


class RawRecorder:
    """Keeps the raw text a prompt-calling backend's transport yields (the model's output before parsing)."""

    def __init__(self, backend: Backend) -> None:
        self.pieces: list[str] = []
        self.p_call: float | None = None
        if isinstance(backend, PromptCallingBackend):
            transport = backend.raw_stream

            async def recording(request: PromptRequest, options: ChatOptions) -> AsyncGenerator[RawChunk, None]:
                async for chunk in transport(request, options):
                    if not request.probe_tokens:
                        self.pieces.append(chunk.text)  # the gate's probe is not the reply
                    elif chunk.top_tokens:
                        self.p_call = call_probability(chunk.top_tokens)
                    yield chunk

            backend.raw_stream = recording  # type: ignore[method-assign]

    def take(self) -> str:
        text, self.pieces = "".join(self.pieces), []
        return text

    def take_p_call(self) -> float | None:
        p_call, self.p_call = self.p_call, None
        return p_call


def tool_specs(bfcl: types.SimpleNamespace, functions: list[dict[str, Any]]) -> tuple[list[ToolSpec], dict[str, str]]:
    """Specs as BFCL's OpenAI-style handlers send them, and each sent name's original (dotted) name."""
    converted = bfcl.convert_to_tool(copy.deepcopy(functions), bfcl.mapping, bfcl.style)
    functions_sent = [t["function"] for t in converted]  # {"type": "function", "function": {...}}
    specs = [
        ToolSpec(name=f["name"], description=f.get("description", ""), parameters=f["parameters"])
        for f in functions_sent
    ]
    originals = {re.sub(r"\.", "_", f["name"]): f["name"] for f in functions}
    return specs, originals


def decoded_calls(message: Message, originals: dict[str, str]) -> list[dict[str, Any]]:
    """The calls in BFCL's decoded form, `[{name: {arg: value}}]`; arguments that are not an object stay text."""
    out: list[dict[str, Any]] = []
    for call in message.tool_calls:
        try:
            args = call.parsed_arguments()
        except ValueError:
            args = call.arguments
        out.append({originals.get(call.name, call.name): args})
    return out


def verdict(
    bfcl: types.SimpleNamespace,
    case: dict[str, Any],
    answer: dict[str, Any] | None,
    category: str,
    calls: list[dict[str, Any]],
) -> tuple[bool, str | None]:
    if "irrelevance" in category:
        return bool(bfcl.is_empty_output(calls)), None if bfcl.is_empty_output(calls) else "called a function"
    if "relevance" in category:
        return not bfcl.is_empty_output(calls), "made no call" if bfcl.is_empty_output(calls) else None
    if answer is None:
        return False, "no ground truth"
    result = bfcl.ast_checker(
        case["function"], calls, answer["ground_truth"], bfcl.Language.PYTHON, category, CHECKER_MODEL
    )
    return bool(result["valid"]), None if result["valid"] else "; ".join(map(str, result.get("error", [])))[:300]


async def run_case(
    backend: Backend,
    recorder: RawRecorder,
    bfcl: types.SimpleNamespace,
    case: dict[str, Any],
    answer: dict[str, Any] | None,
    category: str,
    options: ChatOptions,
) -> CaseResult:
    specs, originals = tool_specs(bfcl, case["function"])
    messages = [Message.from_openai(m) for m in case["question"][0]]
    started = time.perf_counter()
    try:
        result = await backend.achat(messages, specs, options)
    except LLMError as exc:  # e.g. a prompt over the context window: the case counts as failed
        return CaseResult(
            id=case["id"],
            category=category,
            correct=False,
            seconds=time.perf_counter() - started,
            prompt_tokens=0,
            completion_tokens=0,
            error=f"backend error: {exc}",
            raw=recorder.take(),
            p_call=recorder.take_p_call(),
        )
    seconds = time.perf_counter() - started
    calls = decoded_calls(result.message, originals)
    correct, why = verdict(bfcl, case, answer, category, calls)
    return CaseResult(
        id=case["id"],
        category=category,
        correct=correct,
        seconds=seconds,
        prompt_tokens=result.usage.prompt_tokens,
        completion_tokens=result.usage.completion_tokens,
        calls=calls,
        text=result.message.content[:500],
        error=why,
        raw=recorder.take(),
        p_call=recorder.take_p_call(),
    )


def selected(
    cases: list[dict[str, Any]], start: int, stop: int | None, ids: set[str] | None = None
) -> list[dict[str, Any]]:
    order = list(cases)
    random.Random(0).shuffle(order)
    if ids is not None:
        return [c for c in order if c["id"] in ids]
    return order[start:stop]


async def run_category(
    backend: Backend,
    recorder: RawRecorder,
    bfcl: types.SimpleNamespace,
    category: str,
    span: tuple[int, int | None],
    options: ChatOptions,
    ids: set[str] | None = None,
) -> list[CaseResult]:
    cases = selected(bfcl.load_cases(category), *span, ids)
    answers = {} if "relevance" in category else {a["id"]: a for a in bfcl.load_answers(category)}
    results = []
    for i, case in enumerate(cases, 1):
        r = await run_case(backend, recorder, bfcl, case, answers.get(case["id"]), category, options)
        results.append(r)
        right = sum(x.correct for x in results)
        mark = "ok " if r.correct else "BAD"
        print(
            f"  {category} {i}/{len(cases)} {mark} {r.id} {r.seconds:.1f}s {r.prompt_tokens}tok "
            f"calls={json.dumps(r.calls, ensure_ascii=False)[:160]} [{right}/{i}]"
            + (f" P(call)={r.p_call:.2f}" if r.p_call is not None else "")
            + (f" | {(r.error or '')[:120]} | raw={r.raw[:300]!r}" if not r.correct else ""),
            flush=True,
        )
    return results


def table(results: list[CaseResult], categories: list[str]) -> str:
    boards = list(PUBLISHED)
    head = "| category | n | Lector | prompt tok/case | s/case | " + " | ".join(boards) + " |"
    lines = [head, "|" + "---|" * (5 + len(boards))]
    for cat in categories:
        rows = [r for r in results if r.category == cat]
        if not rows:
            continue
        n = len(rows)
        acc = 100 * sum(r.correct for r in rows) / n
        tok = sum(r.prompt_tokens for r in rows) / n
        sec = sum(r.seconds for r in rows) / n
        published = " | ".join(f"{PUBLISHED[b][cat]:.1f}" if cat in PUBLISHED[b] else "" for b in boards)
        lines.append(f"| {cat} | {n} | {acc:.1f} | {tok:.0f} | {sec:.1f} | {published} |")
    return "\n".join(lines)


def parse_span(text: str) -> tuple[int, int | None]:
    start, _, stop = text.partition(":")
    return int(start or 0), int(stop) if stop else None


async def main_async(args: argparse.Namespace) -> None:
    bfcl = load_bfcl()
    categories = [c.strip() for c in args.categories.split(",") if c.strip()]
    span = parse_span(args.cases) if args.cases else (0, args.limit)
    ids = set(Path(args.ids).read_text().split()) if args.ids else None
    options = ChatOptions(tool_choice="auto", temperature=args.temperature, max_tokens=args.max_tokens)
    backend = make_backend(args.model) if args.model else make_backend()
    if isinstance(backend, PromptCallingBackend):
        backend.decide_calls = args.decide
        if args.gate:
            backend.call_gate = None if args.gate == "off" else float(args.gate)
    recorder = RawRecorder(backend)
    out = Path(args.out) if args.out else HERE / "results" / f"bfcl-{time.strftime('%Y-%m-%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    results: list[CaseResult] = []
    try:
        for category in categories:
            results += await run_category(backend, recorder, bfcl, category, span, options, ids)
            report = {
                "model": args.model or "default",
                "cases": f"ids from {args.ids}" if args.ids else args.cases or f"0:{args.limit}",
                "table": table(results, categories),
                "results": [asdict(r) for r in results],
            }
            out.write_text(json.dumps(report, ensure_ascii=False, indent=1))  # after each category
    finally:
        backend.close()
    print(table(results, categories))
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="a backend spec (llm.factory); default: the embedded default")
    ap.add_argument("--categories", default=",".join(LIVE), help="comma-separated BFCL categories")
    ap.add_argument("--limit", type=int, default=None, help="at most this many cases per category")
    ap.add_argument("--cases", default="", help="A:B, the cases A..B of each category in a fixed shuffled order")
    ap.add_argument("--ids", default="", help="a file of case ids (whitespace-separated): only those cases")
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--max-tokens", type=int, default=400)
    ap.add_argument(
        "--decide", action="store_true", help="a call / no-call decision before each reply (lazy-grammar engines)"
    )
    ap.add_argument(
        "--gate", default="", help="the call gate's threshold (llm.call_gate), or 'off'; default: the backend's own"
    )
    ap.add_argument("--out", default="", help="where to write the per-case JSON")
    args = ap.parse_args()
    kept = [c for c in args.categories.split(",") if c in KEPT_BACK]
    if kept:
        print(f"note: {', '.join(kept)} are kept back for the outside check; don't tune on them", file=sys.stderr)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
