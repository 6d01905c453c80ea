"""Background ingestion of uploaded documents and saved pages into the library index.

Work is recorded in SQLite before it is acknowledged; the worker marks it ingesting, then ready or
error. After a crash, `Store.recover` puts interrupted work back to pending and `resume` re-queues it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lector.webui.state import AppState

log = logging.getLogger(__name__)


class Ingester:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.progress: dict[str, dict[str, Any]] = {}
        self.task: asyncio.Task[None] | None = None
        self.idle = asyncio.Event()
        self.idle.set()

    def start(self) -> None:
        self.task = asyncio.create_task(self._work())
        self.resume()

    def resume(self) -> None:
        for doc in self.state.store.documents(status="pending"):
            self.enqueue_document(doc["id"])
        for page in self.state.store.pending_pages():
            self.enqueue_page(page["id"])

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass

    def enqueue_document(self, did: str) -> None:
        self.progress[did] = {"stage": "queued"}
        self.idle.clear()
        self.queue.put_nowait(("document", did))

    def enqueue_page(self, pid: str) -> None:
        self.idle.clear()
        self.queue.put_nowait(("page", pid))

    async def _work(self) -> None:
        try:
            await self.reload_ready()
        except Exception:  # a damaged entry must not stop new ingestion
            log.exception("reloading the library after a restart failed")
        while True:
            kind, ident = await self.queue.get()
            try:
                if kind == "document":
                    await self._ingest_document(ident)
                else:
                    await self._ingest_page(ident)
            except Exception:  # recorded on the item; the worker goes on
                log.exception("ingesting %s %s failed", kind, ident)
            finally:
                if self.queue.empty():
                    self.idle.set()

    async def _ingest_document(self, did: str) -> None:
        store = self.state.store
        rows = [d for d in store.documents() if d["id"] == did]
        if not rows or rows[0]["status"] == "ready":
            return
        doc = rows[0]
        store.set_document_status(did, "ingesting")
        self.progress[did] = {"stage": "parsing and indexing", "filename": doc["filename"]}
        try:
            async with self.state.library_lock:
                doc_id = await asyncio.to_thread(self.state.library.add_file, doc["path"])
        except Exception as exc:
            store.set_document_status(did, "error", error=str(exc)[:500])
            self.progress[did] = {"stage": "error", "error": str(exc)[:500]}
            return
        store.set_document_status(did, "ready", doc_id=doc_id)
        self.progress[did] = {"stage": "ready", "doc_id": doc_id}

    async def _ingest_page(self, pid: str) -> None:
        store = self.state.store
        page = store.get_page(pid)
        if page is None or page["status"] == "ready":
            return
        store.set_page_status(pid, "ingesting")
        try:
            async with self.state.library_lock:
                doc_id = await asyncio.to_thread(
                    self.state.library.add_text, page["content"], page["url"], page["format"]
                )
        except Exception as exc:
            store.set_page_status(pid, "error", error=str(exc)[:500])
            return
        store.set_page_status(pid, "ready", doc_id=doc_id)

    async def reload_ready(self) -> None:
        """Put what was ingested before a restart back into the in-memory library (index files are cached)."""
        store = self.state.store
        for doc in store.documents(status="ready"):
            async with self.state.library_lock:
                await asyncio.to_thread(self.state.library.add_file, doc["path"])
        for page in store.list_pages(limit=1_000_000):
            if page["status"] == "ready":
                full = store.get_page(page["id"])
                if full is not None:
                    async with self.state.library_lock:
                        await asyncio.to_thread(
                            self.state.library.add_text, full["content"], full["url"], full["format"]
                        )
