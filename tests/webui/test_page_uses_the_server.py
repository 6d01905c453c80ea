"""The chat page in Chromium using what the server offers it: the text around a cited passage, a PDF from the
document's own file, reusing and removing documents and saved pages, searching what chats said, and the note
while the model loads. The model is SCRIPTED (not a language model); server, parsing and indexing are real."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from lector.llm.backend import Delta
from lector.webui.app import create_app
from lector.webui.config import ServerConfig
from tests.webui import test_chat_page
from tests.webui.live_server import TOKEN, free_port, serve_app
from tests.webui.test_chat_page import CHROMIUM, RECORD_STATUS, ask, fake_stream, final_event, keeper_pdf, shot
from tests.webui.test_model_status import SlowLoading

page = test_chat_page.page  # the chat page in Chromium, on a server with the SCRIPTED model

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")]
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FILLER = " ".join(f"Paragraph {i} is about the harbour, the nets and the boats." for i in range(120))


def origin(page: Any) -> str:
    return str(page.url.split("/?")[0].rstrip("/"))


def upload(page: Any, path: Path) -> None:
    page.set_input_files("#file", str(path))
    expect(page.locator(".doc", has_text=path.name)).to_have_attribute("data-status", "ready", timeout=30_000)


def test_a_citation_shows_the_text_around_the_quote(page: Any, tmp_path: Path) -> None:
    doc = tmp_path / "otters.txt"
    doc.write_text(f"{FILLER}\n\nSea otters hold hands while they sleep so that they do not drift apart.\n\n{FILLER}")
    upload(page, doc)
    answer = ask(page, "Why do otters hold hands?")
    answer.locator(".text button.cite-ref").first.click()
    mark = page.locator("#source-text mark")
    expect(mark).to_be_visible()
    expect(page.locator("#source-text")).to_contain_text("…")  # the surroundings came with the passage
    whole, quoted = page.inner_text("#source-text"), mark.inner_text()
    assert len(whole) > len(quoted) + 500 and quoted in whole
    shot(page, "citation-in-context")


def test_a_pdf_citation_opens_the_documents_own_file(page: Any, tmp_path: Path) -> None:
    (tmp_path / "keeper.pdf").write_bytes(keeper_pdf())
    upload(page, tmp_path / "keeper.pdf")
    doc_id = page.evaluate("state.session.documents[0].doc_id")
    quote = "Every evening the keeper lit the lamp of the Vesterby."
    citation = {
        "source": "keeper.pdf",
        "doc_id": doc_id,
        "chunk_id": 0,
        "start": 0,
        "end": 10,
        "page": 2,
        "text": quote,
    }
    answer = "The keeper [1]."
    fake_stream(page, [{"type": "text", "text": answer}, final_event(answer, citations=[citation])])
    files: list[str] = []
    page.on("response", lambda r: files.append(r.headers.get("content-type", "")) if r.url.endswith("/file") else None)
    ask(page, "Who lit the lamp?").locator(".text button.cite-ref").click()
    expect(page.locator("#source-pdf .quote-hit").first).to_be_attached(timeout=20_000)
    assert "page 2 of 2" in page.inner_text("#source-where") and files == ["application/pdf"]


def test_documents_and_saved_pages_are_reused_in_another_chat_and_removed(page: Any, tmp_path: Path) -> None:
    (tmp_path / "otters.txt").write_text("Sea otters hold hands while they sleep.\n")
    upload(page, tmp_path / "otters.txt")
    saved = {"url": "https://example.org/keeper", "title": "The keeper", "text": "Mira lit the lamp at dusk."}
    httpx.post(f"{origin(page)}/pages", json=saved, headers=AUTH).raise_for_status()
    page.click("#new-session")
    ask(page, "hello there")
    page.click("#open-library")
    elsewhere = page.locator("#library-docs li", has_text="another chat")
    expect(elsewhere).to_have_count(1)
    elsewhere.locator("button.use").click()
    expect(page.locator("#documents .doc[data-status=ready]", has_text="otters.txt")).to_have_count(1)
    page.locator("#library-pages li", has_text="The keeper").locator("button.use").click()
    expect(page.locator("#library-docs li", has_text="saved page")).to_have_count(1)
    shot(page, "library-reuse")
    sid = page.evaluate("state.session.id")
    session = httpx.get(f"{origin(page)}/api/sessions/{sid}", headers=AUTH).json()
    assert [d["filename"] for d in session["documents"]] == ["otters.txt"] and len(session["pages"]) == 1
    page.locator("#library-docs li", has_text="saved page").locator("button.delete").click()
    expect(page.locator("#library-docs li", has_text="saved page")).to_have_count(0)
    page.locator("#library-docs li", has_text="otters.txt").locator("button.delete").click()
    expect(page.locator("#library-docs li", has_text="another chat")).to_have_count(1)  # it can join again
    expect(page.locator("#documents .doc")).to_have_count(0)
    session = httpx.get(f"{origin(page)}/api/sessions/{sid}", headers=AUTH).json()
    assert session["documents"] == [] and session["pages"] == []
    assert len(httpx.get(f"{origin(page)}/api/documents", headers=AUTH).json()) == 1  # the first chat keeps it


def test_chat_search_finds_what_a_chat_said(page: Any) -> None:
    ask(page, "tell me a long story")
    page.click("#new-session")
    ask(page, "hello there")
    page.fill("#chat-search", "lit the lamp")  # only in the first chat's answer, not in any title
    expect(page.locator("#sessions li")).to_have_count(1)
    assert "long story" in page.inner_text("#sessions li")
    page.fill("#chat-search", "")
    expect(page.locator("#sessions li")).to_have_count(2)


class LoadsBeforeAnswering(SlowLoading):
    """As an embedded model does: no word of an answer before the model is loaded (SCRIPTED)."""

    async def astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[Delta]:
        while not self.release.is_set():
            await asyncio.sleep(0.05)
        async for delta in super().astream(*args, **kwargs):
            yield delta


@pytest.fixture()
def loading_page(tmp_path: Path) -> Iterator[tuple[Any, SlowLoading]]:
    from playwright.sync_api import sync_playwright

    port = free_port()
    backend = LoadsBeforeAnswering()
    config = ServerConfig(data_dir=tmp_path, port=port, token=TOKEN, tools=[], rate_burst=1000)
    with serve_app(create_app(config, backend=backend), port) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        tab = browser.new_page()
        tab.goto(f"{base}/?token={TOKEN}")
        yield tab, backend
        backend.release.set()
        browser.close()


def test_the_first_answer_says_the_model_is_loading(loading_page: tuple[Any, SlowLoading]) -> None:
    tab, backend = loading_page
    tab.wait_for_function("state.modelLoaded === false")
    tab.evaluate(RECORD_STATUS)
    tab.fill("#input", "hello there")
    tab.press("#input", "Enter")
    status = tab.locator(".live-status")
    tab.wait_for_timeout(1500)  # the turn has begun its first step, and the model is still loading
    expect(status).to_contain_text("Loading the model")
    shot(tab, "model-loading")
    backend.release.set()
    expect(tab.locator(".msg.assistant .usage")).to_have_count(1, timeout=30_000)
    assert any("Loading the model" in s for s in tab.evaluate("window.__statuses"))


def test_a_document_answer_is_shown_while_written_then_replaced_by_the_final_text(page: Any) -> None:
    final = "They hold hands so as not to drift apart [1]."
    events: list[dict[str, Any]] = [
        {"type": "level", "level": 1, "reason": "retrieve"},
        {"type": "draft", "text": "A first ", "reset": False},
        {"type": "draft", "text": "guess", "reset": False},
        {"type": "draft", "text": "", "reset": True},  # Auto escalated: another level answers
        {"type": "level", "level": 2, "reason": "escalated from Level 1"},
        {"type": "draft", "text": "They hold hands ", "reset": False},
        {"type": "draft", "text": "so as not to drift apart.", "reset": False},
        {"type": "text", "text": final},
        final_event(final),
    ]
    fake_stream(page, events)
    answer = ask(page, "Why do otters hold hands?")
    assert answer.locator(".text").count() == 1
    assert answer.locator(".text").inner_text().strip() == final


def test_a_document_being_indexed_shows_how_many_passages_and_the_percentage(page: Any, tmp_path: Path) -> None:
    step = {"stage": "indexing", "percent": 57, "chunks_done": 7012, "chunks_total": 14026}
    event = {"type": "progress", "status": "ingesting", "progress": step, "error": None}
    page.route(
        "**/api/documents/*/events",
        lambda route: route.fulfill(body=f"data: {json.dumps(event)}\n\n", content_type="text/event-stream"),
    )
    (tmp_path / "harbour.txt").write_text("Boats carried nets to the quay.\n")
    page.set_input_files("#file", str(tmp_path / "harbour.txt"))
    chip = page.locator(".doc", has_text="harbour.txt")
    expect(chip).to_contain_text("57 % · 7,012 of 14,026 passages indexed")
    shot(page, "ingesting-percent")


def test_a_document_being_read_says_so_with_a_running_clock(page: Any, tmp_path: Path) -> None:
    held: list[Any] = []
    page.route("**/api/documents/*/events", lambda route: held.append(route))  # still reading: no answer yet
    (tmp_path / "otters.txt").write_text("Sea otters hold hands while they sleep.\n")
    page.set_input_files("#file", str(tmp_path / "otters.txt"))
    chip = page.locator(".doc", has_text="otters.txt")
    expect(chip).to_have_attribute("data-status", "ingesting")
    expect(chip).to_contain_text(re.compile(r"reading… · [2-9] s"), timeout=5_000)
    shot(page, "ingesting-clock")
    ready = {"type": "progress", "status": "ready", "progress": {"stage": "ready"}, "error": None}
    held[0].fulfill(body=f"data: {json.dumps(ready)}\n\n", content_type="text/event-stream")
    expect(chip).to_have_attribute("data-status", "ready")
    assert chip.locator(".status").inner_text() == "ready", "the clock stops"
