"""How far a document's ingestion has got: the stage, the passages indexed of how many, and a percentage."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from lector.retrieval.types import Chunk

PARSED_PERCENT = 10
SPLIT_PERCENT = 30
INDEXED_PERCENT = 90
REPORTS = 50
"""About how many reports the indexing stage sends, however many passages there are."""


@dataclass(frozen=True)
class IngestStep:
    stage: str
    """What is being done: "parsing", "splitting into passages", "indexing" or "saving"."""
    percent: int
    chunks_done: int = 0
    chunks_total: int = 0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


OnProgress = Callable[[IngestStep], None]


def tell(on_progress: OnProgress | None, stage: str, percent: int) -> None:
    if on_progress is not None:
        on_progress(IngestStep(stage, percent))


def tokenized(
    chunks: Sequence[Chunk], tokenize: Callable[[str], list[str]], on_progress: OnProgress | None
) -> list[list[str]]:
    """Each chunk's index terms, telling `on_progress` how many chunks are done as it goes."""
    total, out = len(chunks), []
    every = max(1, total // REPORTS)
    for done, chunk in enumerate(chunks, 1):
        out.append(tokenize(chunk.text))
        if on_progress is not None and (done % every == 0 or done == total):
            percent = SPLIT_PERCENT + (INDEXED_PERCENT - SPLIT_PERCENT) * done // total
            on_progress(IngestStep("indexing", percent, done, total))
    return out
