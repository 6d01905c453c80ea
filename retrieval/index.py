"""BM25 over the chunks of one document, built with bm25s (numpy backend), saved to disk and loaded
memory-mapped.

Formula. Scores are sum over query terms t of idf(t) * tf / (tf + k1*(1 - b + b*len/avglen)): bm25s,
like Lucene, leaves out the constant factor (k1 + 1) of the textbook formula, which changes no ranking.
The default `method="lucene"` uses idf = ln(1 + (N - df + 0.5)/(df + 0.5)), which is always positive.
rank-bm25's BM25Okapi (the reference, and what Qwen-Agent uses) has idf = ln((N - df + 0.5)/(df + 0.5)),
with negative values replaced by 0.25 x the mean idf; bm25s's "robertson" method is that same formula
with negative values clipped to 0. `method="robertson"` therefore reproduces rank-bm25's scores (divided by k1 + 1)
for every term found in fewer than half the chunks (tests/retrieval/test_index.py checks it). We keep
"lucene" as the default because Okapi gives a term that occurs in most chunks zero or negative weight:
a document of one or two chunks could not be searched at all.

Searching several documents together (`multi_search`) reweights each document's term columns by the
idf computed over all of them (df and N summed), so scores are comparable across documents; the only
difference from one combined index is that each document keeps its own average chunk length, which is
nearly the same everywhere because chunks have a target size.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from lector.retrieval.bm25_terms import tokenize

DEFAULT_K1 = 1.5
DEFAULT_B = 0.75
DEFAULT_METHOD = "lucene"
INDEX_VERSION = "1"

_FILES = ("data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy")


def idf_value(method: str, df: np.ndarray, n: int) -> np.ndarray:
    df = df.astype(np.float64)
    if method == "robertson":
        return np.log(np.maximum((n - df + 0.5) / (df + 0.5), 1.0))
    if method == "lucene":
        return np.log(1.0 + (n - df + 0.5) / (df + 0.5))
    if method == "atire":
        return np.log(n / np.maximum(df, 1.0))
    raise ValueError(f"unsupported BM25 method {method!r}: use lucene, robertson or atire")


class BM25Index:
    """BM25 over a list of texts (chunks); `search` returns (position, score) pairs, best first."""

    def __init__(self, k1: float = DEFAULT_K1, b: float = DEFAULT_B, method: str = DEFAULT_METHOD) -> None:
        idf_value(method, np.zeros(1), 1)  # validates the method
        self.k1 = k1
        self.b = b
        self.method = method
        self.vocab: dict[str, int] = {}
        self.data: np.ndarray = np.zeros(0, dtype=np.float32)
        self.indices: np.ndarray = np.zeros(0, dtype=np.int32)
        self.indptr: np.ndarray = np.zeros(1, dtype=np.int64)
        self.num_docs = 0

    # building -----------------------------------------------------------------------------------------
    def build(self, texts: Iterable[str] | Iterable[object]) -> BM25Index:
        """Index texts (or Chunk-like objects with a `.text`)."""
        token_lists = [tokenize(t if isinstance(t, str) else t.text) for t in texts]  # type: ignore[attr-defined]
        return self.build_from_tokens(token_lists)

    def build_from_tokens(self, token_lists: Sequence[Sequence[str]]) -> BM25Index:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)
        vocab: dict[str, int] = {}
        ids = []
        for tokens in token_lists:
            for term in set(tokens).difference(vocab):
                vocab[term] = len(vocab)
            ids.append(list(map(vocab.__getitem__, tokens)))
        self.num_docs = len(ids)
        self.vocab = vocab
        if not vocab:
            self.data = np.zeros(0, dtype=np.float32)
            self.indices = np.zeros(0, dtype=np.int32)
            self.indptr = np.zeros(1, dtype=np.int64)
            return self
        engine = bm25s.BM25(k1=self.k1, b=self.b, method=self.method, backend="numpy", csc_backend="numpy")
        engine.index((ids, vocab), create_empty_token=False, show_progress=False)
        self.data = np.asarray(engine.scores["data"], dtype=np.float32)
        self.indices = np.asarray(engine.scores["indices"], dtype=np.int32)
        self.indptr = np.asarray(engine.scores["indptr"], dtype=np.int64)
        return self

    # statistics ---------------------------------------------------------------------------------------
    def term_ids(self, tokens: Sequence[str]) -> list[int]:
        vocab = self.vocab
        return [vocab[t] for t in tokens if t in vocab]

    def document_frequency(self, term_ids: Sequence[int]) -> np.ndarray:
        ids = np.asarray(term_ids, dtype=np.int64)
        return (self.indptr[ids + 1] - self.indptr[ids]).astype(np.int64)

    # searching ----------------------------------------------------------------------------------------
    def scores(self, query: str | Sequence[str], weights: dict[str, float] | None = None) -> np.ndarray:
        """Score of every indexed text. `weights` (term -> factor) rescales terms, e.g. to a shared idf."""
        tokens = tokenize(query) if isinstance(query, str) else list(query)
        out = np.zeros(self.num_docs, dtype=np.float32)
        if self.num_docs == 0:
            return out
        pieces_idx: list[np.ndarray] = []
        pieces_val: list[np.ndarray] = []
        for token in tokens:
            tid = self.vocab.get(token)
            if tid is None:
                continue
            lo, hi = int(self.indptr[tid]), int(self.indptr[tid + 1])
            values = self.data[lo:hi]
            if weights is not None:
                factor = weights.get(token, 1.0)
                if factor != 1.0:
                    values = values * np.float32(factor)
            pieces_idx.append(self.indices[lo:hi])
            pieces_val.append(values)
        if not pieces_idx:
            return out
        if len(pieces_idx) == 1:
            out[pieces_idx[0]] += pieces_val[0]
            return out
        return np.bincount(
            np.concatenate(pieces_idx), weights=np.concatenate(pieces_val), minlength=self.num_docs
        ).astype(np.float32)

    def search(
        self, query: str | Sequence[str], k: int = 8, weights: dict[str, float] | None = None
    ) -> list[tuple[int, float]]:
        """Top k (position, score) with score > 0, best first; ties broken by position."""
        return top_k(self.scores(query, weights), k)

    # persistence --------------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike[str]) -> None:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        for name, array in zip(_FILES, (self.data, self.indices, self.indptr), strict=True):
            np.save(path / name, array)
        terms = sorted(self.vocab, key=self.vocab.__getitem__)
        (path / "vocab.txt").write_text("\n".join(terms), encoding="utf-8")
        params = {
            "k1": self.k1,
            "b": self.b,
            "method": self.method,
            "num_docs": self.num_docs,
            "version": INDEX_VERSION,
            "vocab_size": len(terms),
        }
        (path / "params.json").write_text(json.dumps(params), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | os.PathLike[str], mmap: bool = True) -> BM25Index:
        path = Path(directory)
        params = json.loads((path / "params.json").read_text(encoding="utf-8"))
        index = cls(k1=params["k1"], b=params["b"], method=params["method"])
        index.num_docs = int(params["num_docs"])
        index.data, index.indices, index.indptr = (
            np.load(path / name, mmap_mode="r" if mmap else None) for name in _FILES
        )
        text = (path / "vocab.txt").read_text(encoding="utf-8")
        terms = text.split("\n") if text else []
        if len(terms) != int(params["vocab_size"]):
            raise ValueError(f"{path}: vocabulary size does not match its parameters")
        index.vocab = dict(zip(terms, range(len(terms)), strict=True))
        return index


def top_k(scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    if k <= 0 or scores.size == 0:
        return []
    positive = np.flatnonzero(scores > 0)
    if positive.size == 0:
        return []
    if positive.size > k:
        part = np.argpartition(-scores[positive], k - 1)[:k]
        positive = positive[part]
    order = np.lexsort((positive, -scores[positive]))
    chosen = positive[order]
    return [(int(i), float(scores[i])) for i in chosen]


def shared_idf_weights(indexes: Sequence[BM25Index], tokens: Sequence[str]) -> list[dict[str, float]]:
    """Per index, the factor that turns its own idf of each query term into the idf over all indexes."""
    if not indexes:
        return []
    method = indexes[0].method
    unique = list(dict.fromkeys(tokens))
    total_n = sum(ix.num_docs for ix in indexes)
    local_df = []
    total_df = np.zeros(len(unique), dtype=np.int64)
    for ix in indexes:
        df = np.array([ix.document_frequency([ix.vocab[t]])[0] if t in ix.vocab else 0 for t in unique], dtype=np.int64)
        local_df.append(df)
        total_df += df
    global_idf = idf_value(method, total_df, total_n)
    out: list[dict[str, float]] = []
    for ix, df in zip(indexes, local_df, strict=True):
        local_idf = idf_value(method, df, ix.num_docs)
        weights: dict[str, float] = {}
        for term, g, loc, d in zip(unique, global_idf, local_idf, df, strict=True):
            if d > 0 and loc > 0 and not math.isclose(g, loc):
                weights[term] = float(g / loc)
        out.append(weights)
    return out
