"""The Chrome MV3 extension loaded into headless Chromium, against the real server on loopback.

Answers come from a SCRIPTED model (not a language model); the extension, its service worker,
the server and the indexing are real.
"""

from __future__ import annotations

import http.server
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from lector.llm.scripted import ScriptedBackend
from lector.webui.app import create_app
from lector.webui.config import ServerConfig
from tests.webui.live_server import TOKEN, free_port, serve_app

CHROMIUM = "/usr/bin/chromium"
EXTENSION = Path(__file__).resolve().parents[2] / "webui" / "extension"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (make test installs it)"
)
ARTICLE = b"""<!doctype html><html><head><title>The lighthouse keeper</title></head><body><article>
<h1>The lighthouse keeper</h1><p>Every evening at dusk the keeper, Mira Holm, lit the lamp of the Vesterby light.</p>
<p>She kept a logbook in which she recorded the passing ships and the weather.</p></article></body></html>"""


@contextmanager
def article_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(ARTICLE)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/lighthouse.html"
    finally:
        server.shutdown()


# In the side panel: what a click on a citation runs in the tab that shows the cited page.
SHOW_ON_PAGE = """async ([url, quote]) => {
  const [tab] = await chrome.tabs.query({ url });
  const target = { tabId: tab.id };
  const [{ result }] = await chrome.scripting.executeScript({ target, func: highlightOnPage, args: [quote] });
  return result;
}"""


RECORD_STATUSES = """() => {
  window.__statuses = [];
  const status = document.getElementById('status');
  const record = () => window.__statuses.push(status.textContent);
  new MutationObserver(record).observe(status, { childList: true, characterData: true, subtree: true });
}"""


def shots_folder() -> Path:
    """Where screenshots for a person to look at go (LECTOR_SHOTS names the folder)."""
    folder = Path(os.environ.get("LECTOR_SHOTS", "/tmp/lector-shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_extension_pairs_adds_the_page_and_asks(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    port = free_port()
    config = ServerConfig(data_dir=tmp_path / "data", port=port, token=TOKEN, tools=[], rate_burst=1000)
    backend = ScriptedBackend(default="Mira Holm lit the lamp at dusk [1].")
    base = f"http://127.0.0.1:{port}"
    with serve_app(create_app(config, backend=backend), port), article_server() as article, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=[
                f"--disable-extensions-except={EXTENSION}",
                f"--load-extension={EXTENSION}",
                "--no-sandbox",
                "--disable-gpu",
            ],
        )
        try:
            worker = context.service_workers[0] if context.service_workers else context.wait_for_event("serviceworker")
            extension_id = worker.url.split("/")[2]

            options = context.new_page()
            options.goto(f"chrome-extension://{extension_id}/options.html")
            expect(options.locator("#server")).to_have_value("http://127.0.0.1:8765")  # its stored settings came
            options.fill("#server", base)
            options.fill("#token", "wrong-token")
            options.click("#pair")
            options.wait_for_selector("#status[data-ok=false]")
            assert "invalid access token" in options.inner_text("#status")
            options.fill("#token", TOKEN)
            options.click("#pair")
            options.wait_for_selector("#status[data-ok=true]")
            assert worker.evaluate("chrome.sidePanel.getPanelBehavior()") == {"openPanelOnActionClick": True}

            tab = context.new_page()
            tab.goto(article)
            added = worker.evaluate("async (url) => addTab((await chrome.tabs.query({url}))[0])", article)
            assert added["title"] == "The lighthouse keeper"

            deadline = time.monotonic() + 30
            pages: list[dict[str, Any]] = []
            while time.monotonic() < deadline:
                pages = httpx.get(base + "/pages", headers={"Authorization": f"Bearer {TOKEN}"}).json()
                if pages and pages[0]["status"] == "ready":
                    break
                time.sleep(0.1)
            assert [p["url"] for p in pages] == [article] and pages[0]["status"] == "ready"

            panel = context.new_page()
            panel.goto(f"chrome-extension://{extension_id}/sidepanel.html")
            panel.evaluate(RECORD_STATUSES)
            panel.check("input[value=library]")
            panel.fill("#question", "Who lights the lamp?")
            panel.click("#ask")
            panel.wait_for_selector("#citations .cite", timeout=30_000)  # the answer streamed, then its sources
            assert "Mira Holm" in panel.inner_text("#answer")
            statuses = panel.evaluate("window.__statuses")
            assert any("lighthouse.html" in s and " s" in s for s in statuses), statuses  # the step and a timer
            assert "Answered in" in panel.inner_text("#status") and "tokens" in panel.inner_text("#status")
            assert panel.locator("#stop").is_hidden() and panel.locator("#ask").is_visible()
            assert "lighthouse.html" in panel.inner_text("#citations")
            panel.click("#answer .cite-ref")
            assert panel.locator("#citations .cite").count() == 1
            quote = "The lighthouse keeper Every evening at dusk the keeper, Mira Holm, lit the lamp."
            assert panel.evaluate(SHOW_ON_PAGE, [article, quote]) is True
            assert "Every evening at dusk the keeper" in tab.locator("mark").inner_text()

            saved = panel.locator("#pages li")
            assert "The lighthouse keeper" in saved.inner_text() and "ready" in saved.inner_text()
            panel.set_viewport_size({"width": 400, "height": 700})
            panel.screenshot(path=str(shots_folder() / "extension-sidepanel.png"))
            saved.locator("button.delete").click()
            saved.locator("button.delete").click()
            panel.wait_for_selector("#no-pages:not([hidden])")
            assert httpx.get(base + "/pages", headers={"Authorization": f"Bearer {TOKEN}"}).json() == []
        finally:
            context.close()
