"""Shared retrieval shapes: a chunk of a document with its source location, and a search hit."""

from __future__ import annotations

from pydantic import BaseModel


class Chunk(BaseModel):
    """About 512 tokens of a document. `text == document_text[start:end]` always holds."""

    doc_id: str
    """Content hash of the parsed document."""
    source: str
    """What to show a person: the file name or URL."""
    chunk_id: int
    """Position of the chunk within its document, from 0."""
    start: int
    end: int
    """Character offsets into the document's parsed text."""
    page: int | None = None
    """1-based page (PDF, slides) or sheet number, where the format has pages."""
    section: str | None = None
    """Heading path or sheet name, where the format has them."""
    text: str
    tokens: int = 0


class Hit(BaseModel):
    chunk: Chunk
    score: float
    rank: int
