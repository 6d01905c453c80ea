"""The extension's side panel in headless Chromium: the model-loading note; a citation clicked in the panel scrolls
the page to the quote and highlights it; every answer is kept, shown again and deleted from the panel's history.

Answers come from a SCRIPTED model (not a language model); the extension, its service worker, the server and the
indexing are real."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from lector.llm.scripted import ScriptedBackend
from lector.webui.app import create_app
from lector.webui.config import ServerConfig
from tests.webui.live_server import TOKEN, free_port, serve_app
from tests.webui.test_chat_page import shot
from tests.webui.test_extension import CHROMIUM, EXTENSION, shots_folder
from tests.webui.test_model_status import SlowLoading

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")]
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# The quote sits far below the first screen (the spacer has no text, so the page is one passage).
TALL_ARTICLE = b"""<!doctype html><html><head><title>The lighthouse keeper</title></head><body><article>
<h1>The lighthouse keeper</h1><div style="height: 2600px"></div>
<p>Every evening at dusk the keeper, Mira Holm, lit the lamp of the Vesterby light.</p>
<p>She kept a logbook in which she recorded the passing ships and the weather.</p><div style="height: 1200px"></div>
</article></body></html>"""


@contextmanager
def tall_article_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(TALL_ARTICLE)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/lighthouse.html"
    finally:
        server.shutdown()


@pytest.fixture
def panel_and_page(tmp_path: Path) -> Iterator[tuple[Any, Any, str]]:
    """The side panel (paired, the tall article saved and indexed) and the article's tab, and the server's base."""
    with side_panel(tmp_path, ScriptedBackend(default="Mira Holm lit the lamp at dusk [1].")) as opened:
        yield opened


@contextmanager
def side_panel(tmp_path: Path, backend: ScriptedBackend) -> Iterator[tuple[Any, Any, str]]:
    port = free_port()
    config = ServerConfig(data_dir=tmp_path / "data", port=port, token=TOKEN, tools=[], rate_burst=1000)
    base = f"http://127.0.0.1:{port}"
    with (
        serve_app(create_app(config, backend=backend), port),
        tall_article_server() as article,
        sync_playwright() as pw,
    ):
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            viewport={"width": 900, "height": 700},
            args=[f"--disable-extensions-except={EXTENSION}", f"--load-extension={EXTENSION}", "--no-sandbox"],
        )
        try:
            worker = context.service_workers[0] if context.service_workers else context.wait_for_event("serviceworker")
            worker.evaluate("([server, token]) => chrome.storage.local.set({ server, token })", [base, TOKEN])
            tab = context.new_page()
            tab.goto(article)
            worker.evaluate("async (url) => addTab((await chrome.tabs.query({url}))[0])", article)
            deadline = time.monotonic() + 30
            while httpx.get(base + "/pages", headers=AUTH).json()[0]["status"] != "ready":
                assert time.monotonic() < deadline, "the saved page was not indexed"
                time.sleep(0.1)
            panel = context.new_page()
            panel.set_viewport_size({"width": 400, "height": 760})
            panel.goto(f"chrome-extension://{worker.url.split('/')[2]}/sidepanel.html")
            yield panel, tab, base
        finally:
            context.close()


def ask_the_library(panel: Any, question: str, wait: bool = True) -> None:
    panel.check("input[value=library]")
    panel.fill("#question", question)
    panel.click("#ask")
    if wait:
        panel.wait_for_selector("#citations .cite", timeout=30_000)


def test_the_panel_says_the_model_is_loading(tmp_path: Path) -> None:
    backend = SlowLoading()
    with side_panel(tmp_path, backend) as (panel, _, _):
        ask_the_library(panel, "Who lights the lamp?", wait=False)
        expect(panel.locator("#status")).to_contain_text("Loading the model", timeout=9_000)
        panel.wait_for_timeout(600)  # the timer has run on
        shot(panel, "sidepanel-model-loading")
        backend.release.set()
        expect(panel.locator("#status")).to_contain_text("Answered in", timeout=30_000)
        assert "Loaded and answering" in panel.inner_text("#answer")


def test_a_citation_in_the_panel_scrolls_the_page_to_the_quote_and_highlights_it(
    panel_and_page: tuple[Any, Any, str],
) -> None:
    panel, tab, _ = panel_and_page
    ask_the_library(panel, "Who lights the lamp?")
    assert tab.evaluate("window.scrollY") == 0
    panel.click("#citations .cite")
    marks = tab.locator("mark.lector-quote")
    expect(marks.first).to_contain_text("Every evening at dusk the keeper, Mira Holm, lit the lamp", timeout=10_000)
    expect(marks.last).to_contain_text("the passing ships and the weather")  # the whole quote, over two paragraphs
    assert "The lighthouse keeper" not in " ".join(marks.all_inner_texts()), "the heading is not on the quote's line"
    centred = "() => { const r = document.querySelector('mark.lector-quote').getBoundingClientRect();"
    tab.wait_for_function(f"{centred} return window.scrollY > 1500 && r.top > 150 && r.bottom < 550; }}")
    tab.bring_to_front()
    tab.screenshot(path=str(shots_folder() / "sidepanel-citation-on-the-page.png"))

    tab.evaluate("window.scrollTo(0, 0)")
    panel.click("#answer .cite-ref")  # the inline [1] does the same, replacing the marks it made before
    tab.wait_for_function("() => window.scrollY > 1500")
    expect(marks).to_have_count(2)


def test_answers_are_kept_shown_again_and_deleted_from_the_panel(panel_and_page: tuple[Any, Any, str]) -> None:
    panel, _, base = panel_and_page
    ask_the_library(panel, "Who lights the lamp?")
    expect(panel.locator("#answers li")).to_have_count(1)
    ask_the_library(panel, "What does she record in the logbook?")
    expect(panel.locator("#answers li")).to_have_count(2)
    assert "What does she record" in panel.locator("#answers li").first.inner_text()  # newest first

    panel.reload()
    expect(panel.locator("#answers li")).to_have_count(2)
    assert panel.inner_text("#answer") == ""
    panel.locator("#answers li .open", has_text="Who lights the lamp?").click()
    expect(panel.locator("#answer")).to_contain_text("Mira Holm lit the lamp")
    expect(panel.locator("#citations .cite")).to_contain_text("lighthouse.html")
    assert panel.input_value("#question") == "Who lights the lamp?"
    panel.screenshot(path=str(shots_folder() / "sidepanel-history.png"), full_page=True)

    chats = httpx.get(base + "/api/sessions", headers=AUTH).json()
    assert [c["title"] for c in chats] == ["What does she record in the logbook?", "Who lights the lamp?"]
    kept = httpx.get(f"{base}/api/sessions/{chats[1]['id']}", headers=AUTH).json()
    assert [p["url"].rsplit("/", 1)[-1] for p in kept["pages"]] == ["lighthouse.html"], "the chat page can go on"

    remove = panel.locator("#answers li", has_text="Who lights the lamp?").locator("button.delete")
    remove.click()
    expect(remove).to_have_text("Delete?")
    remove.click()
    expect(panel.locator("#answers li")).to_have_count(1)
    assert [c["title"] for c in httpx.get(base + "/api/sessions", headers=AUTH).json()] == [chats[0]["title"]]
