"""`/docs` works offline in Chromium: the API reference comes from vendored Swagger UI, nothing from a CDN."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lector.llm.scripted import ScriptedBackend
from lector.webui.app import create_app
from lector.webui.config import ServerConfig
from tests.webui.live_server import TOKEN, free_port, serve_app
from tests.webui.test_chat_page import shot

CHROMIUM = os.environ.get("LECTOR_CHROMIUM", "/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")


def test_the_api_reference_renders_from_this_server_only(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    port = free_port()
    config = ServerConfig(data_dir=tmp_path, port=port, token=TOKEN, tools=[], rate_burst=1000)
    with serve_app(create_app(config, backend=ScriptedBackend(default="ok")), port) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        tab = browser.new_page()
        foreign: list[str] = []
        tab.on("request", lambda r: None if r.url.startswith(base) else foreign.append(r.url))
        tab.goto(f"{base}/?token={TOKEN}")
        tab.goto(f"{base}/docs")
        tab.wait_for_selector(".opblock", timeout=20_000)
        text = tab.inner_text("body")
        shot(tab, "api-docs")
        browser.close()
    assert "/api/sessions" in text and "/pages" in text
    assert foreign == []
