"""Evaluation on real text: question sets built mechanically from documents nobody on the team wrote
(bench/real_sets.py says how each set is made), answered at the chosen levels.

Per set and level it reports:
  recall@8     share of the gold lines inside the 8 best chunks for the question's own query (no model: quoted
               phrases, terms and identifiers, as the levels search before model keywords); for a chain of
               relations, each hop's gold line inside the 8 best of that hop's own search (from the gold entity
               of the hop before), as retrieval/follow_relations.py searches;
               with --no-model also the share inside the evidence Level 1 would show the model
  accuracy     every expected value appears in the answer (case, quotes and backticks aside)
  calls, prompt tokens, median and worst seconds per question

    .venv/bin/python -m bench.eval_real --no-model                      # recall@8 of every set
    .venv/bin/python -m bench.eval_real --sets manual-defaults --levels auto --start 0 --questions 10

Run the model part in slices (`--start`, `--questions`) and collect them with `--out` (JSON lines); `--table`
prints the table of such a file.

`--qwen-agent` answers the same questions with Qwen-Agent 0.0.34's `Assistant` (its retrieve-and-answer, the
document attached as a .txt file) instead, on the same model served by `lector serve-model`, whose records count
its calls and prompt tokens (bash bench/setup_qwen_agent.sh first; bench/vs_qwen_agent.py runs it the same way):

    .venv/bin/python -m bench.eval_real --sets manual-hops --start 20 --questions 10 --qwen-agent
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.real_sets import BUILDERS, Question, QuestionSet, locate

RECALL_K = 8


def _normal(text: str) -> str:
    text = text.lower().replace("`", " ").replace('"', " ").replace("'", " ")
    text = re.sub(r"\s*\*\s*", " * ", text)
    return " ".join(re.sub(r"[^\w.*+\-() ]", " ", text).split())


def correct(answer: str, expected: Sequence[str]) -> bool:
    """Every expected value appears in the answer as a whole (not inside a longer word or number), a value
    expected twice (two parts with the same default) twice."""
    said = f" {_normal(answer)} "
    for value, times in Counter(_normal(v) for v in expected).items():
        if not value or len(re.findall(rf"(?<![\w.]){re.escape(value)}(?![\w])", said)) < times:
            return False
    return True


def gold_spans(text: str, q: Question) -> list[tuple[int, int]]:
    spans = [locate(text, g) for g in q.gold]
    missing = [g for g, s in zip(q.gold, spans, strict=True) if s is None]
    if missing:
        raise ValueError(f"{q.qid}: gold line not in the parsed text: {missing[0][:80]!r}")
    return [s for s in spans if s is not None]


def covered(spans: Sequence[tuple[int, int]], regions: Sequence[tuple[int, int]]) -> float:
    if not spans:
        return 0.0
    return sum(any(a <= s and e <= b for a, b in regions) for s, e in spans) / len(spans)


def recall_at_k(library: Any, doc_id: str, text: str, q: Question, k: int = RECALL_K) -> float:
    from lector.retrieval.keywords import question_keywords

    hits = library.search(question_keywords(q.question).query, k=k, doc_ids=[doc_id])
    return covered(gold_spans(text, q), [(h.chunk.start, h.chunk.end) for h in hits])


def hop_queries(q: Question) -> list[str]:
    """The searches a chain of relations makes (bench: retrieval/follow_relations.py), each from the gold entity
    of the hop before: one per relation, then the question about the chain's end."""
    from lector.retrieval.follow_relations import code_entity, final_name, hop_query
    from lector.retrieval.keywords import question_keywords
    from lector.retrieval.relation_chain import relation_chain

    chain = relation_chain(q.question)
    if chain is None or len(q.chain) != len(chain.relations) + 1:
        raise ValueError(f"{q.qid}: the question's chain does not match its entities")
    entities = [q.chain[0], *(code_entity(chain, e) for e in q.chain[1:])]
    queries = [hop_query(e, r) for e, r in zip(entities, chain.relations, strict=False)]
    return [*queries, question_keywords(chain.final_question(final_name(chain, q.chain[-1]))).query]


def hop_recall(library: Any, doc_id: str, text: str, q: Question, k: int = RECALL_K) -> float:
    """Share of the gold lines (one per hop) inside the 8 best chunks of that hop's own search."""
    spans = gold_spans(text, q)
    found = 0
    for span, query in zip(spans, hop_queries(q), strict=True):
        hits = library.search(query, k=k, doc_ids=[doc_id])
        found += covered([span], [(h.chunk.start, h.chunk.end) for h in hits]) == 1
    return found / len(spans)


def evidence_recall(library: Any, doc_id: str, text: str, q: Question) -> float:
    """Share of the gold lines inside the evidence Level 1 shows the model (its packing and sentence focus,
    with the question's own query: no model keywords)."""
    from lector.retrieval.focus import quoting, sentence_windows
    from lector.retrieval.keywords import question_keywords
    from lector.retrieval.level1 import Level1Config
    from lector.retrieval.packing import HEADER_TOKENS, pack
    from lector.retrieval.pointers import with_defining_lines

    config = Level1Config()
    keywords = question_keywords(q.question)
    hits = library.search(keywords.query, k=config.k, doc_ids=[doc_id])
    packed = pack(hits, config.max_evidence_tokens or 2000, lambda c: c.tokens + HEADER_TOKENS)
    radius = 2 if keywords.phrases else 1
    evidence = quoting(
        sentence_windows(packed, keywords.focus_terms, config.focus_sentences or 8, radius=radius), keywords.phrases
    )
    evidence = with_defining_lines(q.question, evidence, packed)
    return covered(gold_spans(text, q), [(e.start, e.end) for e in evidence])


async def answer_row(level: str, library: Any, doc_id: str, backend: Any, q: Question) -> dict[str, Any]:
    from lector.agent.reader import aask

    started = time.perf_counter()
    answer = await aask(library, q.question, level, backend, doc_ids=[doc_id])
    return {
        "qid": q.qid, "kind": q.kind, "level": level, "used_level": int(answer.level), "question": q.question,
        "expected": q.expected, "answer": answer.answer, "correct": correct(answer.answer, q.expected),
        "citations": len(answer.citations), "llm_calls": answer.usage.llm_calls,
        "prompt_tokens": answer.usage.prompt_tokens, "seconds": round(time.perf_counter() - started, 1),
        "escalated_from": [int(x) for x in answer.escalated_from] or None, "level1_answer": answer.level1_answer,
        "facts": answer.details.get("facts"), "not_established": answer.details.get("not_established"),
    }  # fmt: skip


def table(rows: Sequence[dict[str, Any]]) -> list[str]:
    lines = [
        "| set | level | questions | recall@8 | accuracy | calls/q | prompt tok/q | median s | worst s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["set"], r["level"]), []).append(r)
    for (name, level), rs in sorted(groups.items()):
        n = len(rs)
        recalls = [r["recall"] for r in rs if r["recall"] is not None]
        recall = f"{statistics.fmean(recalls):.2f}" if recalls else "–"
        if level == "bm25":
            shown = statistics.fmean(r["evidence"] for r in rs)
            lines.append(
                f"| {name} | retrieval only (L1 evidence holds the line: {shown:.2f}) | {n} | {recall} "
                "| – | 0 | 0 | – | – |"
            )
            continue
        secs = [r["seconds"] for r in rs]
        accuracy, calls = statistics.fmean(r["correct"] for r in rs), statistics.fmean(r["llm_calls"] for r in rs)
        prompt = statistics.fmean(r["prompt_tokens"] for r in rs)
        lines.append(
            f"| {name} | {level} | {n} | {recall} | {accuracy:.2f} | {calls:.1f} | {prompt:.0f} "
            f"| {statistics.median(secs):.0f} | {max(secs):.0f} |"
        )
    return lines


def build_sets(names: Sequence[str], seed: int) -> list[QuestionSet]:
    return [BUILDERS[name](random.Random(f"{seed}-{name}")) for name in names]


def _backend(args: argparse.Namespace) -> Any:
    from lector.llm.factory import make_backend

    kind = (args.model or "").partition(":")
    embedded = not kind[1] or kind[0] == "embedded"
    return make_backend(args.model, **({"n_ctx": args.ctx, "n_parallel": args.parallel} if embedded else {}))


def qwen_agent_rows(args: argparse.Namespace, qsets: Sequence[QuestionSet]) -> list[dict[str, Any]]:
    """Qwen-Agent's Assistant on each set's slice of questions, through one served model."""
    from bench.vs_qwen_agent import QA_VENV, ModelServer, qwen_agent
    from lector.llm.factory import default_spec

    if not (QA_VENV / "bin" / "python").exists():
        raise SystemExit("Qwen-Agent is not installed: run  bash bench/setup_qwen_agent.sh")
    work = Path(tempfile.mkdtemp(prefix="eval-real-qwen-agent-"))
    server = ModelServer(args.model or default_spec(), args.port, args.parallel, args.ctx, work / "serve-model.log")
    rows: list[dict[str, Any]] = []
    try:
        for qset in qsets:
            path = work / f"{qset.name}.txt"
            path.write_text(qset.text, encoding="utf-8")
            workspace = work / f"workspace-{qset.name}"
            ingest = qwen_agent({"mode": "ingest", "file": str(path)}, workspace, args.qa_timeout)
            print(f"# {qset.name}: Qwen-Agent ingest {ingest}", file=sys.stderr, flush=True)
            for q in _slice(args, qset):
                job = {
                    "mode": "assistant", "file": str(path), "question": q.question, "model": server.model_id,
                    "model_server": server.base + "/v1", "api_key": server.token, "max_input_tokens": 7500,
                    "max_ref_token": 3000,
                }  # fmt: skip
                mark, started = server.mark(), time.perf_counter()
                got = qwen_agent(job, workspace, args.qa_timeout)
                records = server.since(mark)
                answer = str(got.get("answer") or got.get("error") or "")
                row = {
                    "set": qset.name, "recall": None, "qid": q.qid, "kind": q.kind, "level": "qwen-agent",
                    "question": q.question, "expected": q.expected, "answer": answer,
                    "correct": correct(answer, q.expected), "llm_calls": len(records),
                    "prompt_tokens": sum(r["prompt_tokens"] for r in records),
                    "seconds": round(time.perf_counter() - started, 1),
                }  # fmt: skip
                rows.append(row)
                _emit(args.out, row)
    finally:
        server.close()
    return rows


def _slice(args: argparse.Namespace, qset: QuestionSet) -> list[Question]:
    return qset.questions[args.start : args.start + args.questions] if args.questions else qset.questions


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from lector.retrieval.library import Library

    library = Library(cache_dir=args.cache_dir or Path(tempfile.gettempdir()) / "lector-eval-real")
    backend = None if args.no_model else _backend(args)
    rows: list[dict[str, Any]] = []
    try:
        for qset in build_sets(args.sets.split(","), args.seed):
            doc_id = library.add_text(qset.text, qset.source)
            text = library.text(doc_id)
            pool = _slice(args, qset)
            print(
                f"# {qset.name}: {len(qset.questions)} questions, {library.total_tokens([doc_id]):,} tokens",
                file=sys.stderr,
                flush=True,
            )
            for q in pool:
                recall = hop_recall(library, doc_id, text, q) if q.chain else recall_at_k(library, doc_id, text, q)
                if backend is None:
                    rows.append(
                        {
                            "set": qset.name,
                            "level": "bm25",
                            "qid": q.qid,
                            "kind": q.kind,
                            "recall": recall,
                            "evidence": evidence_recall(library, doc_id, text, q),
                        }
                    )
                    continue
                for level in args.levels.split(","):
                    row = {"set": qset.name, "recall": recall, **await answer_row(level, library, doc_id, backend, q)}
                    rows.append(row)
                    _emit(args.out, row)
    finally:
        if backend is not None:
            backend.close()
    return rows


def _emit(out: str | None, row: dict[str, Any]) -> None:
    line = json.dumps(row, ensure_ascii=False)
    print(line, file=sys.stderr, flush=True)
    if out:
        with open(out, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default=",".join(BUILDERS), help=f"comma-separated: {', '.join(BUILDERS)}")
    parser.add_argument("--levels", default="auto", help="comma-separated: auto, 1, 2, 3")
    parser.add_argument("--start", type=int, default=0, help="first question of each set (for slices)")
    parser.add_argument("--questions", type=int, default=0, help="questions per set from --start (0: all)")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--model", default=None, help="model spec (default $LECTOR_MODEL or the 1.5B)")
    parser.add_argument("--ctx", type=int, default=8192)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--no-model", action="store_true", help="recall@8 only, no LLM")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--out", default=None, help="append one JSON line per answered question here")
    parser.add_argument("--table", default=None, help="print the table of a --out file and exit")
    parser.add_argument("--qwen-agent", action="store_true", help="answer with Qwen-Agent's Assistant instead")
    parser.add_argument("--qa-timeout", type=float, default=600, help="seconds per Qwen-Agent question")
    parser.add_argument("--port", type=int, default=8392, help="port of the model served to Qwen-Agent")
    args = parser.parse_args()
    if args.table:
        rows = [json.loads(line) for line in Path(args.table).read_text(encoding="utf-8").splitlines() if line]
        for row in rows:  # scored again, as this version scores
            row["correct"] = correct(row["answer"], row["expected"])
    elif args.qwen_agent:
        rows = qwen_agent_rows(args, build_sets(args.sets.split(","), args.seed))
    else:
        rows = asyncio.run(run(args))
    print("\n".join(table(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
