"""Lector side by side with Qwen-Agent: the same served model, the same haystacks, the same questions.

`lector serve-model` serves the embedded model once; both systems talk to it over HTTP, so every LLM call
of both is counted at the server (GET /v1/usage) the same way. The server runs with --no-prompt-cache, so a
system asked after another cannot ride on the KV cache of the same prompt (Lector auto repeats level 1's).
The haystacks and questions are those of bench/eval_needles.py (same generator, same seed): invented facts in
Brown-corpus text of 128k or 1M tokens, reworded single-fact questions and multi-hop chains.

Pairs: Qwen-Agent `Assistant` with the file (its Level 1) vs `lector` level 1; Qwen-Agent `ParallelDocQA`
(its Level 2, capped: see --qa2-sizes/--qa2-questions) vs level 2; Lector level 3 and auto alongside.

Per question:
  correct       the expected answer appears in the answer (eval_needles.correct)
  recall        share of the needed facts present in the prompt of the final (answering) call
  recall_any    share of the needed facts present in any prompt sent for the question
  calls, prompt and completion tokens (counted by the server), wall seconds

Qwen-Agent runs in its own venv (bash bench/setup_qwen_agent.sh) through bench/qwen_agent_runner.py, with
generate_cfg.max_input_tokens 7500 and the RAG max_ref_token 3000 (its defaults assume a 58k window), and
with .txt files forced to the txt type (its sniffing calls text with a stray `<p` HTML).

    bash bench/setup_qwen_agent.sh && .venv/bin/python -m bench.vs_qwen_agent
    .venv/bin/python -m bench.vs_qwen_agent --model qwen2.5-coder-0.5b --sizes 128k --questions 3 --multihop 1
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import os
import random
import re
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.eval_needles import Question, correct, haystack, make_questions, place

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"

SIZES = {"32k": 32_000, "128k": 128_000, "1m": 1_000_000}
QA_VENV = BENCH / ".qwen-agent-venv"
RUNNER = BENCH / "qwen_agent_runner.py"
SYSTEMS = {
    "qa1": "Qwen-Agent Assistant (L1)",
    "lector1": "Lector level 1",
    "qa2": "Qwen-Agent ParallelDocQA (L2)",
    "lector2": "Lector level 2",
    "lector3": "Lector level 3",
    "auto": "Lector auto",
}


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def norm(text: str) -> str:
    """Words only: Qwen-Agent's text parser drops a sentence's final period and re-breaks lines."""
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())


# ------------------------------------------------------------------------------ the served model


class ModelServer:
    """`lector serve-model` in a subprocess, with prompt recording on (for recall)."""

    def __init__(self, model: str, port: int, parallel: int, ctx: int, logfile: Path) -> None:
        self.token = secrets.token_urlsafe(24)
        self.base = f"http://127.0.0.1:{port}"
        cmd = [
            sys.executable,
            "-m",
            "lector",
            "serve-model",
            "--model",
            model,
            "--port",
            str(port),
            "--token",
            self.token,
            "--parallel",
            str(parallel),
            "--ctx",
            str(ctx),
            "--record-prompts",
            "--no-prompt-cache",
            "--rate-per-minute",
            "100000",
        ]
        self.log = open(logfile, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        self.http = httpx.Client(
            base_url=self.base, headers={"Authorization": f"Bearer {self.token}"}, timeout=60, trust_env=False
        )
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve-model exited with {self.proc.returncode}; see {logfile}")
            try:
                if self.http.get("/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise RuntimeError("serve-model did not come up")
        self.model_id = self.http.get("/v1/models").json()["data"][0]["id"]

    def mark(self) -> int:
        return int(self.http.get("/v1/usage", params={"since": 1 << 60}).json()["last_seq"])

    def since(self, mark: int) -> list[dict[str, Any]]:
        return list(self.http.get("/v1/usage", params={"since": mark}).json()["records"])

    def close(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def cost(records: list[dict[str, Any]], q: Question) -> dict[str, Any]:
    """Calls, tokens and fact recall from the server's records of one question's requests."""
    facts = [norm(f) for f in q.facts]
    prompts = [norm(r.get("prompt") or "") for r in sorted(records, key=lambda r: r["seq"])]
    final = prompts[-1] if prompts else ""
    return {
        "llm_calls": len(records),
        "prompt_tokens": sum(r["prompt_tokens"] for r in records),
        "completion_tokens": sum(r["completion_tokens"] for r in records),
        "server_errors": sum(1 for r in records if r.get("error")),
        "recall": sum(f in final for f in facts) / len(facts),
        "recall_any": sum(any(f in p for p in prompts) for f in facts) / len(facts),
    }


# ------------------------------------------------------------------------------ the two systems


def qwen_agent(job: dict[str, Any], workspace: Path, timeout: float) -> dict[str, Any]:
    workspace.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "QWEN_AGENT_DEFAULT_WORKSPACE": str(workspace), "PYTHONPATH": ""}
    python = QA_VENV / "bin" / "python"
    try:
        done = subprocess.run(
            [str(python), str(RUNNER)],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            cwd=workspace,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"error": f"runner exit {done.returncode}: {done.stderr[-1500:]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


async def lector_answer(level: str, library: Any, doc_id: str, backend: Any, question: str) -> dict[str, Any]:
    from lector.agent.reader import aask
    from lector.retrieval.keywords import KeywordCache

    # a cold keyword cache per system and question: no system reuses another's keyword call
    answer = await aask(library, question, level, backend, doc_ids=[doc_id], keyword_cache=KeywordCache())
    return {"answer": answer.answer, "used_level": answer.level, "level1_answer": answer.level1_answer}


# ------------------------------------------------------------------------------ the run


def summarise(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| size | set | system | n | accuracy | recall (final prompt) | recall (any prompt) | calls/q | "
        "prompt tok/q | completion tok/q | s/q |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["size"], r["set"], r["system"]), []).append(r)
        groups.setdefault((r["size"], "all", r["system"]), []).append(r)
    order = list(SYSTEMS)
    for key in sorted(groups, key=lambda k: (k[0], k[1] != "all", k[1], order.index(k[2]))):
        rs = groups[key]
        n = len(rs)
        ok = [r for r in rs if not r.get("error")] or rs

        def mean(field: str, rs: list[dict[str, Any]] = rs) -> float:
            return sum(float(r.get(field) or 0) for r in rs) / len(rs)

        errors = n - len(ok) if ok is not rs else 0
        note = f" ({errors} failed; costs over the rest)" if errors else ""
        lines.append(
            f"| {key[0]} | {key[1]} | {SYSTEMS[key[2]]}{note} | {n} | {mean('correct'):.2f} | "
            f"{mean('recall', ok):.2f} | {mean('recall_any', ok):.2f} | {mean('llm_calls', ok):.1f} | "
            f"{mean('prompt_tokens', ok):,.0f} | {mean('completion_tokens', ok):,.0f} | {mean('seconds', ok):.0f} |"
        )
    return lines


def first_answers(report: dict[str, Any]) -> list[str]:
    """Time from a new document to its first answer: ingest plus the first question, per system."""
    lines = ["| size | system | ingest s | first question s | first answer s | correct |", "|---|---|---|---|---|---|"]
    for entry in report["ingest"]:
        for system in SYSTEMS:
            rows = [r for r in report["rows"] if r["size"] == entry["size"] and r["system"] == system]
            if not rows:
                continue
            ingest = float(entry.get("qwen_agent_s") or 0) if system.startswith("qa") else float(entry["lector_s"])
            first = rows[0]
            lines.append(
                f"| {entry['size']} | {SYSTEMS[system]} | {ingest:.2f} | {first['seconds']:.0f} | "
                f"{ingest + first['seconds']:.0f} | {first['correct']} |"
            )
    return lines


def result_path(out: str | None) -> Path:
    if out:
        return Path(out)
    folder = BENCH / "results"
    folder.mkdir(exist_ok=True)
    stem = f"vs_qwen_agent-{dt.date.today().isoformat()}"
    path = folder / f"{stem}.json"
    n = 2
    while path.exists():
        path = folder / f"{stem}-{n}.json"
        n += 1
    return path


async def main_async(args: argparse.Namespace) -> int:
    from lector.llm.factory import make_backend
    from lector.retrieval.library import Library

    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        raise SystemExit(f"unknown systems {sorted(unknown)}; choose from {', '.join(SYSTEMS)}")
    if any(s.startswith("qa") for s in systems) and not (QA_VENV / "bin" / "python").exists():
        raise SystemExit("Qwen-Agent is not installed: run  bash bench/setup_qwen_agent.sh")
    sizes = [s.strip().lower() for s in args.sizes.split(",") if s.strip()]
    qa2_sizes = {s.strip().lower() for s in args.qa2_sizes.split(",") if s.strip()}
    pair_only = {s.strip().lower() for s in args.l2_pair_only_sizes.split(",") if s.strip()}
    rng = random.Random(args.seed)
    questions = make_questions(rng, args.questions, args.multihop)
    singles, multis = [q for q in questions if q.hops == 1], [q for q in questions if q.hops > 1]
    # alternate the sets, so a run cut short still has both (the generator's order and facts are kept)
    questions = [q for pair in itertools.zip_longest(singles, multis) for q in pair if q is not None]
    cap = (
        f"Qwen-Agent ParallelDocQA runs on sizes {sorted(qa2_sizes & set(sizes)) or 'none'}, on the first "
        f"{args.qa2_questions} question(s) of each (it reads every ~1000-token chunk of the document)"
    )
    if pair_only & set(sizes):
        cap += f"; on {sorted(pair_only & set(sizes))} only ParallelDocQA and Lector level 2 run, on those questions"
    if "qa2" not in systems:
        cap = "Qwen-Agent ParallelDocQA not run (--systems)"
    log("cap: " + cap)

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="vs-qwen-agent-"))
    work.mkdir(parents=True, exist_ok=True)
    out_path = result_path(args.out)
    report: dict[str, Any] = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "model": args.model,
        "settings": {
            "seed": args.seed,
            "sizes": sizes,
            "questions": args.questions,
            "multihop": args.multihop,
            "systems": systems,
            "parallel": args.parallel,
            "ctx": args.ctx,
            "qwen_agent": {
                "version": "0.0.34",
                "max_input_tokens": args.max_input_tokens,
                "max_ref_token": args.max_ref_token,
                "file_type": "forced txt",
            },
            "l3_multihop_only": args.l3_multihop_only,
        },
        "cap": cap,
        "ingest": [],
        "rows": [],
    }

    def save() -> None:
        report["summary"] = summarise(report["rows"])
        report["first_answer"] = first_answers(report)
        out_path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")

    log(f"starting lector serve-model ({args.model}) ...")
    server = ModelServer(args.model, args.port, args.parallel, args.ctx, work / "serve-model.log")
    base_v1 = server.base + "/v1"
    backend = make_backend(
        f"openai:{base_v1}#{server.model_id}", api_key=server.token, parallel_slots=args.parallel, timeout=3600
    )
    try:
        for size in sizes:
            size_rng = random.Random(f"{args.seed}-{size}")
            text = place(haystack(SIZES[size], size_rng), questions, size_rng)
            path = work / f"haystack-{size}.txt"
            path.write_text(text, encoding="utf-8")

            started = time.perf_counter()
            library = Library(cache_dir=work / f"lector-cache-{size}")
            doc_id = library.add_file(path)
            lector_ingest = time.perf_counter() - started
            tokens = library.total_tokens([doc_id])
            entry: dict[str, Any] = {
                "size": size,
                "tokens": tokens,
                "lector_s": round(lector_ingest, 3),
                "lector_chunks": library.document(doc_id).chunks,
            }
            if any(s.startswith("qa") for s in systems):
                qa_ingest = qwen_agent(
                    {"mode": "ingest", "file": str(path)}, work / f"qa-workspace-{size}", args.qa_timeout
                )
                entry["qwen_agent_s"] = round(float(qa_ingest.get("seconds") or 0), 2)
                entry["qwen_agent_chunks"] = qa_ingest.get("chunks")
                entry["qwen_agent_error"] = qa_ingest.get("error")
            report["ingest"].append(entry)
            log(f"# {size}: {tokens:,} tokens; ingest {entry}")
            save()

            # question by question, every system on it, so a run cut short still compares like with like
            plan = [
                (q, system)
                for i, q in enumerate(questions)
                for system in systems
                if not (system == "lector3" and args.l3_multihop_only and q.hops == 1)
                and not (system == "qa2" and (size not in qa2_sizes or i >= args.qa2_questions))
                and not (size in pair_only and (system not in ("qa2", "lector2") or i >= args.qa2_questions))
            ]
            plan.sort(key=lambda item: item[1] == "qa2")  # the hour-long reader last, so a cut run keeps the pairs
            for q, system in plan:
                mark = server.mark()
                started = time.perf_counter()
                if system.startswith("qa"):
                    job = {
                        "mode": "assistant" if system == "qa1" else "parallel",
                        "file": str(path),
                        "question": q.question,
                        "model": server.model_id,
                        "model_server": base_v1,
                        "api_key": server.token,
                        "max_input_tokens": args.max_input_tokens,
                        "max_ref_token": args.max_ref_token,
                    }
                    got = qwen_agent(job, work / f"qa-workspace-{size}", args.qa_timeout)
                else:
                    level = {"lector1": "1", "lector2": "2", "lector3": "3", "auto": "auto"}[system]
                    try:
                        got = await lector_answer(level, library, doc_id, backend, q.question)
                    except Exception as exc:  # a failed question is a result, not the end of the run
                        got = {"error": f"{type(exc).__name__}: {exc}"}
                seconds = time.perf_counter() - started
                answer = str(got.get("answer") or "")
                row = {
                    "size": size,
                    "set": "single" if q.hops == 1 else "multi-hop",
                    "system": system,
                    "qid": q.qid,
                    "hops": q.hops,
                    "question": q.question,
                    "expected": q.answer,
                    "answer": answer,
                    "correct": correct(answer, q.answer),
                    "seconds": round(seconds, 1),
                    **cost(server.since(mark), q),
                }
                for key in ("used_level", "level1_answer", "error"):
                    if got.get(key) is not None:
                        row[key] = got[key]
                report["rows"].append(row)
                log(json.dumps({k: row[k] for k in row if k != "question"}, ensure_ascii=False))
                save()
    finally:
        backend.close()
        server.close()
        save()
    print("cap: " + cap)
    print("\n| size | tokens | Lector ingest s (chunks) | Qwen-Agent ingest s (chunks) |\n|---|---|---|---|")
    for e in report["ingest"]:
        print(
            f"| {e['size']} | {e['tokens']:,} | {e['lector_s']} ({e['lector_chunks']}) | "
            f"{e.get('qwen_agent_s', '–')} ({e.get('qwen_agent_chunks', '–')}) |"
        )
    print()
    print("\n".join(report["summary"]))
    print()
    print("\n".join(report["first_answer"]))
    print(f"\nwrote {out_path}")
    return 0


def main() -> int:
    from lector.llm.factory import default_spec

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1m,128k,32k", help="comma-separated: 1m, 128k, 32k")
    parser.add_argument("--questions", type=int, default=3, help="single-fact questions (eval_needles)")
    parser.add_argument("--multihop", type=int, default=2, help="multi-hop questions (eval_needles)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--model", default=default_spec(), help="model served (default: the default embedded one)")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated: " + ", ".join(SYSTEMS))
    parser.add_argument("--qa2-sizes", default="32k", help="sizes where Qwen-Agent ParallelDocQA runs (default 32k)")
    parser.add_argument(
        "--l2-pair-only-sizes",
        default="32k",
        help="sizes where only the level-2 pair runs, on the --qa2-questions (default 32k)",
    )
    parser.add_argument("--qa2-questions", type=int, default=1, help="questions ParallelDocQA answers per size")
    parser.add_argument(
        "--l3-multihop-only",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Lector level 3 only on the multi-hop questions (default)",
    )
    parser.add_argument("--max-input-tokens", type=int, default=7500, help="Qwen-Agent generate_cfg.max_input_tokens")
    parser.add_argument("--max-ref-token", type=int, default=3000, help="Qwen-Agent RAG max_ref_token")
    parser.add_argument("--qa-timeout", type=float, default=4 * 3600, help="seconds per Qwen-Agent question")
    parser.add_argument("--port", type=int, default=8391)
    parser.add_argument("--parallel", type=int, default=4, help="parallel slots of the served engine")
    parser.add_argument("--ctx", type=int, default=8192, help="context window of the served engine")
    parser.add_argument("--work-dir", default=None, help="haystacks, caches and the server log (default: a temp dir)")
    parser.add_argument("--out", default=None, help="JSON path (default bench/results/vs_qwen_agent-<date>.json)")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
