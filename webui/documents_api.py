"""Documents beyond their upload: the library of every chat's documents, a document's original file, the text
around a cited passage, and which documents and saved pages a chat reads (attach, remove)."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from lector.webui.chat_api import public_document, session_or_404, state_of
from lector.webui.state import AppState

router = APIRouter(prefix="/api", tags=["documents"])

INLINE_TYPES = {"application/pdf", "text/plain", "image/png", "image/jpeg", "image/gif", "image/webp"}
AS_TEXT = {
    "text/markdown",
    "text/csv",
    "text/x-rst",
    "text/html",
    "image/svg+xml",
    "application/xhtml+xml",
    "text/xml",
    "application/xml",
    "application/json",
}
"""Shown as plain text: a file that a browser would run as a page (HTML, SVG, XML) must not run on this origin."""
CONTEXT_CHARS = 600
"""Characters of the document shown on either side of a cited passage."""


def file_headers(filename: str) -> tuple[str, dict[str, str]]:
    """The media type and headers a document's original file is sent with."""
    guessed = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    media = "text/plain; charset=utf-8" if guessed in AS_TEXT else guessed
    inline = guessed in INLINE_TYPES or guessed in AS_TEXT
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    how = "inline" if inline else "attachment"
    disposition = f"{how}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    return media, {"Content-Disposition": disposition}  # the guard adds X-Content-Type-Options: nosniff


def document_or_404(state: AppState, did: str) -> dict[str, Any]:
    doc = state.store.get_document(did)
    if doc is None:
        raise HTTPException(404, f"no document {did!r}")
    return doc


def with_size(doc: dict[str, Any]) -> dict[str, Any]:
    path = Path(doc["path"])
    return {**public_document(doc), "size": path.stat().st_size if path.is_file() else None}


@router.get("/documents")
def list_documents(request: Request) -> list[dict[str, Any]]:
    """Every chat's uploaded documents (the library), oldest first, with their sizes in bytes."""
    return [with_size(d) for d in state_of(request).store.documents()]


@router.get("/documents/{did}/file", response_class=FileResponse)
def document_file(did: str, request: Request) -> FileResponse:
    """The document's original bytes, as uploaded. Pages that could run script are sent as plain text."""
    doc = document_or_404(state_of(request), did)
    path = Path(doc["path"])
    if not path.is_file():
        raise HTTPException(404, f"the file of {doc['filename']} is no longer on the server")
    media, headers = file_headers(doc["filename"])
    return FileResponse(path, media_type=media, headers=headers)


def known_doc_ids(state: AppState) -> dict[str, str]:
    """Library document id -> the name it is cited under, for the documents and pages the store holds."""
    names = {d["doc_id"]: d["filename"] for d in state.store.documents(status="ready") if d["doc_id"]}
    names.update({p["doc_id"]: p["url"] for p in state.store.list_pages(limit=1_000_000) if p["doc_id"]})
    return names


def passage_document(state: AppState, doc_id: str | None, source: str | None) -> str:
    """The library id of the document a citation points at, by its id or by the name it is cited under."""
    known = known_doc_ids(state)
    if doc_id:
        if doc_id not in known or doc_id not in state.library:
            raise HTTPException(404, f"no document {doc_id!r}")
        return doc_id
    named = [d for d, name in known.items() if name == source and d in state.library]
    if not named:
        raise HTTPException(404, f"no document named {source!r}")
    return named[0]


def around(text: str, start: int, end: int, radius: int = CONTEXT_CHARS) -> dict[str, str]:
    """The passage text[start:end] with up to `radius` characters either side, cut at a space."""
    before, after = text[max(0, start - radius) : start], text[end : end + radius]
    if start - radius > 0 and " " in before:
        before = "…" + before[before.index(" ") + 1 :]
    if end + radius < len(text) and " " in after:
        after = after[: after.rindex(" ")] + "…"
    return {"before": before, "text": text[start:end], "after": after}


@router.get("/passage")
def passage(
    request: Request,
    start: int = Query(..., ge=0),
    end: int = Query(..., ge=0),
    doc_id: str | None = Query(None, max_length=200, description="The document's library id (a citation's doc_id)"),
    source: str | None = Query(None, max_length=4096, description="Or the name the document is cited under"),
) -> dict[str, Any]:
    """A cited passage of a parsed document with the text around it: {before, text, after}."""
    if not (doc_id or source):
        raise HTTPException(422, "give doc_id or source")
    state = state_of(request)
    chosen = passage_document(state, doc_id, source)
    text = state.library.text(chosen)
    if not start <= end <= len(text):
        raise HTTPException(422, f"start and end must lie within the document's {len(text)} characters")
    return {"doc_id": chosen, "start": start, "end": end, **around(text, start, end)}


class AttachIn(BaseModel):
    document_ids: list[str] = Field(default_factory=list, max_length=200, description="Documents of other chats")
    page_ids: list[str] = Field(default_factory=list, max_length=200, description="Saved pages")


def session_sources(state: AppState, sid: str) -> dict[str, Any]:
    return {
        "documents": [public_document(d) for d in state.store.documents(sid)],
        "pages": state.store.session_pages(sid),
    }


@router.post("/sessions/{sid}/documents/attach")
def attach(sid: str, body: AttachIn, request: Request) -> dict[str, Any]:
    """Let a chat read documents of the library and saved pages too; returns all that the chat now reads."""
    state = state_of(request)
    session_or_404(state, sid)
    for did in body.document_ids:
        doc = document_or_404(state, did)
        if doc["status"] != "ready":
            why = "could not be read" if doc["status"] == "error" else "is still being read"
            raise HTTPException(409, f"{doc['filename']} {why}; a chat can use a document once it is ready")
    for pid in body.page_ids:
        if state.store.get_page(pid) is None:
            raise HTTPException(404, f"no page {pid!r}")
    for did in body.document_ids:
        state.store.copy_document(did, sid)
    for pid in body.page_ids:
        state.store.attach_page(sid, pid)
    return session_sources(state, sid)


@router.delete("/sessions/{sid}/documents/{did}", status_code=204)
async def remove_document(sid: str, did: str, request: Request) -> None:
    """Remove a document from a chat. Its file and index go too when no other chat has it."""
    state = state_of(request)
    session_or_404(state, sid)
    doc = document_or_404(state, did)
    if doc["session_id"] != sid:
        raise HTTPException(404, f"no document {did!r} in this chat")
    if doc["status"] == "ingesting":
        raise HTTPException(409, f"{doc['filename']} is still being read; remove it once it is ready or failed")
    state.store.delete_document(did)
    others = state.store.documents()
    indexed_elsewhere = [d["doc_id"] for d in others] + [p["doc_id"] for p in state.store.list_pages(limit=1_000_000)]
    if doc["doc_id"] and doc["doc_id"] not in indexed_elsewhere:
        async with state.library_lock:
            state.library.remove(doc["doc_id"])
    if not any(d["path"] == doc["path"] for d in others):
        Path(doc["path"]).unlink(missing_ok=True)


@router.delete("/sessions/{sid}/pages/{pid}", status_code=204)
def detach_page(sid: str, pid: str, request: Request) -> None:
    """Stop a chat reading a saved page (the page stays in the library)."""
    state = state_of(request)
    session_or_404(state, sid)
    if not state.store.detach_page(sid, pid):
        raise HTTPException(404, f"page {pid!r} is not attached to this chat")
