"""Persistent state in SQLite (WAL): chat sessions, their messages, uploaded documents, and saved pages."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lector.llm.unicode import valid_json, valid_text

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',
    settings TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    content TEXT NOT NULL DEFAULT '',
    tool_calls TEXT NOT NULL DEFAULT '[]',
    tool_call_id TEXT,
    name TEXT,
    extra TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_session ON messages(session_id, id);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    session_id TEXT REFERENCES sessions(id) ON DELETE CASCADE,
    filename TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    doc_id TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    error TEXT,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS pages (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    content_hash TEXT NOT NULL,
    format TEXT NOT NULL DEFAULT 'text',
    content TEXT NOT NULL,
    doc_id TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    error TEXT,
    created REAL NOT NULL,
    UNIQUE(url, content_hash)
);
CREATE INDEX IF NOT EXISTS pages_by_created ON pages(created);
CREATE TABLE IF NOT EXISTS session_pages (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    page_id TEXT NOT NULL REFERENCES pages(id) ON DELETE CASCADE,
    PRIMARY KEY (session_id, page_id)
);
"""


def _dumps(value: Any) -> str:
    return json.dumps(valid_json(value))


def _loads(text: str) -> Any:
    """Rows written before strings were made valid may hold escaped lone surrogates: they are made valid too."""
    return valid_json(json.loads(text))


class _Writer:
    """The connection inside a transaction; every text it writes is valid Unicode (SQLite refuses the rest)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, tuple(valid_text(a) if isinstance(a, str) else a for a in args))


def new_id() -> str:
    return uuid.uuid4().hex


class Store:
    """A thin, thread-safe layer over one SQLite file. Every write is committed before it returns."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: a commit survives a killed process
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=5000")
        with self._lock:
            self._db.executescript(SCHEMA)
        self.recover()

    @contextmanager
    def _tx(self) -> Iterator[_Writer]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield _Writer(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [valid_json(dict(r)) for r in self._db.execute(sql, args).fetchall()]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def recover(self) -> None:
        """After a crash: work that was running is marked so it can be retried, nothing is dropped."""
        with self._tx() as db:
            db.execute("UPDATE pages SET status='pending' WHERE status='ingesting'")
            db.execute("UPDATE documents SET status='pending' WHERE status='ingesting'")

    # sessions
    def create_session(self, title: str = "", settings: dict[str, Any] | None = None) -> dict[str, Any]:
        sid, now = new_id(), time.time()
        with self._tx() as db:
            db.execute(
                "INSERT INTO sessions(id, title, settings, created, updated) VALUES (?,?,?,?,?)",
                (sid, title, _dumps(settings or {}), now, now),
            )
        return self.get_session(sid) or {}

    def get_session(self, sid: str) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM sessions WHERE id=?", (sid,))
        if not rows:
            return None
        row = rows[0]
        row["settings"] = _loads(row["settings"])
        return row

    def list_sessions(self, query: str | None = None) -> list[dict[str, Any]]:
        """Every session, newest first; with `query`, those whose title or messages contain it."""
        if query:
            like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            rows = self._query(
                "SELECT * FROM sessions WHERE title LIKE ? ESCAPE '\\' OR id IN (SELECT session_id FROM messages"
                " WHERE role IN ('user', 'assistant') AND content LIKE ? ESCAPE '\\') ORDER BY updated DESC",
                (like, like),
            )
        else:
            rows = self._query("SELECT * FROM sessions ORDER BY updated DESC")
        for row in rows:
            row["settings"] = _loads(row["settings"])
        return rows

    def update_session(self, sid: str, *, title: str | None = None, settings: dict[str, Any] | None = None) -> None:
        with self._tx() as db:
            if title is not None:
                db.execute("UPDATE sessions SET title=?, updated=? WHERE id=?", (title, time.time(), sid))
            if settings is not None:
                db.execute("UPDATE sessions SET settings=?, updated=? WHERE id=?", (_dumps(settings), time.time(), sid))

    def delete_session(self, sid: str) -> bool:
        with self._tx() as db:
            return db.execute("DELETE FROM sessions WHERE id=?", (sid,)).rowcount > 0

    # messages
    def add_message(
        self,
        sid: str,
        role: str,
        content: str = "",
        *,
        tool_calls: list[dict[str, Any]] | None = None,
        tool_call_id: str | None = None,
        name: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> int:
        now = time.time()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO messages(session_id, role, content, tool_calls, tool_call_id, name, extra, created)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (sid, role, content, _dumps(tool_calls or []), tool_call_id, name, _dumps(extra or {}), now),
            )
            db.execute("UPDATE sessions SET updated=? WHERE id=?", (now, sid))
            return int(cur.lastrowid or 0)

    def delete_messages_from(self, sid: str, mid: int) -> int:
        """Drop message `mid` of session `sid` and every later one; how many were dropped (0: no such message)."""
        with self._tx() as db:
            if db.execute("SELECT 1 FROM messages WHERE id=? AND session_id=?", (mid, sid)).fetchone() is None:
                return 0
            dropped = db.execute("DELETE FROM messages WHERE session_id=? AND id>=?", (sid, mid)).rowcount
            db.execute("UPDATE sessions SET updated=? WHERE id=?", (time.time(), sid))
            return int(dropped)

    def messages(self, sid: str) -> list[dict[str, Any]]:
        rows = self._query("SELECT * FROM messages WHERE session_id=? ORDER BY id", (sid,))
        for row in rows:
            row["tool_calls"] = _loads(row["tool_calls"])
            row["extra"] = _loads(row["extra"])
        return rows

    # documents uploaded to a session
    def add_document(self, sid: str | None, filename: str, path: str, sha256: str) -> dict[str, Any]:
        did = new_id()
        with self._tx() as db:
            db.execute(
                "INSERT INTO documents(id, session_id, filename, path, sha256, created) VALUES (?,?,?,?,?,?)",
                (did, sid, filename, path, sha256, time.time()),
            )
        return self._query("SELECT * FROM documents WHERE id=?", (did,))[0]

    def get_document(self, did: str) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM documents WHERE id=?", (did,))
        return rows[0] if rows else None

    def copy_document(self, did: str, sid: str) -> dict[str, Any] | None:
        """The document `did` in session `sid` too (its file, index and status shared); None when there is none."""
        doc = self.get_document(did)
        if doc is None:
            return None
        same = [d for d in self.documents(sid) if d["sha256"] == doc["sha256"] and d["filename"] == doc["filename"]]
        if same:
            return same[0]
        copy = new_id()
        with self._tx() as db:
            db.execute(
                "INSERT INTO documents(id, session_id, filename, path, sha256, doc_id, status, error, created)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    copy,
                    sid,
                    doc["filename"],
                    doc["path"],
                    doc["sha256"],
                    doc["doc_id"],
                    doc["status"],
                    doc["error"],
                    time.time(),
                ),
            )
        return self.get_document(copy)

    def delete_document(self, did: str) -> bool:
        with self._tx() as db:
            return db.execute("DELETE FROM documents WHERE id=?", (did,)).rowcount > 0

    def set_document_status(
        self, did: str, status: str, *, doc_id: str | None = None, error: str | None = None
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE documents SET status=?, doc_id=COALESCE(?, doc_id), error=? WHERE id=?",
                (status, doc_id, error, did),
            )

    def documents(self, sid: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM documents WHERE 1=1", []
        if sid is not None:
            sql += " AND session_id=?"
            args.append(sid)
        if status is not None:
            sql += " AND status=?"
            args.append(status)
        return self._query(sql + " ORDER BY created", tuple(args))

    # pages from the browser extension
    def add_page(self, url: str, title: str, content: str, content_hash: str, fmt: str) -> tuple[dict[str, Any], bool]:
        """Store a page; returns (page, created). The same URL with the same content is stored once."""
        with self._tx() as db:
            row = db.execute("SELECT id FROM pages WHERE url=? AND content_hash=?", (url, content_hash)).fetchone()
            if row is not None:
                pid, created = row["id"], False
            else:
                pid, created = new_id(), True
                db.execute(
                    "INSERT INTO pages(id, url, title, content_hash, format, content, created) VALUES (?,?,?,?,?,?,?)",
                    (pid, url, title, content_hash, fmt, content, time.time()),
                )
        page = self.get_page(pid)
        assert page is not None
        return page, created

    def get_page(self, pid: str) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM pages WHERE id=?", (pid,))
        return rows[0] if rows else None

    def list_pages(self, query: str | None = None, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        cols = "id, url, title, content_hash, format, doc_id, status, error, created"
        if query:
            like = f"%{query}%"
            return self._query(
                f"SELECT {cols} FROM pages WHERE title LIKE ? OR url LIKE ? OR content LIKE ?"
                " ORDER BY created DESC LIMIT ? OFFSET ?",
                (like, like, like, limit, offset),
            )
        return self._query(f"SELECT {cols} FROM pages ORDER BY created DESC LIMIT ? OFFSET ?", (limit, offset))

    def set_page_status(self, pid: str, status: str, *, doc_id: str | None = None, error: str | None = None) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE pages SET status=?, doc_id=COALESCE(?, doc_id), error=? WHERE id=?",
                (status, doc_id, error, pid),
            )

    def pending_pages(self) -> list[dict[str, Any]]:
        return self._query("SELECT * FROM pages WHERE status='pending' ORDER BY created")

    def attach_page(self, sid: str, pid: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO session_pages(session_id, page_id) VALUES (?,?)", (sid, pid))

    def detach_page(self, sid: str, pid: str) -> bool:
        with self._tx() as db:
            return db.execute("DELETE FROM session_pages WHERE session_id=? AND page_id=?", (sid, pid)).rowcount > 0

    def session_pages(self, sid: str) -> list[dict[str, Any]]:
        """The saved pages attached to a session, without their content."""
        cols = ", ".join(
            f"p.{c}" for c in ("id", "url", "title", "content_hash", "format", "doc_id", "status", "error", "created")
        )
        return self._query(
            f"SELECT {cols} FROM pages p JOIN session_pages s ON s.page_id = p.id WHERE s.session_id=?"
            " ORDER BY p.created",
            (sid,),
        )

    def delete_page(self, pid: str) -> bool:
        with self._tx() as db:
            return db.execute("DELETE FROM pages WHERE id=?", (pid,)).rowcount > 0
