"""Needle-in-a-haystack evaluation of the reading levels.

Invented facts ("needles") are placed at random sentence boundaries in a slice of real text (the Brown corpus
from ../shared/corpora) of 128k or 1M tokens. Each question is reworded so it shares little with its needle
beyond a name; multi-hop questions need a chain of two or three facts placed far apart.

Per level it reports:
  recall       share of the needed facts inside the chunks the level looked at (L1: packed evidence;
               L2/L3: chunks read)
  cite recall  share of the needed facts covered by the answer's citations
  accuracy     the expected answer appears in the model's answer
  calls, prompt/completion tokens and seconds per question

    .venv/bin/python -m bench.eval_needles --sizes 128k --levels 1,2 --questions 6 --multihop 2
    .venv/bin/python -m bench.eval_needles --no-model --sizes 128k,1m --questions 8 --multihop 4

`--no-model` measures only BM25 recall with the question's own terms (no LLM). `--seed` makes the haystack
slice, the names, values, positions and question order reproducible.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import lzma
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

CORPUS = ROOT.parent / "shared" / "corpora" / "brown.txt.xz"
CHARS_PER_TOKEN = 4.74  # Brown corpus: 6.13M characters, ~1.29M Qwen2.5 tokens

FIRST = [
    "Orvald",
    "Ilsabet",
    "Tamsin",
    "Corwen",
    "Ysolde",
    "Marek",
    "Fennick",
    "Liesl",
    "Osric",
    "Perrin",
    "Quenna",
    "Bexley",
    "Aurelio",
    "Dagny",
    "Emrys",
    "Solveig",
    "Thaddeus",
    "Wilhelmina",
]
LAST = [
    "Vonnegrau",
    "Halvarsen",
    "Tollivar",
    "Quistrom",
    "Marrowby",
    "Pellingham",
    "Oderwald",
    "Saskin",
    "Brenwick",
    "Ashcombe",
    "Fairholt",
    "Kettleby",
    "Lindqvist",
    "Morrigan",
    "Ravensdale",
    "Strand",
]

# (needle, question, values): {name} is a person, {v} the answer. Questions avoid the needle's words.
SINGLE = [
    (
        "{name} hid the tide charts inside a {v} chest under the chapel floor.",
        "What material was the box that {name} used to conceal the ocean maps made of?",
        ["copper", "cedar", "walnut", "pewter"],
    ),
    (
        "The yearly fee {name} paid to the river guild was exactly {v} silver marks.",
        "How much did {name} owe the boatmen's association each year?",
        ["forty-two", "seventeen", "ninety-one", "sixty-three"],
    ),
    (
        "Everyone in the parish knew that {name} was terrified of {v}.",
        "What did {name} fear most?",
        ["geese", "thunderstorms", "ladders", "church bells"],
    ),
    (
        "{name} travelled to the coast aboard a steamer called the {v}.",
        "On which vessel did {name} make the journey to the seaside?",
        ["Perpetua", "Gannet", "Lodestar", "Marigold"],
    ),
    (
        "The favourite dish of {name} was {v}, cooked slowly over an open fire.",
        "Which food did {name} like to eat above all others?",
        ["lentil stew", "roast quail", "barley porridge", "smoked eel"],
    ),
    (
        "{name} learned to play the {v} from a blind organist in Leeds.",
        "Which instrument was {name} taught by the sightless musician?",
        ["cello", "oboe", "harp", "concertina"],
    ),
    (
        "In the winter of 1911, {name} planted {v} apple trees behind the old mill.",
        "How many fruit trees did {name} put in the ground?",
        ["three hundred", "eighty", "twelve", "fifty-five"],
    ),
    (
        "The password to the archive vault that {name} guarded was {v}.",
        "Which secret word opened the records room under the watch of {name}?",
        ["Halcyon", "Brimstone", "Juniper", "Meridian"],
    ),
]

# (facts, question, values, named entities): {p1}/{p2} people, {x} an invented thing named in the question.
CHAINS = [
    (
        ["The {x} Medal of 1952 was awarded to the engraver {p1}.", "{p1} grew up in the hill village of {v}."],
        "In what settlement did the recipient of the 1952 {x} Medal spend their childhood?",
        ["Sorvek", "Elmbridge", "Kastellan", "Orrin Ford"],
        ["Quillon", "Tessaly", "Harrowgate", "Vantorre"],
    ),
    (
        ["The lighthouse at {x} Point was built by the mason {p1}.", "{p1} always walked with a cane carved from {v}."],
        "What was the walking stick of the builder of the {x} Point lighthouse made of?",
        ["whalebone", "black ebony", "driftwood", "ivory"],
        ["Gallows", "Skerrow", "Mornay", "Caddock"],
    ),
    (
        [
            "The {x} Company was founded by {p1}.",
            "{p1} was married to {p2}.",
            "{p2} taught chemistry at the {v} Academy.",
        ],
        "At which school did the spouse of the person who started the {x} Company give lessons?",
        ["Wexford", "Aldermoor", "Pinecrest", "Harwell"],
        ["Zorblat", "Quintar", "Velloran", "Drummask"],
    ),
]


@dataclass
class Question:
    qid: str
    question: str
    answer: str
    facts: list[str]
    hops: int
    spans: list[tuple[int, int]] = field(default_factory=list)


def make_questions(rng: random.Random, singles: int, multis: int) -> list[Question]:
    names = [f"{f} {last}" for f in FIRST for last in LAST]
    rng.shuffle(names)
    out: list[Question] = []
    for i in range(singles):
        needle, question, values = SINGLE[i % len(SINGLE)]
        name, value = names.pop(), rng.choice(values)
        out.append(Question(f"s{i}", question.format(name=name), value, [needle.format(name=name, v=value)], 1))
    asked: set[str] = set()
    for i in range(multis):
        facts, question, values, things = CHAINS[i % len(CHAINS)]
        p1, p2, value, thing = names.pop(), names.pop(), rng.choice(values), rng.choice(things)
        while question.format(x=thing) in asked and len(asked) < len(CHAINS) * len(things):
            thing = rng.choice(things)  # one question for two chains would have two right answers
        asked.add(question.format(x=thing))
        filled = [f.format(p1=p1, p2=p2, v=value, x=thing) for f in facts]
        out.append(Question(f"m{i}", question.format(x=thing), value, filled, len(facts)))
    return out


def haystack(tokens: int, rng: random.Random) -> str:
    text = lzma.decompress(CORPUS.read_bytes()).decode("utf-8")
    want = int(tokens * CHARS_PER_TOKEN)
    if want >= len(text):
        return text
    start = rng.randrange(0, len(text) - want)
    start = text.find(" . ", start) + 3
    end = text.find(" . ", start + want) + 2
    return text[start:end]


def place(text: str, questions: list[Question], rng: random.Random) -> str:
    """Insert every fact at its own random sentence boundary; record each fact's span in the result."""
    facts = [(q, i) for q in questions for i in range(len(q.facts))]
    boundaries = sorted(rng.sample(range(len(facts) * 50), len(facts)))
    rng.shuffle(facts)
    inserts = []
    for (q, i), slot in zip(facts, boundaries, strict=True):
        at = text.find(" . ", int(len(text) * (slot + rng.random()) / (len(facts) * 50)))
        inserts.append((at + 3 if at >= 0 else len(text), q, i))
    inserts.sort(key=lambda x: x[0])
    out, pos = [], 0
    for q in questions:
        q.spans = [(0, 0)] * len(q.facts)
    length = 0
    for at, q, i in inserts:
        out.append(text[pos:at])
        length += at - pos
        fact = q.facts[i] + " "
        q.spans[i] = (length, length + len(q.facts[i]))
        out.append(fact)
        length += len(fact)
        pos = at
    out.append(text[pos:])
    return "".join(out)


def covered(spans: list[tuple[int, int]], regions: list[tuple[int, int]]) -> int:
    return sum(any(s < e2 and s2 < e for s2, e2 in regions) for s, e in spans)


def chunk_regions(library: Any, doc_id: str, refs: list[Any]) -> list[tuple[int, int]]:
    regions = []
    for _, chunk_id in refs:
        c = library.chunk(doc_id, int(chunk_id))
        regions.append((c.start, c.end))
    return regions


_UNITS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen".split()
    )
}
_TENS = {w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_NUMBER_WORDS = {*_UNITS, *_TENS, *_SCALES, "and"}


def words_value(words: list[str]) -> int | None:
    """The number English number words spell ("three hundred and five" -> 305), or None."""
    total = current = 0
    seen = False
    for word in words:
        if word in _UNITS or word in _TENS:
            current += _UNITS.get(word, 0) + _TENS.get(word, 0)
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word in _SCALES:
            total += max(current, 1) * _SCALES[word]
            current = 0
        elif word != "and":
            return None
        seen = seen or word != "and"
    return total + current if seen else None


def numbers_in(text: str) -> set[int]:
    """Every number the text writes, as digits ("1,200") or as words ("twelve hundred")."""
    found = {int(d.replace(",", "")) for d in re.findall(r"\d[\d,]*", text)}
    run: list[str] = []
    for word in [*re.findall(r"[a-z]+", text.lower().replace("-", " ")), ""]:
        if word in _NUMBER_WORDS:
            run.append(word)
            continue
        while run and run[-1] == "and":
            run.pop()
        if run and (value := words_value(run)) is not None:
            found.add(value)
        run = []
    return found


def correct(answer: str, expected: str) -> bool:
    """The expected answer appears in the answer; a numeric one may be written as digits or as words."""
    norm = " ".join(answer.lower().replace("-", " ").split())
    if " ".join(expected.lower().replace("-", " ").split()) in norm:
        return True
    want = numbers_in(expected)
    return len(want) == 1 and want <= numbers_in(answer)


async def run_level(
    level: str, library: Any, doc_id: str, backend: Any, q: Question, config: Any = None
) -> dict[str, Any]:
    from lector.agent.reader import aask

    started = time.perf_counter()
    answer = await aask(library, q.question, level, backend, doc_ids=[doc_id], config=config)
    looked = answer.details.get("evidence") or answer.details.get("chunks_read") or []
    regions = chunk_regions(library, doc_id, looked)
    cites = [(c.start, c.end) for c in answer.citations]
    return {
        "qid": q.qid,
        "hops": q.hops,
        "level": level,
        "used_level": answer.level,
        "question": q.question,
        "expected": q.answer,
        "answer": answer.answer,
        "recall": covered(q.spans, regions) / len(q.spans),
        "cite_recall": covered(q.spans, cites) / len(q.spans),
        "correct": correct(answer.answer, q.answer),
        "llm_calls": answer.usage.llm_calls,
        "prompt_tokens": answer.usage.prompt_tokens,
        "completion_tokens": answer.usage.completion_tokens,
        "seconds": round(time.perf_counter() - started, 1),
        "query": answer.details.get("query"),
        "chunks_read": len(answer.details.get("chunks_read") or []),
        "verified_quotes": answer.details.get("verified_quotes"),
        "offered_quotes": answer.details.get("offered_quotes"),
        "escalated_from": [int(level) for level in answer.escalated_from] or None,
    }


def bm25_only(library: Any, doc_id: str, q: Question, budget_tokens: int = 3500) -> dict[str, Any]:
    from lector.retrieval.keywords import question_terms

    hits = library.search(" ".join(question_terms(q.question)), k=40, doc_ids=[doc_id])
    used, regions = 0, []
    for h in hits:
        if used + h.chunk.tokens > budget_tokens:
            break
        used += h.chunk.tokens
        regions.append((h.chunk.start, h.chunk.end))
    top12 = [(h.chunk.start, h.chunk.end) for h in hits[:12]]
    return {
        "qid": q.qid,
        "hops": q.hops,
        "level": "bm25",
        "question": q.question,
        "recall": covered(q.spans, regions) / len(q.spans),
        "recall_at_12": covered(q.spans, top12) / len(q.spans),
    }


def summarise(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| size | level | questions | recall | cite recall | accuracy | calls/q | prompt tok/q | "
        "completion tok/q | s/q |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["size"], r["level"]), []).append(r)
    for (size, level), rs in groups.items():
        n = len(rs)

        def mean(key: str, rs: list[dict[str, Any]] = rs, n: int = n) -> float:
            return sum(float(r.get(key, 0)) for r in rs) / n

        if level == "bm25":
            lines.append(
                f"| {size} | BM25 only (question terms, 3.5k budget) | {n} | {mean('recall'):.2f} "
                f"| – | – | 0 | 0 | 0 | – |  (recall@12 {mean('recall_at_12'):.2f})"
            )
            continue
        lines.append(
            f"| {size} | {level} | {n} | {mean('recall'):.2f} | {mean('cite_recall'):.2f} | "
            f"{mean('correct'):.2f} | {mean('llm_calls'):.1f} | {mean('prompt_tokens'):.0f} | "
            f"{mean('completion_tokens'):.0f} | {mean('seconds'):.0f} |"
        )
    return lines


async def main_async(args: argparse.Namespace) -> int:
    from lector.agent.reader import ReaderConfig
    from lector.agent.stepwise import StepwiseConfig
    from lector.retrieval.level2 import Level2Config
    from lector.retrieval.library import Library

    rng = random.Random(args.seed)
    questions = make_questions(rng, args.questions, args.multihop)
    plan: dict[str, tuple[int, int]] = {}
    for item in filter(None, (args.plan or "").split(",")):
        level, _, counts = item.partition(":")
        singles, _, multis = counts.partition("+")
        plan[level] = (int(singles or 0), int(multis or 0))
    level2_config = Level2Config(max_chunks=args.l2_max_chunks)
    config = ReaderConfig(level2=level2_config, stepwise=StepwiseConfig(level2=level2_config))
    sizes = {"128k": 128_000, "1m": 1_000_000}
    backend = None
    if not args.no_model:
        from lector.llm.factory import make_backend

        kind = (args.model or "").partition(":")
        embedded = not kind[1] or kind[0] == "embedded"
        extra = {"n_ctx": args.ctx, "n_parallel": args.parallel} if embedded else {}
        backend = make_backend(args.model, **extra)
    rows: list[dict[str, Any]] = []
    out = open(args.out, "a", encoding="utf-8") if args.out else None  # noqa: SIM115
    cache = args.cache_dir or tempfile.mkdtemp(prefix="needles-")
    try:
        for size_name in args.sizes.split(","):
            size_rng = random.Random(f"{args.seed}-{size_name}")
            text = place(haystack(sizes[size_name.lower()], size_rng), questions, size_rng)
            library = Library(cache_dir=cache)
            doc_id = library.add_text(text, f"haystack-{size_name}.txt")
            print(
                f"# {size_name}: {library.total_tokens([doc_id]):,} tokens, {library.document(doc_id).chunks} chunks",
                file=sys.stderr,
                flush=True,
            )
            for q in questions:
                assert all(text[s:e] == f for (s, e), f in zip(q.spans, q.facts, strict=True))
            if args.no_model:
                for q in questions:
                    rows.append({"size": size_name, **bm25_only(library, doc_id, q)})
                continue
            for level in args.levels.split(","):
                pool = [q for q in questions if level != "3" or q.hops > 1 or not args.l3_multihop_only]
                if level in plan:
                    singles, multis = plan[level]
                    pool = [q for q in questions if q.hops == 1][:singles] + [q for q in questions if q.hops > 1][
                        :multis
                    ]
                for q in pool:
                    row = {"size": size_name, **await run_level(level, library, doc_id, backend, q, config)}
                    rows.append(row)
                    print(json.dumps(row, ensure_ascii=False), file=sys.stderr, flush=True)
                    if out:
                        out.write(json.dumps(row, ensure_ascii=False) + "\n")
                        out.flush()
    finally:
        if out:
            out.close()
        if backend is not None:
            backend.close()
    print("\n".join(summarise(rows)))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="128k", help="comma-separated: 128k, 1m")
    parser.add_argument("--levels", default="1,2,3", help="comma-separated: 1, 2, 3, auto")
    parser.add_argument("--questions", type=int, default=6, help="single-fact questions")
    parser.add_argument("--multihop", type=int, default=2, help="multi-hop questions (2-3 facts)")
    parser.add_argument(
        "--plan", default=None, help="questions per level as LEVEL:SINGLES+MULTIHOP, e.g. 1:3+1,2:2+0,3:0+1"
    )
    parser.add_argument("--l2-max-chunks", type=int, default=12, help="Level 2 reading budget in chunks")
    parser.add_argument(
        "--l3-multihop-only",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Level 3 only on the multi-hop questions (default)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--model", default=None, help="model spec (default $LECTOR_MODEL or the 1.5B)")
    parser.add_argument("--ctx", type=int, default=8192)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--no-model", action="store_true", help="BM25 recall only, no LLM")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--out", default=None, help="append one JSON line per question here")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
