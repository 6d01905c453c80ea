"""Hostile uploads over real HTTP: a bomb is refused with its reason while a page posted behind it is indexed.

The app runs with a SCRIPTED model (no language model); parsing, the child parse workers and indexing are real.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lector.llm.scripted import ScriptedBackend
from lector.webui.app import create_app
from lector.webui.config import ServerConfig
from tests.retrieval.bombs import docx_bomb, pdf_slow_page, xlsx_sheet
from tests.webui.live_server import TOKEN, free_port, serve_app

AUTH = {"Authorization": f"Bearer {TOKEN}"}
PAGE = "<html><body><h1>Otters</h1><p>Sea otters hold hands while they sleep.</p></body></html>"


@pytest.fixture()
def app(tmp_path: Path) -> Any:
    config = ServerConfig(data_dir=tmp_path / "data", port=free_port(), token=TOKEN, tools=[], rate_burst=1000)
    return create_app(config, backend=ScriptedBackend(default="Otters [1]."))


@pytest.fixture()
def server(app: Any) -> Iterator[str]:
    with serve_app(app, app.state.lector.config.port) as base:
        yield base


def _session(base: str) -> str:
    return str(httpx.post(base + "/api/sessions", json={"title": "bombs"}, headers=AUTH).json()["id"])


def _upload(base: str, sid: str, path: Path, name: str | None = None) -> httpx.Response:
    with path.open("rb") as handle:
        files = {"file": (name or path.name, handle)}
        return httpx.post(f"{base}/api/sessions/{sid}/documents", files=files, headers=AUTH, timeout=30)


def _document(base: str, sid: str, did: str) -> dict[str, Any]:
    documents = httpx.get(f"{base}/api/sessions/{sid}", headers=AUTH).json()["documents"]
    return next(d for d in documents if d["id"] == did)


def _wait(read: Any, timeout: float) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        item = read()
        if item["status"] in ("ready", "error"):
            return item, time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"still {item['status']} after {timeout} s")


def test_a_page_posted_behind_bombs_is_ready_in_seconds(server: str, tmp_path: Path) -> None:
    sid = _session(server)
    bombs = [_upload(server, sid, build(tmp_path)).json()["id"] for build in (docx_bomb, xlsx_sheet, pdf_slow_page)]
    posted = httpx.post(server + "/pages", json={"url": "https://ex.org/otters", "html": PAGE}, headers=AUTH)
    page, waited = _wait(lambda: httpx.get(f"{server}/pages/{posted.json()['id']}", headers=AUTH).json(), 10)
    assert page["status"] == "ready" and waited < 3
    for did in bombs[:2]:
        refused, took = _wait(lambda did=did: _document(server, sid, did), 10)
        assert refused["status"] == "error" and "expands" in refused["error"] and took < 5
    assert _document(server, sid, bombs[2])["status"] == "ingesting"  # the slow PDF is still running, in its child


def test_the_slow_document_is_stopped_at_the_time_budget(app: Any, tmp_path: Path) -> None:
    from lector.retrieval.parsers import ParseBudget

    app.state.lector.library.budget = ParseBudget(seconds=1)
    with serve_app(app, app.state.lector.config.port) as base:
        sid = _session(base)
        did = _upload(base, sid, pdf_slow_page(tmp_path)).json()["id"]
        refused, took = _wait(lambda: _document(base, sid, did), 10)
    assert refused["status"] == "error" and "parsing stopped after 1 s" in refused["error"] and took < 4


def test_uploads_are_named_by_their_file_name_never_by_a_server_path(server: str, app: Any, tmp_path: Path) -> None:
    sid = _session(server)
    names = {"..": "upload", "../../etc/passwd": "passwd", ".hidden.txt": "hidden.txt", "notes.txt": "notes.txt"}
    uploads = str(app.state.lector.uploads)
    dids = []
    for number, (sent, stored) in enumerate(names.items()):
        notes = tmp_path / f"notes{number}.txt"
        notes.write_text(f"Note {number}: sea otters keep a favourite stone in a pouch under the forearm.")
        response = _upload(server, sid, notes, sent)
        assert response.status_code == 202 and response.json()["filename"] == stored
        assert "path" not in response.json() and uploads not in response.text
        dids.append(response.json()["id"])
    for did in dids:
        assert _wait(lambda did=did: _document(server, sid, did), 10)[0]["status"] == "ready"
    assert uploads not in httpx.get(f"{server}/api/sessions/{sid}", headers=AUTH).text
    assert {d.source for d in app.state.lector.library.documents()} == set(names.values())


def test_a_refused_document_names_the_file_not_the_upload_folder(server: str, app: Any, tmp_path: Path) -> None:
    sid = _session(server)
    did = _upload(server, sid, docx_bomb(tmp_path), "report.docx").json()["id"]
    refused, _ = _wait(lambda: _document(server, sid, did), 10)
    assert refused["error"].startswith("report.docx: ") and str(app.state.lector.uploads) not in refused["error"]
