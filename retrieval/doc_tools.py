"""Tools that make a conversation's documents searchable and readable by the planner.

The documents are the conversation's attachments (`ToolContext.attachments`, added to the Library on first
use; the Library's cache makes that cheap) plus any doc ids listed in `ctx.state["doc_ids"]`.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from lector.llm.backend import Backend
from lector.retrieval.context import ReadingContext
from lector.retrieval.level2 import Level2Config, level2
from lector.retrieval.library import Library
from lector.retrieval.types import Chunk
from lector.tools.base import Tool, ToolContext, ToolResult

SNIPPET_CHARS = 700
NO_DOCUMENTS = "No documents are attached to this conversation."


def _location(chunk: Chunk) -> str:
    where = f"{chunk.source}, chunk {chunk.chunk_id}"
    if chunk.page is not None:
        where += f", page {chunk.page}"
    if chunk.section:
        where += f", {chunk.section[:60]}"
    return where


class _DocumentTool(Tool):
    def __init__(self, library: Library) -> None:
        self.library = library

    async def doc_ids(self, ctx: ToolContext) -> list[str]:
        """The conversation's documents, adding attachments the Library has not seen (remembered in state)."""
        known: dict[str, str] = ctx.state.setdefault("attached_doc_ids", {})
        for path in ctx.attachments:
            key = os.fspath(path)
            if key not in known:
                known[key] = await asyncio.to_thread(self.library.add_file, path)
        ids = list(known.values()) + [d for d in ctx.state.get("doc_ids", []) if d in self.library]
        return list(dict.fromkeys(ids))


class SearchDocumentsTool(_DocumentTool):
    name = "search_documents"
    description = (
        "Search the documents attached to this conversation (BM25 keyword search). Returns the best passages "
        "with their source, chunk number and page; read more around one with read_document."
    )
    parameters = {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "keywords to look for, in the documents' language"},
            "k": {"type": "integer", "minimum": 1, "maximum": 20, "default": 5, "description": "passages"},
        },
        "required": ["query"],
        "additionalProperties": False,
    }
    timeout = 120.0

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult | str:
        ids = await self.doc_ids(ctx)
        if not ids:
            return ToolResult.failure(NO_DOCUMENTS)
        hits = self.library.search(args["query"], k=int(args.get("k", 5)), doc_ids=ids)
        if not hits:
            return f"No passage matches {args['query']!r}."
        parts = []
        for hit in hits:
            text = hit.chunk.text.strip()
            if len(text) > SNIPPET_CHARS:
                text = text[:SNIPPET_CHARS] + " …"
            parts.append(f"[{hit.rank}] {_location(hit.chunk)} (score {hit.score:.2f})\n{text}")
        return ToolResult(content="\n\n".join(parts), source=hits[0].chunk.source)


class ReadDocumentTool(_DocumentTool):
    name = "read_document"
    description = "Read one chunk of an attached document (and optionally the chunks around it) in full."
    parameters = {
        "type": "object",
        "properties": {
            "source": {"type": "string", "description": "the document's source as search_documents shows it"},
            "chunk_id": {"type": "integer", "minimum": 0},
            "radius": {"type": "integer", "minimum": 0, "maximum": 2, "default": 0},
        },
        "required": ["source", "chunk_id"],
        "additionalProperties": False,
    }
    timeout = 60.0

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult | str:
        ids = await self.doc_ids(ctx)
        if not ids:
            return ToolResult.failure(NO_DOCUMENTS)
        wanted = str(args["source"])
        infos = [self.library.document(d) for d in ids]
        match = [i for i in infos if i.source == wanted] or [
            i for i in infos if os.path.basename(i.source) == os.path.basename(wanted)
        ]
        if not match:
            names = ", ".join(i.source for i in infos)
            return ToolResult.failure(f"Error: no attached document {wanted!r}. Attached: {names}.")
        info = match[0]
        chunk_id = int(args["chunk_id"])
        if not 0 <= chunk_id < info.chunks:
            return ToolResult.failure(f"Error: {info.source} has chunks 0 to {info.chunks - 1}.")
        chunks = self.library.neighbours(info.doc_id, chunk_id, int(args.get("radius", 0)))
        text = "\n\n".join(f"[{_location(c)}]\n{c.text.strip()}" for c in chunks)
        return ToolResult(content=text, source=info.source)


class AskDocumentsTool(_DocumentTool):
    name = "ask_documents"
    description = (
        "Answer a question from the attached documents by reading the relevant passages (slower than "
        "search_documents, but it reads them). Returns the answer with quoted citations."
    )
    parameters = {
        "type": "object",
        "properties": {"question": {"type": "string", "description": "one self-contained question"}},
        "required": ["question"],
        "additionalProperties": False,
    }
    timeout = 1800.0

    def __init__(self, library: Library, backend: Backend, config: Level2Config | None = None) -> None:
        super().__init__(library)
        self.backend = backend
        self.config = config

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult | str:
        ids = await self.doc_ids(ctx)
        if not ids:
            return ToolResult.failure(NO_DOCUMENTS)
        answer = await level2(ReadingContext(self.library, self.backend, ids), args["question"], self.config)
        lines = [answer.answer, ""]
        for i, c in enumerate(answer.citations, 1):
            page = f", page {c.page}" if c.page is not None else ""
            lines.append(f'[{i}] {c.source}, chunk {c.chunk_id}{page}: "{c.text.strip()[:300]}"')
        usage = answer.usage
        lines.append(f"(read with {usage.llm_calls} model calls, {usage.prompt_tokens} prompt tokens)")
        source = answer.citations[0].source if answer.citations else None
        return ToolResult(content="\n".join(lines).strip(), source=source)


def document_tools(library: Library, backend: Backend | None = None, config: Level2Config | None = None) -> list[Tool]:
    """search_documents and read_document, plus ask_documents (Level 2) when a backend is given."""
    tools: list[Tool] = [SearchDocumentsTool(library), ReadDocumentTool(library)]
    if backend is not None:
        tools.append(AskDocumentsTool(library, backend, config))
    return tools
