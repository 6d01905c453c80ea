"""How often `llm.call_grounding` would hold back a right call: BFCL's own answers, put to it as calls.

For every case of the live call categories, each answer's first accepted value of every argument becomes the call,
and the conversation is the case's. A call is counted as held back when some argument has no accepted value that
grounding lets through. No model runs; this measures the rule alone, over all cases.

    PYTHONPATH=.:bench/.bfcl-lib .venv/bin/python -m bench.bfcl_grounding [--show]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from bench.bfcl import load_bfcl, tool_specs
from lector.llm.call_grounding import ungrounded
from lector.llm.messages import Message, ToolCall, ToolSpec

CATEGORIES = ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple")


def held_back(case: dict[str, Any], answer: dict[str, Any], specs: list[ToolSpec]) -> list[str]:
    """The arguments of the case's right calls for which grounding refuses every accepted value."""
    conversation = [Message.from_openai(m) for m in case["question"][0]]
    refused: list[str] = []
    for expected in answer["ground_truth"]:
        for name, args in expected.items():
            sent = name.replace(".", "_")
            first = {k: v[0] for k, v in args.items() if v and v[0] != ""}
            for missing in ungrounded([ToolCall(name=sent, arguments=json.dumps(first))], specs, conversation):
                values = [v for v in args.get(missing.parameter, []) if v != ""]
                if all(_refused(sent, missing.parameter, v, specs, conversation) for v in values):
                    refused.append(f"{name}.{missing.parameter}={values[:3]}")
    return refused


def _refused(tool: str, parameter: str, value: Any, specs: list[ToolSpec], conversation: list[Message]) -> bool:
    return bool(ungrounded([ToolCall(name=tool, arguments=json.dumps({parameter: value}))], specs, conversation))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--show", action="store_true", help="print every case held back")
    args = ap.parse_args()
    bfcl = load_bfcl()
    print("| category | cases | right calls held back |")
    print("|---|---|---|")
    for category in CATEGORIES:
        answers = {a["id"]: a for a in bfcl.load_answers(category)}
        cases = bfcl.load_cases(category)
        held = 0
        for case in cases:
            refused = held_back(case, answers[case["id"]], tool_specs(bfcl, case["function"])[0])
            held += bool(refused)
            if refused and args.show:
                print(f"  {case['id']}: {refused} | {case['question'][0][-1]['content'][:100]!r}")
        print(f"| {category} | {len(cases)} | {held} |")


if __name__ == "__main__":
    main()
