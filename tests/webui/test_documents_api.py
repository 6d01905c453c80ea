"""What the chat page and side panel need from the server, over real HTTP with a SCRIPTED model (not a language
model): the page shell without a token, a document's original file, the text around a cited passage, dropping
messages, attaching and removing documents and pages, searching chats, and document answers that show their
progress and keep what was found when stopped. Parsing and BM25 indexing are real."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lector.llm.backend import ChatOptions
from lector.llm.messages import Message
from lector.llm.scripted import ScriptedBackend
from lector.retrieval.answer_prompt import ANSWER_SCHEMA
from lector.retrieval.keywords import keyword_schema
from lector.retrieval.level2 import READ_SCHEMA
from lector.webui.app import create_app
from lector.webui.config import ServerConfig
from lector.webui.document_answers import call_step
from tests.webui.live_server import TOKEN, free_port, serve_app

AUTH = {"Authorization": f"Bearer {TOKEN}"}
OTTERS = "Sea otters hold hands while they sleep so that they do not drift apart."
WHAT, WHERE = ["mill", "barley", "orchard", "market"], ["cattle", "road", "fence"]
FILLER = [
    f"Paragraph {i} tells of the {WHAT[i % 4]} by the river, where the {WHERE[i % 3]} of the valley was kept all year."
    for i in range(160)
]


def reader_model(messages: list[Message], tools: object, options: ChatOptions) -> str:
    """Keywords, then each chunk read as one verified quote, then an answer citing evidence 1."""
    schema = options.json_schema or {}
    if "keywords_en" in schema.get("properties", {}):
        return json.dumps({"keywords_en": ["otters", "hands"]})
    if schema == READ_SCHEMA:
        found = re.findall(r"Sea otters[^.]*\.", messages[-1].content)
        return json.dumps({"relevant": bool(found), "quotes": found[:1]})
    if "answer" in schema.get("properties", {}):
        return json.dumps({"answer": "They hold hands so as not to drift apart.", "evidence": [1]})
    return "Hello from the scripted model."


def sse_events(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]


@pytest.fixture()
def backend() -> ScriptedBackend:
    return ScriptedBackend(default=reader_model, parallel_slots=1)


@pytest.fixture()
def server(tmp_path: Path, backend: ScriptedBackend) -> Iterator[str]:
    port = free_port()
    config = ServerConfig(data_dir=tmp_path / "data", port=port, token=TOKEN, tools=[], rate_burst=1000)
    with serve_app(create_app(config, backend=backend), port) as base:
        yield base


def new_chat(base: str, **settings: Any) -> str:
    return str(httpx.post(base + "/api/sessions", json={"settings": settings}, headers=AUTH).json()["id"])


def upload(base: str, sid: str, name: str, data: bytes) -> dict[str, Any]:
    response = httpx.post(f"{base}/api/sessions/{sid}/documents", files={"file": (name, data)}, headers=AUTH)
    assert response.status_code == 202, response.text
    did = response.json()["id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        docs = httpx.get(f"{base}/api/sessions/{sid}", headers=AUTH).json()["documents"]
        doc = next(d for d in docs if d["id"] == did)
        if doc["status"] in ("ready", "error"):
            return doc
        time.sleep(0.05)
    raise AssertionError(f"{name} was not indexed in time")


def chat(base: str, sid: str, content: str) -> list[dict[str, Any]]:
    url = f"{base}/api/sessions/{sid}/chat"
    with httpx.stream("POST", url, json={"content": content}, headers=AUTH, timeout=60) as response:
        assert response.status_code == 200
        return sse_events(response)


def test_the_page_shell_opens_without_a_token_but_no_api_does(server: str) -> None:
    for path in ["/", "/static/app.js", "/static/style.css"]:
        response = httpx.get(server + path)
        assert response.status_code == 200, path
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert "set-cookie" not in response.headers
    assert httpx.get(server + "/", headers={"Host": "evil.example"}).status_code == 421
    assert httpx.get(server + "/?token=wrong").headers.get("set-cookie") is None
    assert "lector_token=" in httpx.get(f"{server}/?token={TOKEN}").headers["set-cookie"]
    for path in ["/api/sessions", "/api/documents", "/pages", "/static/../api/sessions"]:
        assert httpx.get(server + path).status_code == 401, path
    assert httpx.post(server + "/api/sessions", json={}).status_code == 401


def test_a_documents_original_file_is_served_inline_and_html_as_text(server: str) -> None:
    sid = new_chat(server)
    notes = upload(server, sid, "notes.txt", b"Plain notes about otters.\n")
    response = httpx.get(f"{server}/api/documents/{notes['id']}/file", headers=AUTH)
    assert response.content == b"Plain notes about otters.\n"
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["content-disposition"].startswith('inline; filename="notes.txt"')
    assert response.headers["x-content-type-options"] == "nosniff"
    page = b"<html><body><p>Otters</p><script>alert(document.cookie)</script></body></html>"
    html = upload(server, sid, "page.html", page)
    served = httpx.get(f"{server}/api/documents/{html['id']}/file", headers=AUTH)
    assert served.content == page and served.headers["content-type"].startswith("text/plain")
    listed = httpx.get(server + "/api/documents", headers=AUTH).json()
    assert {d["filename"]: d["size"] for d in listed} == {"notes.txt": 26, "page.html": len(page)}
    assert all("path" not in d for d in listed)
    assert httpx.get(f"{server}/api/documents/nope/file", headers=AUTH).status_code == 404
    assert httpx.get(f"{server}/api/documents/{html['id']}/file").status_code == 401


def test_a_cited_passage_comes_with_the_text_around_it(server: str) -> None:
    sid = new_chat(server, level="1")
    text = " ".join(FILLER[:20]) + " " + OTTERS + " " + " ".join(FILLER[20:40])
    doc = upload(server, sid, "otters.txt", text.encode())
    final = next(e for e in chat(server, sid, "Why do otters hold hands?") if e["type"] == "final")
    [citation] = final["citations"]
    assert citation["source"] == "otters.txt" and citation["doc_id"] == doc["doc_id"]
    by_id = httpx.get(
        server + "/api/passage",
        params={"doc_id": citation["doc_id"], "start": citation["start"], "end": citation["end"]},
        headers=AUTH,
    ).json()
    assert by_id["text"] == citation["text"]
    assert by_id["before"].startswith("…") and by_id["after"].endswith("…")
    around = by_id["before"][1:] + by_id["text"] + by_id["after"][:-1]
    assert around in text and 1000 < len(around) < 1200 + len(by_id["text"])
    start = text.index(OTTERS)
    by_name = httpx.get(
        server + "/api/passage", params={"source": "otters.txt", "start": start, "end": start + 10}, headers=AUTH
    ).json()
    assert by_name["text"] == "Sea otters" and by_name["after"].startswith(" hold hands")
    outside = httpx.get(
        server + "/api/passage", params={"source": "otters.txt", "start": 0, "end": 10**7}, headers=AUTH
    )
    assert outside.status_code == 422
    unknown = httpx.get(server + "/api/passage", params={"source": "/etc/passwd", "start": 0, "end": 1}, headers=AUTH)
    assert unknown.status_code == 404
    stored = httpx.get(f"{server}/api/sessions/{sid}", headers=AUTH).json()
    assert stored["messages"][-1]["extra"]["citations"][0]["doc_id"] == doc["doc_id"]
    assert all("path" not in d for d in stored["documents"])


def test_a_message_and_all_after_it_can_be_dropped(server: str) -> None:
    sid = new_chat(server)
    for question in ["first", "second", "third"]:
        chat(server, sid, question)
    messages = httpx.get(f"{server}/api/sessions/{sid}", headers=AUTH).json()["messages"]
    second = next(m for m in messages if m["content"] == "second")
    assert httpx.delete(f"{server}/api/sessions/{sid}/messages/{second['id']}", headers=AUTH).status_code == 204
    kept = httpx.get(f"{server}/api/sessions/{sid}", headers=AUTH).json()["messages"]
    assert [m["content"] for m in kept] == ["first", "Hello from the scripted model."]
    assert httpx.delete(f"{server}/api/sessions/{sid}/messages/{second['id']}", headers=AUTH).status_code == 404
    other = new_chat(server)
    first = kept[0]["id"]
    assert httpx.delete(f"{server}/api/sessions/{other}/messages/{first}", headers=AUTH).status_code == 404
    assert len(httpx.get(f"{server}/api/sessions/{sid}", headers=AUTH).json()["messages"]) == 2


def test_chats_are_searched_by_title_and_by_what_was_said(server: str) -> None:
    otters, lamps = new_chat(server), new_chat(server)
    chat(server, otters, "Tell me about sea otters")
    chat(server, lamps, "How is a lighthouse lamp lit?")
    httpx.patch(f"{server}/api/sessions/{lamps}", json={"title": "Keepers"}, headers=AUTH)

    def found(query: str) -> set[str]:
        return {s["id"] for s in httpx.get(server + "/api/sessions", params={"q": query}, headers=AUTH).json()}

    assert found("OTTERS") == {otters}
    assert found("keepers") == {lamps}
    assert found("scripted model") == {otters, lamps}  # the answers are searched too
    assert found("100%") == set() and found("_") == set()
    assert len(httpx.get(server + "/api/sessions", headers=AUTH).json()) == 2


def test_documents_and_saved_pages_are_reused_in_another_chat_and_removed(server: str, tmp_path: Path) -> None:
    first = new_chat(server, level="1")
    doc = upload(server, first, "otters.txt", (OTTERS + " ").encode() * 3)
    page = httpx.post(
        server + "/pages", json={"url": "https://ex.org/lamps", "text": "Lamps burn oil."}, headers=AUTH
    ).json()
    second = new_chat(server, level="1")
    attached = httpx.post(
        f"{server}/api/sessions/{second}/documents/attach",
        json={"document_ids": [doc["id"]], "page_ids": [page["id"]]},
        headers=AUTH,
    )
    assert attached.status_code == 200, attached.text
    body = attached.json()
    assert [d["filename"] for d in body["documents"]] == ["otters.txt"] and body["documents"][0]["status"] == "ready"
    assert [p["id"] for p in body["pages"]] == [page["id"]]
    again = httpx.post(
        f"{server}/api/sessions/{second}/documents/attach", json={"document_ids": [doc["id"]]}, headers=AUTH
    ).json()
    assert len(again["documents"]) == 1
    final = next(e for e in chat(server, second, "Why do otters hold hands?") if e["type"] == "final")
    assert final["citations"][0]["source"] == "otters.txt"
    missing = httpx.post(f"{server}/api/sessions/{second}/documents/attach", json={"page_ids": ["nope"]}, headers=AUTH)
    assert missing.status_code == 404
    broken = upload(server, first, "tool.exe", b"MZ\x00\x01")
    assert broken["status"] == "error"
    unready = httpx.post(
        f"{server}/api/sessions/{second}/documents/attach", json={"document_ids": [broken["id"]]}, headers=AUTH
    )
    assert unready.status_code == 409 and "tool.exe could not be read" in unready.json()["error"]["message"]
    assert httpx.delete(f"{server}/api/sessions/{first}/documents/{broken['id']}", headers=AUTH).status_code == 204

    copy = body["documents"][0]
    assert httpx.delete(f"{server}/api/sessions/{first}/documents/{copy['id']}", headers=AUTH).status_code == 404
    assert httpx.delete(f"{server}/api/sessions/{second}/documents/{copy['id']}", headers=AUTH).status_code == 204
    assert httpx.get(f"{server}/api/documents/{doc['id']}/file", headers=AUTH).status_code == 200  # still in chat 1
    assert httpx.delete(f"{server}/api/sessions/{first}/documents/{doc['id']}", headers=AUTH).status_code == 204
    assert httpx.get(server + "/api/documents", headers=AUTH).json() == []
    assert not list((tmp_path / "data" / "uploads").rglob("otters.txt"))
    assert httpx.delete(f"{server}/api/sessions/{second}/pages/{page['id']}", headers=AUTH).status_code == 204
    assert httpx.get(f"{server}/api/sessions/{second}", headers=AUTH).json()["pages"] == []
    assert httpx.get(f"{server}/pages/{page['id']}", headers=AUTH).status_code == 200  # the library keeps it


def test_a_document_answer_shows_each_passage_read_with_its_number(server: str) -> None:
    sid = new_chat(server, level="2")
    upload(server, sid, "otters.txt", (" ".join(FILLER[:60]) + " " + OTTERS + " " + " ".join(FILLER[60:])).encode())
    events = chat(server, sid, "Why do otters hold hands?")
    kinds = [e["type"] for e in events]
    assert kinds[0] == "ack" and kinds[1] == "status" and "Looking in otters.txt" in events[1]["text"]
    assert kinds.index("level") < kinds.index("chunk_read") < kinds.index("text") < kinds.index("final")
    reads = [e for e in events if e["type"] == "chunk_read"]
    assert [r["index"] for r in reads] == list(range(1, len(reads) + 1)) and len(reads) > 1
    assert all(r["source"] == "otters.txt" for r in reads)
    waves = [e for e in events if e["type"] == "reading"]
    assert all(w["sources"] == ["otters.txt"] for w in waves)
    assert waves[0]["first"] == 1 and all(b["first"] == a["last"] + 1 for a, b in zip(waves, waves[1:], strict=False))
    for read in reads:  # a wave may read several passages in one call; it is announced before them
        wave = next(w for w in waves if w["first"] <= read["index"] <= w["last"])
        assert events.index(wave) < events.index(read), "each wave says so before it reads"
        assert wave["total"] == read["total"] >= read["index"]
    assert reads[-1]["index"] <= reads[-1]["total"] <= 12, "the passages chosen, not the budget's most"
    assert any(OTTERS in q for r in reads for q in r["quotes"])
    statuses = [e["text"] for e in events if e["type"] == "status"]
    assert statuses[-1] == "Writing the answer from what was found…"
    drafts = [e for e in events if e["type"] == "draft"]
    assert len(drafts) > 3 and not any(d["reset"] for d in drafts)  # the answer streamed as it was written
    assert "".join(d["text"] for d in drafts) == "They hold hands so as not to drift apart."
    assert kinds.index("status", kinds.index("chunk_read")) < kinds.index("draft") < kinds.index("text")
    final = next(e for e in events if e["type"] == "final")
    assert final["message"]["content"].startswith("They hold hands") and final["usage"]["prompt_tokens"] > 0


def test_a_stopped_document_answer_keeps_what_was_found_and_says_what_it_cost(
    server: str, backend: ScriptedBackend
) -> None:
    backend.delay = 0.05
    sid = new_chat(server, level="2")
    upload(server, sid, "otters.txt", (OTTERS + " " + " ".join(FILLER)).encode())
    url = f"{server}/api/sessions/{sid}"
    events: list[dict[str, Any]] = []
    with httpx.stream(
        "POST", url + "/chat", json={"content": "Why do otters hold hands?"}, headers=AUTH, timeout=60
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if events[-1]["type"] == "chunk_read" and events[-1]["quotes"]:
                    assert httpx.post(url + "/stop", headers=AUTH).json() == {"stopped": True}
    final = next(e for e in events if e["type"] == "final")
    assert final["stopped_reason"] == "cancelled"
    assert "Found so far" in final["message"]["content"] and OTTERS in final["message"]["content"]
    assert final["usage"]["prompt_tokens"] > 0 and final["usage"]["completion_tokens"] > 0
    stored = httpx.get(url, headers=AUTH).json()["messages"][-1]
    assert OTTERS in stored["content"] and stored["extra"]["usage"]["llm_calls"] >= 2


def test_each_model_call_of_a_document_answer_is_named_by_what_it_is_for() -> None:
    keywords = ChatOptions(json_schema=keyword_schema(["en", "zh"]))
    assert call_step(keywords) == "Choosing the words to search {names} for…"
    assert call_step(ChatOptions(json_schema=ANSWER_SCHEMA)) == "Writing the answer from what was found…"
    assert call_step(ChatOptions(json_schema=READ_SCHEMA)) is None  # each passage read is a chunk_read event
    assert call_step(ChatOptions()) is None and call_step(None) is None


def test_a_document_answer_that_cannot_reach_the_model_says_so_in_plain_words(tmp_path: Path) -> None:
    from lector.llm.errors import BackendUnavailableError

    def unreachable(messages: list[Message], tools: object, options: ChatOptions) -> str:
        raise BackendUnavailableError("no model server at http://127.0.0.1:9/v1 (connection refused)")

    port = free_port()
    config = ServerConfig(data_dir=tmp_path / "data", port=port, token=TOKEN, tools=[], rate_burst=1000)
    with serve_app(create_app(config, backend=ScriptedBackend(default=unreachable)), port) as base:
        sid = new_chat(base, level="1")
        upload(base, sid, "otters.txt", OTTERS.encode())
        errors = [e["message"] for e in chat(base, sid, "Why do otters hold hands?") if e["type"] == "error"]
    assert errors == ["Model error: no model server at http://127.0.0.1:9/v1 (connection refused)"]


def test_ingestion_reports_its_stage_and_percentage(server: str) -> None:
    sid = new_chat(server)
    text = "\n\n".join(f"Boat {i} of the harbour carried nets, ropes and a basket to the quay." for i in range(60_000))
    response = httpx.post(
        f"{server}/api/sessions/{sid}/documents", files={"file": ("harbour.txt", text.encode())}, headers=AUTH
    )
    assert response.status_code == 202, response.text
    with httpx.stream("GET", f"{server}/api/documents/{response.json()['id']}/events", headers=AUTH, timeout=60) as r:
        events = sse_events(r)
    assert events[-1]["status"] == "ready"
    steps = [e["progress"] for e in events[:-1] if e["progress"] and "percent" in e["progress"]]
    assert steps and all(0 <= s["percent"] < 100 and s["filename"] == "harbour.txt" for s in steps), events
    assert [s["percent"] for s in steps] == sorted(s["percent"] for s in steps)
