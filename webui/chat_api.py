"""The chat API: sessions, messages, streamed answers (SSE), stop, and document uploads."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from lector.agent.assistant import default_system_prompt
from lector.agent.events import Event, Final, TextDelta
from lector.agent.loop import run_agent
from lector.llm.messages import Message, ToolCall
from lector.llm.unicode import ValidText
from lector.retrieval.levels import Level
from lector.webui.chat_settings import ChatSettings
from lector.webui.document_answers import failure_text, read_documents
from lector.webui.sse import SSE_HEADERS, sse
from lector.webui.state import AppState, Turn

router = APIRouter(prefix="/api", tags=["chat"])


class SessionIn(BaseModel):
    title: ValidText = Field("", max_length=200)
    settings: ChatSettings = Field(default_factory=ChatSettings)


class ChatIn(BaseModel):
    content: ValidText = Field(..., min_length=1, max_length=100_000)
    settings: ChatSettings | None = None


def state_of(request: Request) -> AppState:
    return request.app.state.lector


def session_or_404(state: AppState, sid: str) -> dict[str, Any]:
    session = state.store.get_session(sid)
    if session is None:
        raise HTTPException(404, f"no session {sid!r}")
    return session


def row_to_message(row: dict[str, Any]) -> Message:
    return Message(
        role=row["role"],
        content=row["content"],
        tool_calls=[ToolCall(**c) for c in row["tool_calls"]],
        tool_call_id=row["tool_call_id"],
        name=row["name"],
    )


@router.get("/models")
def list_models(request: Request) -> dict[str, Any]:
    """Models a session may choose: the embedded ones, plus the server's configured model."""
    from lector.llm.models import CATALOGUE

    ids = list(CATALOGUE)
    configured = state_of(request).config.model
    if configured and configured not in ids:
        ids.insert(0, configured)
    return {"models": [{"id": i} for i in ids], "default": configured or ids[0]}


@router.get("/sessions")
def list_sessions(
    request: Request, q: str | None = Query(None, max_length=500, description="Search titles and messages")
) -> list[dict[str, Any]]:
    """The chats, most recently active first."""
    return state_of(request).store.list_sessions(q)


@router.post("/sessions", status_code=201)
def create_session(body: SessionIn, request: Request) -> dict[str, Any]:
    return state_of(request).store.create_session(body.title, body.settings.stored())


@router.get("/sessions/{sid}")
def get_session(sid: str, request: Request) -> dict[str, Any]:
    state = state_of(request)
    session = session_or_404(state, sid)
    session["messages"] = state.store.messages(sid)
    session["documents"] = [public_document(d) for d in state.store.documents(sid)]
    session["pages"] = state.store.session_pages(sid)
    return session


@router.patch("/sessions/{sid}")
def update_session(sid: str, body: SessionIn, request: Request) -> dict[str, Any]:
    state = state_of(request)
    session = session_or_404(state, sid)
    settings = ChatSettings.from_stored(session["settings"]).updated(body.settings)
    state.store.update_session(sid, title=body.title or None, settings=settings.stored())
    return session_or_404(state, sid)


@router.delete("/sessions/{sid}", status_code=204)
def delete_session(sid: str, request: Request) -> None:
    if not state_of(request).store.delete_session(sid):
        raise HTTPException(404, f"no session {sid!r}")


@router.delete("/sessions/{sid}/messages/{mid}", status_code=204)
def delete_messages_from(sid: str, mid: int, request: Request) -> None:
    """Drop a message and every later one (to edit a question or ask it again)."""
    state = state_of(request)
    session_or_404(state, sid)
    if sid in state.turns:
        raise HTTPException(409, "an answer is running in this session; stop it first")
    if not state.store.delete_messages_from(sid, mid):
        raise HTTPException(404, f"no message {mid} in this session")


def persist(state: AppState, sid: str, message: Message, extra: dict[str, Any] | None = None) -> None:
    state.store.add_message(
        sid,
        message.role,
        message.content,
        tool_calls=[c.model_dump() for c in message.tool_calls],
        tool_call_id=message.tool_call_id,
        name=message.name,
        extra=extra,
    )


def session_doc_ids(state: AppState, sid: str) -> list[str]:
    """The library ids of what a session reads: its ready documents and the ready pages attached to it."""
    documents = [d["doc_id"] for d in state.store.documents(sid, status="ready")]
    pages = [p["doc_id"] for p in state.store.session_pages(sid) if p["status"] == "ready"]
    return list(dict.fromkeys(d for d in [*documents, *pages] if d))


async def run_turn(state: AppState, sid: str, settings: ChatSettings, turn: Turn, queue: asyncio.Queue[Any]) -> None:
    """Run one answer to completion, persisting what it adds, whether or not anyone is still listening."""
    try:
        doc_ids = session_doc_ids(state, sid)
        if doc_ids and isinstance(settings.level, Level):
            await answer_from_documents(state, sid, settings.level, settings.model, doc_ids, turn, queue)
        else:
            await answer_with_tools(state, sid, settings, turn, queue)
    except Exception as exc:
        await queue.put({"type": "error", "message": failure_text(exc)})
    finally:
        state.turns.pop(sid, None)
        await queue.put(None)


async def answer_with_tools(
    state: AppState, sid: str, settings: ChatSettings, turn: Turn, queue: asyncio.Queue[Any]
) -> None:
    """The planner loop with the server's tools."""
    rows = state.store.messages(sid)
    system = settings.system or default_system_prompt()
    history = [Message.system(system), *(row_to_message(r) for r in rows)]
    ctx = state.context(sid)
    ctx.user_texts = [r["content"] for r in rows if r["role"] == "user"]
    tool_extras: dict[str, dict[str, Any]] = {}
    backend = state.backend(settings.model)
    events: AsyncIterator[Event] = run_agent(
        backend, history, state.registry, ctx=ctx, max_steps=state.config.max_steps, cancel=turn.cancel
    )
    async for event in events:
        if event.type == "tool_call_finished":
            tool_extras[event.call_id] = {"images": event.images, "files": event.files, "error": event.error}
        if isinstance(event, Final):
            for m in event.messages:
                extra = tool_extras.get(m.tool_call_id or "") if m.role == "tool" else None
                if m is event.messages[-1] and m.role == "assistant":
                    extra = {"usage": event.usage.model_dump(), "stopped_reason": event.stopped_reason}
                persist(state, sid, m, extra)
        await queue.put(event)


async def answer_from_documents(
    state: AppState,
    sid: str,
    level: Level,
    model: str | None,
    doc_ids: list[str],
    turn: Turn,
    queue: asyncio.Queue[Any],
) -> None:
    """The long-document reader over the session's documents, at the level chosen in the settings; on Stop, what
    was found so far is kept."""
    question = state.store.messages(sid)[-1]["content"]
    reply = await read_documents(state.library, question, level, state.backend(model), doc_ids, queue.put, turn.cancel)
    message = Message.assistant(reply.text)
    persist(state, sid, message, reply.extra)
    await queue.put(TextDelta(text=reply.text))
    await queue.put(reply.final_event(message))


@router.post("/sessions/{sid}/chat")
async def chat(sid: str, body: ChatIn, request: Request) -> StreamingResponse:
    """Add a user message and stream the answer as SSE events (text, tool calls, results, final)."""
    state = state_of(request)
    session = session_or_404(state, sid)
    if sid in state.turns:
        raise HTTPException(409, "an answer is already running in this session; stop it first")
    settings = ChatSettings.from_stored(session["settings"]).updated(body.settings)
    message_id = state.store.add_message(sid, "user", body.content)
    if not session["title"]:
        state.store.update_session(sid, title=body.content[:60])
    turn = Turn()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    state.turns[sid] = turn
    turn.task = asyncio.create_task(run_turn(state, sid, settings, turn, queue))

    async def stream() -> AsyncIterator[bytes]:
        yield sse({"type": "ack", "message_id": message_id, "session_id": sid})
        while True:
            batch = [await queue.get()]
            while not queue.empty() and batch[-1] is not None:  # events that are already there go in one write
                batch.append(queue.get_nowait())
            done = batch[-1] is None
            frames = [sse(item) for item in batch if item is not None]
            if done:
                frames.append(sse({"type": "done"}))
            yield b"".join(frames)
            if done:
                return

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)


@router.post("/sessions/{sid}/stop")
def stop(sid: str, request: Request) -> dict[str, Any]:
    state = state_of(request)
    session_or_404(state, sid)
    turn = state.turns.get(sid)
    if turn is None:
        return {"stopped": False, "reason": "no answer is running"}
    turn.cancel.set()
    return {"stopped": True}


SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def upload_name(filename: str | None) -> str:
    """The name an upload is stored and cited under: its last part, unsafe characters replaced, no leading dot."""
    name = SAFE_NAME.sub("_", Path(filename or "").name)[:120].lstrip(".")
    return name or "upload"


def public_document(row: dict[str, Any]) -> dict[str, Any]:
    """A document as clients see it: without the server's storage path."""
    return {k: v for k, v in row.items() if k != "path"}


@router.post("/sessions/{sid}/documents", status_code=202)
async def upload_document(sid: str, file: UploadFile, request: Request) -> dict[str, Any]:
    """Store an uploaded file and start ingesting it; follow its progress at /api/documents/{id}/events."""
    state = state_of(request)
    session_or_404(state, sid)
    data = await file.read()
    name = upload_name(file.filename)
    if not data:
        raise HTTPException(400, f"{name} is empty")
    digest = hashlib.sha256(data).hexdigest()
    folder = state.uploads / digest[:16]
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    doc = state.store.add_document(sid, name, str(path), digest)
    request.app.state.ingester.enqueue_document(doc["id"])
    return public_document(doc)


@router.get("/documents/{did}/events")
async def document_events(did: str, request: Request) -> StreamingResponse:
    """Stream a document's ingestion status until it is ready or failed."""
    state = state_of(request)
    ingester = request.app.state.ingester

    async def stream() -> AsyncIterator[bytes]:
        last = None
        for _ in range(36000):
            rows = [d for d in state.store.documents() if d["id"] == did]
            if not rows:
                yield sse({"type": "error", "message": f"no document {did!r}"})
                return
            doc = rows[0]
            progress = ingester.progress.get(did)
            snapshot = (doc["status"], json.dumps(progress))
            if snapshot != last:
                status, error = doc["status"], doc["error"]
                yield sse({"type": "progress", "status": status, "progress": progress, "error": error})
                last = snapshot
            if doc["status"] in ("ready", "error"):
                return
            await asyncio.sleep(0.1)

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)
