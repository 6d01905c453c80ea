"""What every reading level needs, in one object: the documents, the model, and what one answer shares."""

from __future__ import annotations

from dataclasses import dataclass, field

from lector.llm.backend import Backend
from lector.retrieval.keywords import KeywordCache
from lector.retrieval.reading_types import LibraryLike, UsageMeter


@dataclass
class ReadingContext:
    """One answer's reading: every level and sub-question it runs shares the meter and the keyword cache."""

    library: LibraryLike
    backend: Backend
    doc_ids: list[str] | None = None
    """The documents to read; None reads every document of the library."""
    meter: UsageMeter = field(default_factory=UsageMeter)
    keyword_cache: KeywordCache | None = None
    """None uses the process-wide cache (retrieval.keywords.DEFAULT_CACHE)."""

    def document_ids(self) -> list[str]:
        return list(self.doc_ids) if self.doc_ids else [d.doc_id for d in self.library.documents()]
