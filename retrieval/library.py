"""A set of documents searched together.

    lib = Library()                          # cache in $LECTOR_CACHE or ~/.cache/lector
    doc_id = lib.add_file("manual.pdf")       # parse + chunk + index, or load all of it from the cache
    hits = lib.search("how to reset", k=8)   # ranked Hits over every document (or doc_ids=[...])
    lib.neighbours(doc_id, hits[0].chunk.chunk_id)

Each document has its own BM25 index (cached by content hash). A search over several documents
reweights every document's terms by the idf over all the searched documents (see retrieval.index),
so scores compare across documents as in one combined index. Reads are thread-safe.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from lector.retrieval.bm25_terms import TOKENIZER_VERSION, tokenize
from lector.retrieval.cache import CachedDocument, DocumentCache, cache_key
from lector.retrieval.chunking import CHUNKER_VERSION, chunk_with_total
from lector.retrieval.index import DEFAULT_B, DEFAULT_K1, DEFAULT_METHOD, BM25Index, shared_idf_weights, top_k
from lector.retrieval.ingest_progress import INDEXED_PERCENT, PARSED_PERCENT, OnProgress, tell, tokenized
from lector.retrieval.parsers import (
    DocumentError,
    ParseBudget,
    ParsedDocument,
    content_hash,
    detect_format,
    parse_text,
    read_file_bytes,
)
from lector.retrieval.parsers.base import PARSER_VERSION
from lector.retrieval.parsers.isolated import parse_bounded
from lector.retrieval.phrases import find_phrase, phrase_pattern, phrase_words, quoted_spans
from lector.retrieval.types import Chunk, Hit


def walk_paths(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Files as given, and each folder replaced by the files under it, in name order, hidden ones skipped."""
    out: list[str] = []
    for item in paths:
        path = os.fspath(item)
        if not os.path.isdir(path):
            out.append(path)
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            out.extend(os.path.join(root, f) for f in sorted(files) if not f.startswith("."))
    return out


@dataclass
class DocumentInfo:
    doc_id: str
    source: str
    format: str
    chars: int
    tokens: int
    chunks: int
    cached: bool = False
    """True when this document was loaded from the cache rather than processed."""


@dataclass
class AddResult:
    doc_ids: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    """path -> reason, for the files that could not be added."""


@dataclass
class _Doc:
    info: DocumentInfo
    cached: CachedDocument


class Library:
    def __init__(
        self,
        cache_dir: str | os.PathLike[str] | None = None,
        *,
        target_tokens: int = 512,
        overlap_tokens: int = 48,
        k1: float = DEFAULT_K1,
        b: float = DEFAULT_B,
        method: str = DEFAULT_METHOD,
        use_cache: bool = True,
        max_bytes: int | None = None,
        budget: ParseBudget | None = None,
    ) -> None:
        self.cache = DocumentCache(cache_dir)
        self.use_cache = use_cache
        self.max_bytes = max_bytes
        self.budget = budget or ParseBudget()
        """What parsing one file may spend; files are parsed in a child process that is stopped past it."""
        self.params: dict[str, object] = {
            "target_tokens": target_tokens,
            "overlap_tokens": overlap_tokens,
            "k1": k1,
            "b": b,
            "method": method,
            "tokenizer": TOKENIZER_VERSION,
            "chunker": CHUNKER_VERSION,
            "parser": PARSER_VERSION,
        }
        self._docs: dict[str, _Doc] = {}
        self._lock = threading.RLock()
        self.stats = {"cache_hits": 0, "cache_misses": 0}

    # adding -------------------------------------------------------------------------------------------
    def add_file(
        self, path: str | os.PathLike[str], source: str | None = None, *, on_progress: OnProgress | None = None
    ) -> str:
        """Add one file; returns its doc_id. Raises DocumentError. `source` names it in citations (or the path);
        `on_progress` hears how far it has got."""
        name = os.fspath(path)
        return self._add(read_file_bytes(name, self.max_bytes), source or name, fmt=None, on_progress=on_progress)

    def add_text(self, text: str, source: str, format: str = "txt") -> str:
        doc = parse_text(text, source, format)
        return self._add_parsed(doc)

    def add_paths(self, paths: Iterable[str | os.PathLike[str]], progress: bool = True) -> AddResult:
        """Add files and the files inside folders (walked in name order, hidden entries skipped)."""
        return self.add_files(walk_paths(paths), progress=progress)

    def add_files(self, paths: Iterable[str | os.PathLike[str]], progress: bool = True) -> AddResult:
        """Add many files; a bad file is reported in `errors` and does not stop the others."""
        from tqdm import tqdm

        items = [os.fspath(p) for p in paths]
        result = AddResult()
        bar = tqdm(items, desc="indexing", unit="file", disable=not progress, dynamic_ncols=True)
        for path in bar:
            bar.set_postfix_str(os.path.basename(path)[-40:], refresh=False)
            try:
                result.doc_ids.append(self.add_file(path))
            except DocumentError as exc:
                result.errors[path] = exc.reason
            except Exception as exc:  # a parser bug must not stop the batch
                result.errors[path] = f"{type(exc).__name__}: {exc}"
        return result

    def _add(self, data: bytes, source: str, fmt: str | None, on_progress: OnProgress | None = None) -> str:
        doc_id = content_hash(data)
        fmt = fmt or detect_format(source, data[:8192]) or "unknown"
        key = cache_key(doc_id, fmt, self.params)
        if self._load_cached(key, doc_id, source):
            return doc_id
        tell(on_progress, "parsing", 0)
        doc = parse_bounded(data, source, budget=self.budget, max_bytes=self.max_bytes)
        del data  # a large file's bytes need not stay alive while it is chunked and indexed
        return self._store(doc, key, on_progress)

    def _add_parsed(self, doc: ParsedDocument) -> str:
        key = cache_key(doc.doc_id, doc.format, self.params)
        if self._load_cached(key, doc.doc_id, doc.source):
            return doc.doc_id
        return self._store(doc, key)

    def _load_cached(self, key: str, doc_id: str, source: str) -> bool:
        with self._lock:
            existing = self._docs.get(doc_id)
        if existing is not None and existing.cached.key == key:
            return True
        if not self.use_cache:
            return False
        entry = self.cache.load(key)
        if entry is None:
            return False
        info = DocumentInfo(
            doc_id,
            source,
            entry.meta["format"],
            entry.chars,
            int(entry.meta["tokens"]),
            len(entry.starts),
            cached=True,
        )
        with self._lock:
            self._docs[doc_id] = _Doc(info, entry)
            self.stats["cache_hits"] += 1
        return True

    def _store(self, doc: ParsedDocument, key: str, on_progress: OnProgress | None = None) -> str:
        p = self.params
        tell(on_progress, "splitting into passages", PARSED_PERCENT)
        chunks, total = chunk_with_total(doc, int(p["target_tokens"]), int(p["overlap_tokens"]))  # type: ignore[call-overload]
        index = BM25Index(k1=float(p["k1"]), b=float(p["b"]), method=str(p["method"]))  # type: ignore[arg-type]
        index.build_from_tokens(tokenized(chunks, tokenize, on_progress))
        tell(on_progress, "saving", INDEXED_PERCENT)
        sections: dict[str, int] = {}
        section_ids = [sections.setdefault(c.section, len(sections)) if c.section is not None else -1 for c in chunks]
        entry = CachedDocument(
            key=key,
            meta={
                "doc_id": doc.doc_id,
                "source": doc.source,
                "format": doc.format,
                "tokens": total,
                "chunks": len(chunks),
                "chars": len(doc.text),
                "created": time.time(),
                "params": self.params,
            },
            text=doc.text,
            starts=np.array([c.start for c in chunks], dtype=np.int64),
            ends=np.array([c.end for c in chunks], dtype=np.int64),
            pages=np.array([c.page if c.page is not None else -1 for c in chunks], dtype=np.int32),
            section_ids=np.array(section_ids, dtype=np.int32),
            tokens=np.array([c.tokens for c in chunks], dtype=np.int32),
            sections=list(sections),
            index=index,
        )
        if self.use_cache:
            try:
                self.cache.store(entry)
            except OSError:
                pass  # a read-only or full cache only costs speed
        info = DocumentInfo(doc.doc_id, doc.source, doc.format, len(doc.text), total, len(chunks))
        with self._lock:
            self._docs[doc.doc_id] = _Doc(info, entry)
            self.stats["cache_misses"] += 1
        return doc.doc_id

    # managing -----------------------------------------------------------------------------------------
    def remove(self, doc_id: str) -> bool:
        with self._lock:
            return self._docs.pop(doc_id, None) is not None

    def documents(self) -> list[DocumentInfo]:
        with self._lock:
            return [d.info for d in self._docs.values()]

    def document(self, doc_id: str) -> DocumentInfo:
        return self._get(doc_id).info

    def text(self, doc_id: str) -> str:
        return self._get(doc_id).cached.text

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._docs

    def __len__(self) -> int:
        return len(self._docs)

    def _get(self, doc_id: str) -> _Doc:
        with self._lock:
            doc = self._docs.get(doc_id)
        if doc is None:
            raise KeyError(f"no document {doc_id!r} in the library")
        return doc

    # reading ------------------------------------------------------------------------------------------
    def chunk(self, doc_id: str, chunk_id: int) -> Chunk:
        doc = self._get(doc_id)
        entry = doc.cached
        if not 0 <= chunk_id < len(entry.starts):
            raise IndexError(f"document {doc.info.source} has no chunk {chunk_id}")
        start, end = int(entry.starts[chunk_id]), int(entry.ends[chunk_id])
        page = int(entry.pages[chunk_id])
        section = int(entry.section_ids[chunk_id])
        return Chunk.model_construct(  # fields are typed here already; skips validation (fast for 10^4 chunks)
            doc_id=doc_id,
            source=doc.info.source,
            chunk_id=chunk_id,
            start=start,
            end=end,
            page=page if page >= 0 else None,
            section=entry.sections[section] if section >= 0 else None,
            text=entry.chunk_text(chunk_id),
            tokens=int(entry.tokens[chunk_id]),
        )

    def chunks(self, doc_id: str) -> list[Chunk]:
        return [self.chunk(doc_id, i) for i in range(self._get(doc_id).info.chunks)]

    def neighbours(self, doc_id: str, chunk_id: int, radius: int = 1) -> list[Chunk]:
        """The chunk and up to `radius` chunks either side of it, in document order."""
        n = self._get(doc_id).info.chunks
        return [self.chunk(doc_id, i) for i in range(max(0, chunk_id - radius), min(n, chunk_id + radius + 1))]

    def total_tokens(self, doc_ids: Sequence[str] | None = None) -> int:
        ids = self._select(doc_ids)
        return sum(self._get(d).info.tokens for d in ids)

    def _select(self, doc_ids: Sequence[str] | None) -> list[str]:
        with self._lock:
            if doc_ids is None:
                return list(self._docs)
        missing = [d for d in doc_ids if d not in self._docs]
        if missing:
            raise KeyError(f"no document {missing[0]!r} in the library")
        return list(dict.fromkeys(doc_ids))

    # searching ----------------------------------------------------------------------------------------
    def search(self, query: str | Sequence[str], k: int = 8, doc_ids: Sequence[str] | None = None) -> list[Hit]:
        """The k best chunks over the selected documents (all by default), best first.

        `query` is a string (tokenized like the documents) or a list of already tokenized BM25 terms. The quoted
        spans of a string query are also searched as phrases: a chunk holding one ranks above every chunk that
        does not (see `phrase_chunks`)."""
        ids = self._select(doc_ids)
        tokens = tokenize(query) if isinstance(query, str) else list(query)
        patterns = phrase_patterns(query) if isinstance(query, str) else []
        if not ids or not (tokens or patterns) or k <= 0:
            return []
        docs = [self._get(d) for d in ids]
        indexes = [d.cached.index for d in docs]
        weights: list[dict[str, float] | None] = (
            list(shared_idf_weights(indexes, tokens)) if len(indexes) > 1 else [None]
        )
        candidates: list[tuple[float, int, int]] = []
        phrased: list[tuple[float, int, int, int]] = []
        for position, (doc, w) in enumerate(zip(docs, weights, strict=True)):
            scores = doc.cached.index.scores(tokens, weights=w)
            candidates += [(score, position, chunk_id) for chunk_id, score in top_k(scores, k)]
            phrased += [(float(scores[c]), n, position, c) for c, n in phrase_chunks(doc.cached, patterns).items()]
        ranked = _phrase_first(candidates, phrased)
        return [
            Hit(chunk=self.chunk(docs[pos].info.doc_id, chunk_id), score=score, rank=rank)
            for rank, (score, pos, chunk_id) in enumerate(ranked[:k], start=1)
        ]

    def scores(self, doc_id: str, query: str | Sequence[str]) -> np.ndarray:
        """BM25 score of every chunk of one document (its own idf)."""
        return self._get(doc_id).cached.index.scores(query)


MAX_PHRASE_CHUNKS = 40
"""A quoted span found in more chunks than this says little about where the answer is: it is not boosted."""


def phrase_patterns(query: str) -> list[re.Pattern[bytes]]:
    """The patterns of the query's quoted spans of two words or more (BM25 weighs a single word well)."""
    spans = [span for span in quoted_spans(query) if len(phrase_words(span)) > 1]
    return [p for span in spans if (p := phrase_pattern(span)) is not None]


def phrase_chunks(doc: CachedDocument, patterns: Sequence[re.Pattern[bytes]]) -> dict[int, int]:
    """chunk id -> how many of the phrases it holds, over the phrases found in at most MAX_PHRASE_CHUNKS chunks."""
    held: dict[int, int] = {}
    if not patterns or not len(doc.byte_ends):
        return held
    lowered = doc.lowered()
    for pattern in patterns:
        chunks: set[int] = set()
        for start, _ in find_phrase(lowered, pattern):
            chunks.add(doc.chunk_at(start))
            if len(chunks) > MAX_PHRASE_CHUNKS:
                break
        if len(chunks) <= MAX_PHRASE_CHUNKS:
            for chunk_id in chunks:
                held[chunk_id] = held.get(chunk_id, 0) + 1
    return held


def _phrase_first(
    candidates: list[tuple[float, int, int]], phrased: list[tuple[float, int, int, int]]
) -> list[tuple[float, int, int]]:
    """(score, document position, chunk id), best first: BM25 candidates, with the chunks that hold phrases
    lifted above them all. A lifted score is the chunk's BM25 score plus, per phrase held, the best BM25
    score and one: more phrases rank higher, then BM25 decides."""
    lift = max((c[0] for c in candidates), default=0.0) + 1.0
    merged = {(pos, chunk): score for score, pos, chunk in candidates}
    for score, count, pos, chunk in phrased:
        merged[(pos, chunk)] = score + count * lift
    return sorted(((s, p, c) for (p, c), s in merged.items()), key=lambda c: (-c[0], c[1], c[2]))


__all__ = ["Library", "DocumentInfo", "AddResult", "top_k"]
