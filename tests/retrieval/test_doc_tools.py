"""Document tools: a conversation's attachments become searchable and readable through the registry."""

from __future__ import annotations

import json
import re

from lector.llm.backend import ChatOptions
from lector.llm.messages import Message, ToolCall
from lector.llm.scripted import ScriptedBackend
from lector.retrieval.doc_tools import document_tools
from lector.retrieval.level2 import READ_SCHEMA
from lector.retrieval.library import Library
from lector.tools.base import ToolContext
from lector.tools.registry import ToolRegistry

NEEDLE = "The lighthouse keeper Orvald Brenn painted the tower green in 1887."


def attachment(tmp_path):
    paras = [f"Paragraph {i} is about the harvest and the mill of the valley." for i in range(800)]
    paras.insert(500, NEEDLE)
    path = tmp_path / "valley.txt"
    path.write_text("\n\n".join(paras), encoding="utf-8")
    return path


def call(name: str, **args: object) -> ToolCall:
    return ToolCall(name=name, arguments=json.dumps(args))


async def test_search_and_read_attached_documents(tmp_path) -> None:
    library = Library(cache_dir=tmp_path / "cache")
    registry = ToolRegistry(document_tools(library))
    assert registry.names() == ["search_documents", "read_document"]
    ctx = ToolContext(attachments=[attachment(tmp_path)])

    found = await registry.execute(call("search_documents", query="lighthouse keeper", k=2), ctx)
    assert not found.error and "Orvald" in found.content
    match = re.search(r"\[1\] (\S+), chunk (\d+)", found.content)
    assert match and match.group(1).endswith("valley.txt")
    chunk_id = int(match.group(2))

    read = await registry.execute(call("read_document", source="valley.txt", chunk_id=chunk_id, radius=1), ctx)
    assert not read.error and NEEDLE in read.content and f"chunk {chunk_id - 1}" in read.content
    assert len(library.documents()) == 1  # the attachment was added once and remembered

    missing = await registry.execute(call("read_document", source="other.txt", chunk_id=0), ctx)
    assert missing.error and "valley.txt" in missing.content
    bad = await registry.execute(call("read_document", source="valley.txt", chunk_id=10_000), ctx)
    assert bad.error
    invalid = await registry.execute(call("search_documents", k=3), ctx)
    assert invalid.error and "query" in invalid.content


async def test_no_attachments_is_a_clear_error(tmp_path) -> None:
    registry = ToolRegistry(document_tools(Library(cache_dir=tmp_path)))
    result = await registry.execute(call("search_documents", query="x"), ToolContext())
    assert result.error and "No documents" in result.content


async def test_doc_ids_in_state_are_searchable(tmp_path) -> None:
    library = Library(cache_dir=tmp_path)
    doc = library.add_text(NEEDLE + "\n\nSomething else entirely.", "note.md", "md")
    registry = ToolRegistry(document_tools(library))
    result = await registry.execute(call("search_documents", query="Orvald"), ToolContext(state={"doc_ids": [doc]}))
    assert "note.md" in result.content


async def test_ask_documents_answers_with_quoted_citations(tmp_path) -> None:
    def reply(messages: list[Message], tools: object, options: ChatOptions) -> str:
        schema = options.json_schema or {}
        if "keywords_en" in schema.get("properties", {}):
            return json.dumps({"keywords_en": ["lighthouse"]})
        if schema == READ_SCHEMA:
            found = [s for s in re.split(r"(?<=\.)\s+", messages[-1].content) if "Orvald" in s]
            return json.dumps({"relevant": bool(found), "quotes": found})
        return "Green [1]."

    library = Library(cache_dir=tmp_path / "cache")
    registry = ToolRegistry(document_tools(library, ScriptedBackend(default=reply)))
    assert "ask_documents" in registry
    ctx = ToolContext(attachments=[attachment(tmp_path)])
    result = await registry.execute(call("ask_documents", question="What colour is the lighthouse?"), ctx)
    assert not result.error
    assert result.content.startswith("Green") and NEEDLE in result.content and "model calls" in result.content
