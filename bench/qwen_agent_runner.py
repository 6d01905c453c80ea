"""Runs Qwen-Agent for bench/vs_qwen_agent.py, INSIDE the Qwen-Agent venv (bench/setup_qwen_agent.sh).

It imports nothing from Lector. One JSON job on stdin, one JSON result on stdout:

    {"mode": "ingest" | "assistant" | "parallel", "file": PATH, "question": Q,
     "model": ID, "model_server": "http://127.0.0.1:PORT/v1", "api_key": TOKEN,
     "max_input_tokens": 7500, "max_ref_token": 3000}

- ingest: DocParser parses and chunks the file (its cache lives in $QWEN_AGENT_DEFAULT_WORKSPACE).
- assistant: Qwen-Agent's `Assistant` with the file attached (its Level 1: keywords, BM25, answer).
- parallel: Qwen-Agent's `ParallelDocQA` (its Level 2: every chunk read, then retrieval and a summary).

File types are forced to txt for .txt files: Qwen-Agent sniffs a .txt file as HTML when a tag such as
`<p` appears anywhere in it, which on real text can make every chunk carry a huge title.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from typing import Any


def force_txt() -> None:
    import qwen_agent.utils.utils as qa_utils

    original = qa_utils.contains_html_tags

    def no_html_for_txt(text: str) -> bool:
        return False

    # get_file_type looks contains_html_tags up in its own module at call time.
    qa_utils.contains_html_tags = no_html_for_txt
    qa_utils._lector_bench_original_contains_html_tags = original  # type: ignore[attr-defined]


def llm_config(job: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": job["model"],
        "model_server": job["model_server"],
        "api_key": job["api_key"],
        "generate_cfg": {"max_input_tokens": int(job.get("max_input_tokens", 7500))},
    }


def last_text(responses: list[Any]) -> str:
    for message in reversed(responses or []):
        content = message.get("content") if isinstance(message, dict) else getattr(message, "content", "")
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        if content:
            return str(content)
    return ""


def run(job: dict[str, Any]) -> dict[str, Any]:
    force_txt()
    mode = job["mode"]
    path = job["file"]
    started = time.perf_counter()
    if mode == "ingest":
        from qwen_agent.tools.doc_parser import DocParser

        record = DocParser().call({"url": path})
        pages = len(record.get("raw", [])) if isinstance(record, dict) else None
        return {"mode": mode, "seconds": time.perf_counter() - started, "chunks": pages}
    messages = [{"role": "user", "content": [{"text": job["question"]}, {"file": path}]}]
    if mode == "assistant":
        from qwen_agent.agents import Assistant

        bot: Any = Assistant(llm=llm_config(job), rag_cfg={"max_ref_token": int(job.get("max_ref_token", 3000))})
    elif mode == "parallel":
        from qwen_agent.agents.doc_qa import ParallelDocQA

        bot = ParallelDocQA(llm=llm_config(job))
    else:
        raise ValueError(f"unknown mode {mode!r}")
    responses: list[Any] = []
    for latest in bot.run(messages):
        responses = latest
    return {"mode": mode, "answer": last_text(responses), "seconds": time.perf_counter() - started}


def main() -> int:
    job = json.loads(sys.stdin.read())
    try:
        result = run(job)
    except Exception as exc:
        result = {"mode": job.get("mode"), "error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
