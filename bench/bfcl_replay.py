"""Score a bench.bfcl run again, without a model: the raw replies it recorded go through today's call parsing
and post-processing, and bfcl-eval's checker judges the calls that come out, next to the verdicts recorded.

For changes downstream of the model's text (the call parser, argument coercion), this gives
their effect on the very same replies. A reply the call gate sent the no-call way is read for calls too, as the
backends read it.

    PYTHONPATH=.:bench/.bfcl-lib .venv/bin/python -m bench.bfcl_replay bench/results/bfcl-....json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.bfcl import PUBLISHED, decoded_calls, load_bfcl, tool_specs, verdict
from lector.llm.messages import Message
from lector.llm.prompt_calling import RawChunk, ReplyReader


def replayed_calls(raw: str, case: dict[str, Any], grounding: bool = True) -> list[dict[str, Any]]:
    specs, originals = tool_specs(load_bfcl(), case["function"])
    conversation = [Message.from_openai(m) for m in case["question"][0]] if grounding else None
    reader = ReplyReader(specs, "auto", conversation)
    reader.feed(RawChunk(text=raw))
    delta = reader.finish()
    return decoded_calls(Message.assistant(delta.text, tool_calls=delta.tool_calls), originals)


def replay(paths: list[str], show: bool, grounding: bool = True) -> dict[str, list[float]]:
    """Per category: cases, right as recorded, right as replayed, seconds and prompt tokens (sums)."""
    bfcl = load_bfcl()
    totals: dict[str, list[float]] = {}
    cache: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for path in paths:
        for r in json.loads(Path(path).read_text())["results"]:
            category = r["category"]
            if category not in cache:
                answers = {} if "relevance" in category else {a["id"]: a for a in bfcl.load_answers(category)}
                cache[category] = ({c["id"]: c for c in bfcl.load_cases(category)}, answers)
            cases, answers = cache[category]
            calls = replayed_calls(r.get("raw", ""), cases[r["id"]], grounding)
            correct, why = verdict(bfcl, cases[r["id"]], answers.get(r["id"]), category, calls)
            row = totals.setdefault(category, [0, 0, 0, 0.0, 0])
            seen = (1, bool(r["correct"]), correct, r.get("seconds") or 0.0, r.get("prompt_tokens") or 0)
            for i, v in enumerate(seen):
                row[i] += v
            if show and correct != r["correct"]:
                print(
                    f"{r['id']}: {r['correct']} -> {correct} {json.dumps(calls, ensure_ascii=False)[:200]} {why or ''}"
                )
    return totals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", help="bench.bfcl output files")
    ap.add_argument("--show", action="store_true", help="print every case whose verdict changed")
    ap.add_argument(
        "--no-grounding",
        action="store_true",
        help="keep calls on values the conversation never gave (llm.call_grounding)",
    )
    args = ap.parse_args()
    totals = replay(args.results, args.show, not args.no_grounding)
    boards = list(PUBLISHED)
    print("| category | n | recorded | replayed | s/case | prompt tok/case | " + " | ".join(boards) + " |")
    print("|" + "---|" * (6 + len(boards)))
    for category, (n, before, after, seconds, tokens) in totals.items():
        published = " | ".join(f"{PUBLISHED[b][category]:.1f}" if category in PUBLISHED[b] else "" for b in boards)
        print(
            f"| {category} | {n:.0f} | {100 * before / n:.1f} | {100 * after / n:.1f} | {seconds / n:.1f} "
            f"| {tokens / n:.0f} | {published} |"
        )


if __name__ == "__main__":
    main()
