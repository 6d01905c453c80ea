"""The browser-extension backend: save the pages a person reads, list and delete them, ask across them."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, model_validator

from lector.llm.messages import Message
from lector.llm.unicode import ValidText
from lector.retrieval.levels import Level, LevelInput
from lector.webui.chat_api import state_of
from lector.webui.document_answers import Emit, cited, failure_text, read_documents
from lector.webui.sse import SSE_HEADERS, sse
from lector.webui.state import AppState

router = APIRouter(prefix="/pages", tags=["pages"])
ANSWERING: set[asyncio.Task[None]] = set()
"""Streamed answers still running (the event loop keeps only weak references to tasks)."""


class PageIn(BaseModel):
    url: ValidText = Field(..., min_length=1, max_length=4096, description="The page's address")
    title: ValidText = Field("", max_length=1000)
    html: ValidText | None = Field(None, description="The page's HTML (the server extracts readable text)")
    text: ValidText | None = Field(None, description="The page's text, when the extension already extracted it")

    @model_validator(mode="after")
    def one_body(self) -> PageIn:
        if not (self.html or self.text):
            raise ValueError("send the page as 'html' or 'text'")
        if not self.url.startswith(("http://", "https://", "file://")):
            raise ValueError("url must be an http(s) or file address")
        return self


class PageOut(BaseModel):
    id: str
    url: str
    title: str
    content_hash: str
    format: str
    doc_id: str | None
    status: Literal["pending", "ingesting", "ready", "error"]
    error: str | None
    created: float


class AskIn(BaseModel):
    question: ValidText = Field(..., min_length=1, max_length=4000)
    page_ids: list[str] | None = Field(None, description="Pages to ask across; omit for the whole library")
    level: LevelInput = Level.AUTO
    stream: bool = Field(
        False, description="Answer as server-sent events (level, chunk_read, status, text, saved, final)"
    )


def public(page: dict[str, Any]) -> dict[str, Any]:
    return {k: page[k] for k in PageOut.model_fields}


@router.post("", status_code=201, response_model=PageOut, responses={200: {"model": PageOut}})
async def add_page(body: PageIn, request: Request, response: Response) -> Any:
    """Save a page (deduplicated by URL and content hash) and queue it for indexing."""
    state = state_of(request)
    content = body.html if body.html else body.text or ""
    if len(content) > state.config.max_page_chars:
        raise HTTPException(413, f"page content of {len(content)} characters exceeds {state.config.max_page_chars}")
    fmt = "html" if body.html else "text"
    digest = hashlib.sha256(content.encode("utf-8", "surrogatepass")).hexdigest()
    page, created = state.store.add_page(body.url, body.title, content, digest, fmt)
    if created:
        request.app.state.ingester.enqueue_page(page["id"])
    else:
        response.status_code = 200
    return public(page)


@router.get("", response_model=list[PageOut])
def list_pages(
    request: Request,
    q: str | None = Query(None, max_length=500, description="Search titles, addresses and text"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> Any:
    """The saved pages, newest first, with their dates."""
    return [public(p) for p in state_of(request).store.list_pages(q, limit, offset)]


@router.get("/{pid}", response_model=PageOut)
def get_page(pid: str, request: Request) -> Any:
    page = state_of(request).store.get_page(pid)
    if page is None:
        raise HTTPException(404, f"no page {pid!r}")
    return public(page)


@router.delete("/{pid}", status_code=204)
async def delete_page(pid: str, request: Request) -> None:
    state = state_of(request)
    page = state.store.get_page(pid)
    if page is None:
        raise HTTPException(404, f"no page {pid!r}")
    state.store.delete_page(pid)
    others = [p for p in state.store.list_pages(limit=1_000_000) if p["doc_id"] == page["doc_id"]]
    if page["doc_id"] and not others:
        async with state.library_lock:
            state.library.remove(page["doc_id"])


@router.post("/ask", response_model=None)
async def ask_pages(body: AskIn, request: Request) -> dict[str, Any] | StreamingResponse:
    """Answer a question across the selected pages (or every saved page), with citations; with `stream`, as SSE
    events while the pages are read, the last one `final` (then `done`). Each answer is kept as a chat with the pages
    attached (`session_id`; event `saved`): list and delete them at /api/sessions."""
    state = state_of(request)
    if body.page_ids:
        pages = [state.store.get_page(p) for p in body.page_ids]
        missing = [pid for pid, p in zip(body.page_ids, pages, strict=True) if p is None]
        if missing:
            raise HTTPException(404, f"no page {missing[0]!r}")
    else:
        pages = state.store.list_pages(limit=1_000_000)  # type: ignore[assignment]
    ready = [p for p in pages if p and p["status"] == "ready" and p["doc_id"]]
    doc_ids = sorted({p["doc_id"] for p in ready})
    if not doc_ids:
        raise HTTPException(409, "none of these pages is indexed yet; try again when their status is 'ready'")
    level = body.level
    if body.stream:
        return StreamingResponse(
            stream_answer(state, body.question, level, doc_ids, [p["id"] for p in ready]),
            media_type="text/event-stream",
            headers=SSE_HEADERS,
        )
    from lector.agent.reader import aask

    answer = await aask(state.library, body.question, level, state.backend(), doc_ids=doc_ids)
    citations = cited(answer.citations, state.library, doc_ids)
    extra = {"citations": citations, "level": int(answer.level), "usage": answer.usage.model_dump()}
    sid = keep_answer(state, body.question, answer.answer, extra, [p["id"] for p in ready])
    return {**answer.to_json_dict(), "citations": citations, "session_id": sid}


def keep_answer(state: AppState, question: str, text: str, extra: dict[str, Any], page_ids: list[str]) -> str:
    """Keep a question and its answer as a chat with the pages attached: the side panel's history lists it (and
    deletes it) through the chat API, and the chat page can carry the conversation on."""
    session = state.store.create_session(question[:60])
    for pid in page_ids:
        state.store.attach_page(session["id"], pid)
    state.store.add_message(session["id"], "user", question)
    state.store.add_message(session["id"], "assistant", text, extra=extra)
    return str(session["id"])


MODEL_LOADING = "Loading the model (the first answer takes longer)…"


async def wait_for_the_model(state: AppState, emit: Emit, cancel: asyncio.Event) -> None:
    """While the server still loads the model (it starts loading as the server starts), say so and wait."""
    if state.model.state != "loading":
        return
    await emit({"type": "status", "text": MODEL_LOADING})
    while state.model.state == "loading" and not cancel.is_set():
        await asyncio.sleep(0.1)


async def stream_answer(
    state: AppState, question: str, level: Level, doc_ids: list[str], page_ids: list[str]
) -> AsyncIterator[bytes]:
    """The answer as SSE, kept as a chat (event `saved`) once written; a reader that hangs up stops the reading."""
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    cancel = asyncio.Event()

    async def answer() -> None:
        try:
            await wait_for_the_model(state, queue.put, cancel)
            reply = await read_documents(state.library, question, level, state.backend(), doc_ids, queue.put, cancel)
            await queue.put({"type": "text", "text": reply.text})
            sid = keep_answer(state, question, reply.text, reply.extra, page_ids)
            await queue.put({"type": "saved", "session_id": sid})
            await queue.put(reply.final_event(Message.assistant(reply.text)))
        except Exception as exc:
            await queue.put({"type": "error", "message": failure_text(exc)})
        finally:
            await queue.put(None)

    task = asyncio.create_task(answer())
    ANSWERING.add(task)
    task.add_done_callback(ANSWERING.discard)
    try:
        while (event := await queue.get()) is not None:
            yield sse(event)
        yield sse({"type": "done"})
    finally:
        cancel.set()  # a reader that hung up: the answer stops and its task ends on its own
