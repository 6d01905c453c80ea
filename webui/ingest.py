"""Background ingestion of uploaded documents and saved pages into the library index.

Work is recorded in SQLite before it is acknowledged; a worker marks it ingesting, then ready or error.
After a crash, `Store.recover` puts interrupted work back to pending and `resume` re-queues it.

A few workers take from one queue, so a document that is slow to read does not hold up the others, and
each file is parsed in a child process within the library's budget (retrieval.parsers.isolated): a
bomb is refused with its reason while a page posted behind it is indexed. No lock is held while a
document is parsed; the library takes its own lock only to put the finished document in place.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from lector.retrieval.ingest_progress import IngestStep
from lector.webui.state import AppState

log = logging.getLogger(__name__)

WORKERS = 3


class Ingester:
    def __init__(self, state: AppState, workers: int = WORKERS) -> None:
        self.state = state
        self.workers = workers
        self.queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.progress: dict[str, dict[str, Any]] = {}
        self.task: asyncio.Task[None] | None = None
        self.idle = asyncio.Event()
        self.idle.set()
        self._active = 0

    def start(self) -> None:
        from lector.retrieval.parsers.isolated import prestart

        prestart()
        self.task = asyncio.create_task(self._run())
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

    async def _run(self) -> None:
        try:
            await self.reload_ready()
        except Exception:  # a damaged entry must not stop new ingestion
            log.exception("reloading the library after a restart failed")
        await asyncio.gather(*(self._work() for _ in range(self.workers)))

    async def _work(self) -> None:
        while True:
            kind, ident = await self.queue.get()
            self._active += 1
            try:
                if kind == "document":
                    await self._ingest_document(ident)
                else:
                    await self._ingest_page(ident)
            except Exception:  # recorded on the item; the worker goes on
                log.exception("ingesting %s %s failed", kind, ident)
            finally:
                self._active -= 1
                if self.queue.empty() and not self._active:
                    self.idle.set()

    async def _ingest_document(self, did: str) -> None:
        store = self.state.store
        rows = [d for d in store.documents() if d["id"] == did]
        if not rows or rows[0]["status"] == "ready":
            return
        doc = rows[0]
        store.set_document_status(did, "ingesting")
        self.progress[did] = {"stage": "parsing", "percent": 0, "filename": doc["filename"]}

        def heard(step: IngestStep) -> None:  # from the worker thread: one dict replaced at a time
            self.progress[did] = {**step.as_json(), "filename": doc["filename"]}

        try:
            add = functools.partial(self.state.library.add_file, on_progress=heard)
            doc_id = await asyncio.to_thread(add, doc["path"], doc["filename"])
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
            doc_id = await asyncio.to_thread(self.state.library.add_text, page["content"], page["url"], page["format"])
        except Exception as exc:
            store.set_page_status(pid, "error", error=str(exc)[:500])
            return
        store.set_page_status(pid, "ready", doc_id=doc_id)

    async def reload_ready(self) -> None:
        """Put what was ingested before a restart back into the in-memory library (index files are cached)."""
        store = self.state.store
        for doc in store.documents(status="ready"):
            await asyncio.to_thread(self.state.library.add_file, doc["path"], doc["filename"])
        for page in store.list_pages(limit=1_000_000):
            if page["status"] == "ready":
                full = store.get_page(page["id"])
                if full is not None:
                    await asyncio.to_thread(self.state.library.add_text, full["content"], full["url"], full["format"])
