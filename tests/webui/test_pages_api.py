"""The browser-extension backend over real HTTP: save, deduplicate, index, list, search, delete, ask.

Answers come from a SCRIPTED model (not a language model); parsing and BM25 indexing are real.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lector.llm.scripted import ScriptedBackend
from lector.webui.app import create_app
from lector.webui.config import ServerConfig
from tests.webui.live_server import TOKEN, free_port, serve_app

AUTH = {"Authorization": f"Bearer {TOKEN}"}
HTML = """<html><head><title>Otters</title></head><body><article><h1>Sea otters</h1>
<p>Sea otters hold hands while they sleep so that they do not drift apart. A group of resting otters is a raft.</p>
<p>They use stones as tools to open shellfish, and keep a favourite stone in a pouch under the forearm.</p>
</article></body></html>"""


def wait_ready(base: str, pid: str, timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = httpx.get(f"{base}/pages/{pid}", headers=AUTH).json()
        if page["status"] in ("ready", "error"):
            return page
        time.sleep(0.05)
    raise AssertionError("page was not indexed in time")


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    backend = ScriptedBackend(default="Otters hold hands while sleeping [1].")
    config = ServerConfig(data_dir=tmp_path, port=port, token=TOKEN, tools=[], rate_burst=1000)
    with serve_app(create_app(config, backend=backend), port) as base:
        yield base


def test_pages_are_saved_deduplicated_indexed_and_listed(server: str) -> None:
    first = httpx.post(
        server + "/pages", json={"url": "https://ex.org/otters", "title": "Otters", "html": HTML}, headers=AUTH
    )
    assert first.status_code == 201
    again = httpx.post(
        server + "/pages", json={"url": "https://ex.org/otters", "title": "Otters", "html": HTML}, headers=AUTH
    )
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    changed = httpx.post(
        server + "/pages",
        json={"url": "https://ex.org/otters", "title": "Otters", "html": HTML + "<p>new</p>"},
        headers=AUTH,
    )
    assert changed.status_code == 201 and changed.json()["id"] != first.json()["id"]
    page = wait_ready(server, first.json()["id"])
    assert page["status"] == "ready" and page["doc_id"]
    listed = httpx.get(server + "/pages", headers=AUTH).json()
    assert len(listed) == 2 and all(p["created"] > 0 for p in listed)
    assert len(httpx.get(server + "/pages", params={"q": "otters"}, headers=AUTH).json()) == 2
    assert httpx.get(server + "/pages", params={"q": "giraffe"}, headers=AUTH).json() == []


def test_ask_across_pages_answers_with_citations(server: str) -> None:
    pid = httpx.post(
        server + "/pages", json={"url": "https://ex.org/o", "title": "O", "html": HTML}, headers=AUTH
    ).json()["id"]
    wait_ready(server, pid)
    answer = httpx.post(
        server + "/pages/ask",
        json={"question": "Why do otters hold hands?", "page_ids": [pid]},
        headers=AUTH,
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"answer", "level", "citations", "usage", "elapsed_s", "session_id"}
    assert body["citations"] and body["citations"][0]["source"] == "https://ex.org/o"
    kept = httpx.get(f"{server}/api/sessions/{body['session_id']}", headers=AUTH).json()
    assert [m["role"] for m in kept["messages"]] == ["user", "assistant"], "the answer is kept as a chat"
    assert kept["messages"][1]["extra"]["citations"] == body["citations"]
    library_wide = httpx.post(server + "/pages/ask", json={"question": "otters sleep?"}, headers=AUTH, timeout=60)
    assert library_wide.status_code == 200


def test_delete_page_and_bad_pages(server: str) -> None:
    pid = httpx.post(server + "/pages", json={"url": "https://ex.org/x", "text": "plain words"}, headers=AUTH).json()[
        "id"
    ]
    assert httpx.delete(f"{server}/pages/{pid}", headers=AUTH).status_code == 204
    assert httpx.get(f"{server}/pages/{pid}", headers=AUTH).status_code == 404
    assert httpx.delete(f"{server}/pages/{pid}", headers=AUTH).status_code == 404
    no_body = httpx.post(server + "/pages", json={"url": "https://ex.org/y"}, headers=AUTH)
    assert no_body.status_code == 422 and "html" in no_body.json()["error"]["message"]
    bad_url = httpx.post(server + "/pages", json={"url": "javascript:alert(1)", "text": "x"}, headers=AUTH)
    assert bad_url.status_code == 422
    unknown = httpx.post(server + "/pages/ask", json={"question": "q", "page_ids": ["nope"]}, headers=AUTH)
    assert unknown.status_code == 404


def test_pages_can_be_asked_about_after_a_restart(tmp_path: Path) -> None:
    def start() -> Any:
        port = free_port()
        config = ServerConfig(data_dir=tmp_path, port=port, token=TOKEN, tools=[], rate_burst=1000)
        return serve_app(create_app(config, backend=ScriptedBackend(default="They hold hands [1].")), port)

    with start() as base:
        page = {"url": "https://ex.org/r", "title": "R", "html": HTML}
        pid = httpx.post(base + "/pages", json=page, headers=AUTH).json()["id"]
        wait_ready(base, pid)
    with start() as base:
        deadline = time.monotonic() + 30
        while True:
            answer = httpx.post(base + "/pages/ask", json={"question": "otters?", "page_ids": [pid]}, headers=AUTH)
            if answer.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert answer.status_code == 200, answer.text
        assert answer.json()["citations"][0]["source"] == "https://ex.org/r"


def test_ask_across_pages_can_stream_its_reading(server: str) -> None:
    pid = httpx.post(
        server + "/pages", json={"url": "https://ex.org/s", "title": "S", "html": HTML}, headers=AUTH
    ).json()["id"]
    wait_ready(server, pid)
    question = {"question": "Why do otters hold hands?", "page_ids": [pid], "level": "1", "stream": True}
    with httpx.stream("POST", server + "/pages/ask", json=question, headers=AUTH, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "status" and kinds[-2:] == ["final", "done"]
    assert kinds.index("level") < kinds.index("text") < kinds.index("final")
    final = events[-2]
    assert final["message"]["content"] == "Otters hold hands while sleeping [1]." and final["level"] == 1
    assert final["citations"][0]["source"] == "https://ex.org/s" and final["citations"][0]["doc_id"]
    assert final["usage"]["prompt_tokens"] > 0


def test_a_question_asked_while_the_model_loads_says_so_then_is_answered(tmp_path: Path) -> None:
    from lector.webui.pages_api import MODEL_LOADING
    from tests.webui.test_model_status import SlowLoading

    port = free_port()
    backend = SlowLoading()
    config = ServerConfig(data_dir=tmp_path, port=port, token=TOKEN, tools=[], rate_burst=1000)
    with serve_app(create_app(config, backend=backend), port) as base:
        page = {"url": "https://ex.org/l", "title": "L", "html": HTML}
        pid = httpx.post(base + "/pages", json=page, headers=AUTH).json()["id"]
        wait_ready(base, pid)
        question = {"question": "Why do otters hold hands?", "page_ids": [pid], "level": "1", "stream": True}
        events: list[dict[str, Any]] = []
        with httpx.stream("POST", base + "/pages/ask", json=question, headers=AUTH, timeout=60) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                    backend.release.set()  # the model finishes loading once the page has been told
    assert events[0] == {"type": "status", "text": MODEL_LOADING}
    assert [e["type"] for e in events][-2:] == ["final", "done"]
    assert events[-2]["message"]["content"] == "Loaded and answering."
