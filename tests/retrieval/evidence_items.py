"""Evidence items made from texts, as a reading prompt would show them (for pointer and value tests)."""

from __future__ import annotations

from lector.retrieval.reading_types import Evidence
from lector.retrieval.types import Chunk


def items(*texts: str, source: str = "m.txt") -> list[Evidence]:
    out = []
    for i, text in enumerate(texts):
        chunk = Chunk(doc_id="d", chunk_id=i, text=text, start=1000 * i, end=1000 * i + len(text), source=source)
        out.append(Evidence.of_chunk(chunk))
    return out
