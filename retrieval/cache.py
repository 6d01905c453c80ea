"""On-disk cache of processed documents, keyed by content hash and processing parameters, never by path.

Layout: $LECTOR_CACHE (default ~/.cache/lector) / docs / <key[:2]> / <key> /
    meta.json      source, format, counts, the parameters the key was made from
    text.txt       the parsed text (chunk offsets point into it)
    chunks.npz     per chunk: start, end, page (-1 = none), section index (-1 = none), tokens
    sections.json  the distinct section names
    index/         the BM25 index (numpy arrays, loaded memory-mapped)

Entries are written to a temporary folder and renamed into place, so readers never see half an entry
and two processes adding the same document cannot corrupt it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.index import BM25Index

CACHE_FORMAT = "1"


def default_cache_dir() -> Path:
    env = os.environ.get("LECTOR_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lector"


def cache_key(doc_id: str, fmt: str, params: dict[str, object]) -> str:
    material = json.dumps({"doc": doc_id, "format": fmt, "cache": CACHE_FORMAT, **params}, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


@dataclass
class CachedDocument:
    key: str
    meta: dict
    text: str
    starts: np.ndarray
    ends: np.ndarray
    pages: np.ndarray
    section_ids: np.ndarray
    tokens: np.ndarray
    sections: list[str]
    index: BM25Index


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
            with open(path / "text.txt", encoding="utf-8", newline="") as handle:
                text = handle.read()
            arrays = np.load(path / "chunks.npz")
            sections = json.loads((path / "sections.json").read_text(encoding="utf-8"))
            index = BM25Index.load(path / "index", mmap=True)
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            if path.exists():  # entries appear whole (rename), so this one is damaged: rebuild it
                shutil.rmtree(path, ignore_errors=True)
            return None
        return CachedDocument(
            key,
            meta,
            text,
            arrays["start"],
            arrays["end"],
            arrays["page"],
            arrays["section"],
            arrays["tokens"],
            sections,
            index,
        )

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
