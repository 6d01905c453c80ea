"""SIGKILL the server mid-answer and mid-ingestion, restart it: nothing acknowledged is lost.

The server runs in its own process with a SCRIPTED model (not a language model) that streams slowly.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path

import httpx

from tests.webui.live_server import TOKEN, free_port, start_subprocess_server

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def integrity(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def test_kill_during_a_streamed_answer(tmp_path: Path) -> None:
    port = free_port()
    proc = start_subprocess_server(tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    try:
        sids = []
        for i in range(3):
            sid = httpx.post(base + "/api/sessions", json={"title": f"s{i}"}, headers=AUTH).json()["id"]
            sids.append(sid)
        acked = []
        with httpx.stream(
            "POST", f"{base}/api/sessions/{sids[0]}/chat", json={"content": "tell me"}, headers=AUTH
        ) as r:
            for line in r.iter_lines():
                if not line.startswith("data: "):
                    continue
                event = json.loads(line[6:])
                if event["type"] == "ack":
                    acked.append(event["message_id"])
                if event["type"] == "text":
                    proc.send_signal(signal.SIGKILL)
                    break
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert integrity(tmp_path / "lector.db") == "ok"
    port = free_port()
    proc = start_subprocess_server(tmp_path, port, "0")
    base = f"http://127.0.0.1:{port}"
    try:
        sessions = {s["id"] for s in httpx.get(base + "/api/sessions", headers=AUTH).json()}
        assert set(sids) <= sessions
        messages = httpx.get(f"{base}/api/sessions/{sids[0]}", headers=AUTH).json()["messages"]
        assert messages[0]["id"] == acked[0] and messages[0]["content"] == "tell me"
        with httpx.stream("POST", f"{base}/api/sessions/{sids[0]}/chat", json={"content": "again"}, headers=AUTH) as r:
            kinds = [json.loads(line[6:])["type"] for line in r.iter_lines() if line.startswith("data: ")]
        assert kinds[-2:] == ["final", "done"]
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_kill_during_page_ingestion(tmp_path: Path) -> None:
    port = free_port()
    proc = start_subprocess_server(tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    words = " ".join(f"word{i % 5000} alpha beta gamma." for i in range(50_000))
    try:
        acked = []
        for i in range(4):
            r = httpx.post(base + "/pages", json={"url": f"https://ex.org/{i}", "text": f"{i} {words}"}, headers=AUTH)
            assert r.status_code == 201
            acked.append(r.json()["id"])
        deadline = time.monotonic() + 30
        statuses: set[str] = set()
        while time.monotonic() < deadline and "ingesting" not in statuses:
            statuses = {p["status"] for p in httpx.get(base + "/pages", headers=AUTH).json()}
            time.sleep(0.01)
        assert "ingesting" in statuses, f"no page was being ingested when the server was to be killed: {statuses}"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        proc.kill()
    db = tmp_path / "lector.db"
    assert integrity(db) == "ok"
    with sqlite3.connect(db) as conn:
        left = [row[0] for row in conn.execute("SELECT status FROM pages")]
    assert len(left) == len(acked) and any(status != "ready" for status in left), left
    port = free_port()
    proc = start_subprocess_server(tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        pages: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            pages = httpx.get(base + "/pages", headers=AUTH).json()
            if all(p["status"] == "ready" for p in pages):
                break
            time.sleep(0.2)
        assert {p["id"] for p in pages} == set(acked)
        assert all(p["status"] == "ready" and p["doc_id"] for p in pages), pages
    finally:
        proc.kill()
        proc.wait(timeout=10)
