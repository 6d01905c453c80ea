"""On-disk cache of processed documents, keyed by content hash and processing parameters, never by path.

Layout: $LECTOR_CACHE (default ~/.cache/lector) / docs / <key[:2]> / <key> /
    meta.json      source, format, counts, the parameters the key was made from
    text.txt       the parsed text, UTF-8 (chunk offsets point into it; loaded memory-mapped)
    chunks.npz     per chunk: start, end (characters), byte_start, byte_end, page (-1 = none),
                   section index (-1 = none), tokens
    sections.json  the distinct section names
    index/         the BM25 index (numpy arrays, loaded memory-mapped)

Entries are written to a temporary folder and renamed into place, so readers never see half an entry
and two processes adding the same document cannot corrupt it.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

from lector.retrieval.index import BM25Index

CACHE_FORMAT = "2"


def default_cache_dir() -> Path:
    env = os.environ.get("LECTOR_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lector"


def cache_key(doc_id: str, fmt: str, params: dict[str, object]) -> str:
    material = json.dumps({"doc": doc_id, "format": fmt, "cache": CACHE_FORMAT, **params}, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


class CachedDocument:
    """One processed document. Loaded from the cache, its text stays on disk (memory-mapped) and each
    chunk's text is decoded from its byte range; the whole text is decoded only if asked for."""

    def __init__(
        self,
        key: str,
        meta: dict,
        starts: np.ndarray,
        ends: np.ndarray,
        pages: np.ndarray,
        section_ids: np.ndarray,
        tokens: np.ndarray,
        sections: list[str],
        index: BM25Index,
        text: str | None = None,
        byte_starts: np.ndarray | None = None,
        byte_ends: np.ndarray | None = None,
        raw: mmap.mmap | None = None,
    ) -> None:
        self.key, self.meta, self.index, self.sections = key, meta, index, sections
        self.starts, self.ends, self.pages, self.section_ids, self.tokens = starts, ends, pages, section_ids, tokens
        self._text = text
        self._raw = raw
        if byte_starts is None or byte_ends is None:
            assert text is not None, "a document needs its text or byte offsets into it"
            byte_starts, byte_ends = byte_offsets(text, starts, ends)
        self.byte_starts, self.byte_ends = byte_starts, byte_ends
        self._lock = threading.Lock()
        self._lowered: bytes | None = None

    @property
    def chars(self) -> int:
        return int(self.meta["chars"])

    @property
    def text(self) -> str:
        if self._text is None:
            with self._lock:
                if self._text is None:
                    assert self._raw is not None
                    self._text = self._raw[:].decode("utf-8")
        return self._text

    def lowered(self) -> bytes:
        """The text's UTF-8 bytes with ASCII letters lowered (what phrases are searched in); made once."""
        if self._lowered is None:
            with self._lock:
                if self._lowered is None:
                    data = self._raw[:] if self._raw is not None else self.text.encode("utf-8")
                    self._lowered = data.lower()
        return self._lowered

    def chunk_at(self, byte_offset: int) -> int:
        """The chunk holding the byte at `byte_offset` (the first one, where chunks overlap)."""
        return min(len(self.byte_ends) - 1, int(np.searchsorted(self.byte_ends, byte_offset, side="right")))

    def chunk_text(self, i: int) -> str:
        if self._text is not None:
            return self._text[int(self.starts[i]) : int(self.ends[i])]
        assert self._raw is not None
        return self._raw[int(self.byte_starts[i]) : int(self.byte_ends[i])].decode("utf-8")


def byte_offsets(text: str, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 byte offsets of the given character offsets."""
    if text.isascii():
        return starts.astype(np.int64), ends.astype(np.int64)
    positions = sorted(set(starts.tolist()) | set(ends.tolist()))
    mapping: dict[int, int] = {}
    previous = size = 0
    for position in positions:
        size += len(text[previous:position].encode("utf-8"))
        mapping[position] = size
        previous = position
    convert = np.vectorize(mapping.__getitem__, otypes=[np.int64])
    if not len(starts):
        return starts.astype(np.int64), ends.astype(np.int64)
    return convert(starts), convert(ends)


class DocumentCache:
    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root).expanduser() if root else default_cache_dir()

    def path(self, key: str) -> Path:
        return self.root / "docs" / key[:2] / key

    def has(self, key: str) -> bool:
        return (self.path(key) / "meta.json").exists()

    def load(self, key: str) -> CachedDocument | None:
        path = self.path(key)
        try:
            meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
            with open(path / "text.txt", "rb") as handle:
                raw = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            arrays = np.load(path / "chunks.npz")
            sections = json.loads((path / "sections.json").read_text(encoding="utf-8"))
            index = BM25Index.load(path / "index", mmap=True)
            return CachedDocument(
                key, meta, arrays["start"], arrays["end"], arrays["page"], arrays["section"], arrays["tokens"],
                sections, index, byte_starts=arrays["byte_start"], byte_ends=arrays["byte_end"], raw=raw,
            )  # fmt: skip
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            if path.exists():  # entries appear whole (rename), so this one is damaged: rebuild it
                shutil.rmtree(path, ignore_errors=True)
            return None

    def store(self, entry: CachedDocument) -> None:
        final = self.path(entry.key)
        if (final / "meta.json").exists():
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{entry.key[:16]}-", dir=final.parent))
        try:
            (tmp / "text.txt").write_text(entry.text, encoding="utf-8", newline="")
            np.savez(
                tmp / "chunks.npz",
                start=entry.starts,
                end=entry.ends,
                byte_start=entry.byte_starts,
                byte_end=entry.byte_ends,
                page=entry.pages,
                section=entry.section_ids,
                tokens=entry.tokens,
            )
            (tmp / "sections.json").write_text(json.dumps(entry.sections, ensure_ascii=False), encoding="utf-8")
            entry.index.save(tmp / "index")
            (tmp / "meta.json").write_text(json.dumps(entry.meta, ensure_ascii=False), encoding="utf-8")
            try:
                os.rename(tmp, final)
            except OSError:  # another process stored it first
                if not (final / "meta.json").exists():
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def clear(self) -> None:
        shutil.rmtree(self.root / "docs", ignore_errors=True)
