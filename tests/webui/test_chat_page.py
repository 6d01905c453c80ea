"""The chat page end to end in headless Chromium (Playwright), against the real server.

The answers come from a SCRIPTED model (not a language model) so the page's behaviour can be asserted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from lector.agent.events import CallRetried
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


LONG_ANSWER = "The keeper walked up the stairs and lit the lamp. " * 20
MATH_AND_CODE = "Energy is $$E = mc^2$$ and inline $a_1 + a_2$.\n\n```python\nprint(6 * 7)\n```\n"


def scripted_reply(messages: list[Message], tools: list[ToolSpec] | None, options: ChatOptions) -> Message | str:
    prompt = "\n".join(m.content for m in messages)
    last = messages[-1].content
    if "exfiltrate" in last:
        return hostile_markdown(EXFIL["base"])
    if "say nothing" in last:
        return ""
    if "explode" in last:
        raise RuntimeError("the scripted model broke down")
    if "long story" in last:
        return LONG_ANSWER
    if "endless story" in last:
        return LONG_ANSWER * 20
    if "formula" in last:
        return MATH_AND_CODE
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
            f"Math: $\\includegraphics{{{base}/katex-graphics}}$ and $\\href{{{base}/katex-href}}{{x}}$",
            f"$$\\url{{{base}/katex-url}}$$",
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
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        tab = context.new_page()
        tab.goto(f"{base}/?token={TOKEN}")
        yield tab
        browser.close()


def shot(page: Any, name: str) -> Path:
    """A screenshot for a person to look at (LECTOR_SHOTS names the folder)."""
    folder = Path(os.environ.get("LECTOR_SHOTS", "/tmp/lector-shots"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def ask(page: Any, text: str) -> Any:
    """Send `text` and wait until its answer has finished."""
    finished = page.locator(".msg.assistant .usage")
    before = finished.count()
    page.fill("#input", text)
    page.press("#input", "Enter")
    expect(finished).to_have_count(before + 1, timeout=30_000)
    expect(page.locator(".live-status")).to_have_count(0)
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


RECORD_STATUS = """window.__statuses = [];
new MutationObserver(() => document.querySelectorAll('.live-status').forEach((s) => __statuses.push(s.textContent)))
  .observe(document.body, { subtree: true, childList: true, characterData: true });"""


def test_signs_of_life_show_the_tool_a_timer_and_the_speed(page: Any) -> None:
    page.evaluate(RECORD_STATUS)
    ask(page, "what is 6*7?")
    answer = ask(page, "tell me a long story")
    statuses = page.evaluate("window.__statuses")
    assert any("Running calculator" in s for s in statuses)
    assert any(re.search(r"\d+\.\d s", s) for s in statuses)
    assert any("tok/s" in s for s in statuses if "Writing" in s)
    assert re.search(r"\d+\.\d s · \d+\.\d tok/s", answer.locator(".usage").inner_text())
    shot(page, "signs-of-life")
    # A document answer's speed is the server's count of its writing time, which covers the JSON the page never sees.
    served = {"usage": {"prompt_tokens": 600, "completion_tokens": 90}, "writing_s": 9}
    line = page.evaluate("(f) => usageLine(f, 25000, 3.4).textContent", served)
    assert line == "600 prompt + 90 completion tokens · 25.0 s · 10.0 tok/s"


def test_a_turn_without_text_still_says_something(page: Any) -> None:
    answer = ask(page, "please say nothing")
    assert answer.locator(".text, .empty-answer").inner_text().strip()
    assert answer.locator("button.regenerate").is_visible()
    shot(page, "turn-without-text")


def fake_stream(page: Any, events: list[dict[str, Any]]) -> None:
    """The chat endpoint answers with these SSE events (the page under test is real; the answer is canned)."""
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in [{"type": "ack"}, *events, {"type": "done"}])
    page.route("**/api/sessions/*/chat", lambda route: route.fulfill(body=body, content_type="text/event-stream"))


def final_event(content: str, **extra: Any) -> dict[str, Any]:
    message = {"role": "assistant", "content": content, "tool_calls": []}
    usage = {"prompt_tokens": 10, "completion_tokens": 0}
    return {"type": "final", "message": message, "usage": usage, "stopped_reason": "done", **extra}


def test_an_empty_final_answer_is_replaced_by_a_plain_sentence(page: Any) -> None:
    fake_stream(page, [{"type": "step", "step": 1}, final_event("")])
    answer = ask(page, "anything")
    assert "without writing an answer" in answer.locator(".empty-answer").inner_text()
    shot(page, "empty-final")


def test_an_unusable_tool_call_is_shown_and_retried(page: Any) -> None:
    retried = CallRetried(step=1, error="invalid JSON after 'calculator'")
    fake_stream(
        page,
        [
            {"type": "step", "step": 1},
            retried.model_dump(),
            {"type": "step", "step": 2},
            {"type": "text", "text": "It is 42."},
            final_event("It is 42."),
        ],
    )
    answer = ask(page, "what is 6*7, badly")
    assert retried.describe() in answer.locator(".level-note").inner_text()
    assert "It is 42." in answer.inner_text()
    shot(page, "call-retried")


def test_reading_progress_shows_each_verified_quote_and_the_sub_questions(page: Any) -> None:
    fake_stream(
        page,
        [
            {"type": "level", "level": 3, "reason": "a question in two parts"},
            {"type": "sub_question", "index": 1, "question": "Who kept the light?"},
            {"type": "chunk_read", "source": "/srv/uploads/ab12/keeper.txt", "chunk_id": 6, "quotes": ["Mira lit it."]},
            {"type": "chunk_read", "source": "/srv/uploads/ab12/keeper.txt", "chunk_id": 7, "quotes": []},
            {"type": "sub_answer", "index": 1, "question": "Who kept the light?", "answer": "Mira.", "citations": []},
            {"type": "text", "text": "Mira kept the light."},
            final_event("Mira kept the light."),
        ],
    )
    answer = ask(page, "Who kept the light, and when?")
    assert answer.locator(".reading summary").inner_text() == "Read 2 passages, 1 verified quote"
    quote = answer.locator(".reading blockquote")
    assert "Mira lit it." in quote.inner_text() and "keeper.txt" in quote.inner_text()
    assert "/srv" not in answer.inner_text()
    assert "Sub-question 1: Who kept the light?" in answer.locator("details.sub summary").inner_text()
    assert answer.locator("details.sub .result").inner_text() == "Mira."
    assert "Level 3" in answer.locator(".level-note").inner_text()
    shot(page, "reading-progress")


def test_a_model_error_shows_a_banner_with_retry(page: Any) -> None:
    page.fill("#input", "now explode")
    page.press("#input", "Enter")
    page.wait_for_selector("#banner:not([hidden])")
    assert "scripted model broke down" in page.inner_text("#banner-text")
    assert page.locator("#banner-retry").is_visible()
    assert page.locator(".msg.assistant .error-note").count() == 1
    shot(page, "model-error")


def test_with_the_server_down_the_message_is_kept_and_retried(page: Any) -> None:
    page.route("**/chat", lambda route: route.abort())
    page.fill("#input", "hello while the server is down")
    page.press("#input", "Enter")
    page.wait_for_selector("#banner:not([hidden])")
    assert "Could not reach the Lector server" in page.inner_text("#banner-text")
    assert page.inner_text("#banner-text code") == "lector serve"  # a command reads as code, not in backticks
    assert page.input_value("#input") == "hello while the server is down"
    assert page.locator(".msg").count() == 0
    shot(page, "server-down")
    page.unroute("**/chat")
    page.click("#banner-retry")
    page.wait_for_selector(".msg.assistant .usage")
    assert "streaming this markdown answer" in page.locator(".msg.assistant").last.inner_text()
    assert page.locator("#banner").is_hidden() and page.input_value("#input") == ""


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed (make test installs it)")
def test_a_plot_is_shown_in_the_answer_with_its_code_highlighted(page: Any) -> None:
    answer = ask(page, "plot the squares")
    figure = answer.locator("figure.tool-figure img")
    assert figure.count() == 1 and figure.is_visible()
    assert figure.get_attribute("src").startswith("data:image/png;base64,")
    assert answer.locator("details.tool img").count() == 0
    code = answer.locator("details.tool pre.code code.hljs")
    assert code.inner_text().splitlines()[1] == "plt.plot([1, 2, 3], [1, 4, 9])"
    assert code.locator("span").count() > 0
    assert "\\n" not in code.inner_text()
    assert answer.locator("details.tool pre.result").count() == 1
    shot(page, "plot-inline")


def test_the_chat_id_is_in_the_url_and_reload_reopens_the_chat(page: Any) -> None:
    ask(page, "hello there")
    expect(page.locator("#chat-title")).to_have_text("hello there")
    match = re.search(r"[?&]chat=([0-9a-f]+)", page.url)
    assert match is not None and "token=" not in page.url
    page.reload()
    page.wait_for_selector(".msg.assistant .text")
    assert "streaming this markdown answer" in page.inner_text("#messages")
    assert page.locator("#sessions li.active").get_attribute("data-id") == match.group(1)
    page.click("#new-session")
    assert "chat=" not in page.url and page.locator(".msg").count() == 0
    page.go_back()
    page.wait_for_selector(".msg.assistant .text")


def test_rename_search_and_delete_chats(page: Any) -> None:
    ask(page, "hello there")
    page.click("#new-session")
    ask(page, "tell me a long story")
    assert page.locator("#sessions li").count() == 2
    first = page.locator("#sessions li", has_text="hello there")
    first.hover()
    first.locator("button.rename").click()
    page.fill("#sessions .rename-input", "Greetings")
    page.press("#sessions .rename-input", "Enter")
    page.wait_for_selector("#sessions li:has-text('Greetings')")
    page.fill("#chat-search", "greet")
    assert page.locator("#sessions li").count() == 1
    shot(page, "chats-renamed-and-searched")
    page.fill("#chat-search", "")
    current = page.locator("#sessions li.active")
    current.locator("button.delete").click()
    assert page.locator("#sessions li").count() == 2
    current.locator("button.delete").click()
    expect(page.locator("#sessions li")).to_have_count(1)
    assert page.locator(".msg").count() == 0 and "chat=" not in page.url
    assert page.inner_text("#sessions").strip() == "Greetings"


def test_settings_are_plain_words_and_kept_per_chat(page: Any) -> None:
    page.click("#open-settings")
    assert "Choose for me" in page.inner_text("#level")
    page.select_option("#level", "1")
    shot(page, "settings")
    page.click("#settings-done")
    ask(page, "hello there")
    first_url = page.url
    page.click("#new-session")
    assert page.input_value("#level") == "auto"
    page.goto(first_url)
    page.wait_for_selector(".msg.assistant .text")
    assert page.input_value("#level") == "1"


def test_without_a_token_the_page_asks_for_one_and_remembers_it(page: Any) -> None:
    page.evaluate("sessionStorage.clear(); localStorage.clear()")
    page.reload()
    dialog = page.locator("#token-dialog")
    dialog.wait_for()
    assert "Paste your access token" in dialog.inner_text()
    shot(page, "token-form")
    page.fill("#token-input", "not-the-token")
    page.click("#token-dialog button[type=submit]")
    page.wait_for_selector("#token-error:has-text('not accepted')")
    page.fill("#token-input", TOKEN)
    page.click("#token-dialog button[type=submit]")
    dialog.wait_for(state="hidden")
    ask(page, "hello there")
    page.evaluate("sessionStorage.clear()")
    page.reload()
    page.wait_for_selector(".msg.assistant .text")
    assert dialog.is_hidden()


def test_a_rejected_token_shows_the_form_not_json(page: Any) -> None:
    page.evaluate("sessionStorage.setItem('lector-token', 'stale-token')")
    page.reload()
    page.wait_for_selector("#token-dialog[open]")
    assert "not accepted" in page.inner_text("#token-error")
    assert "{" not in page.inner_text("body")
    shot(page, "token-rejected")


DROP_FILE = """async ([name, text]) => {
  const data = new DataTransfer();
  data.items.add(new File([text], name, { type: 'text/plain' }));
  for (const type of ['dragenter', 'dragover', 'drop'])
    document.querySelector('#messages').dispatchEvent(new DragEvent(type, { dataTransfer: data, bubbles: true }));
}"""


def test_uploads_accept_several_files_by_picker_or_drop_and_failures_can_be_removed(page: Any, tmp_path: Path) -> None:
    picker = page.locator("#file")
    assert picker.get_attribute("multiple") is not None
    accept = picker.get_attribute("accept") or ""
    for ext in ("txt", "md", "html", "pdf", "docx", "pptx", "csv", "tsv", "xlsx"):
        assert f".{ext}" in accept.split(",")
    (tmp_path / "a.txt").write_text("Alpha is the first letter.\n")
    (tmp_path / "b.md").write_text("# Beta\nBeta is the second letter.\n")
    (tmp_path / "tool.exe").write_bytes(b"MZ\x00\x01")
    page.set_input_files("#file", [str(tmp_path / "a.txt"), str(tmp_path / "b.md"), str(tmp_path / "tool.exe")])
    page.evaluate(DROP_FILE, ["dropped.txt", "Gamma came by drag and drop."])
    expect(page.locator(".doc[data-status=ready]")).to_have_count(3, timeout=30_000)
    expect(page.locator("#sessions li")).to_have_count(1)
    failed = page.locator(".doc[data-status=error]")
    assert "tool.exe" in failed.inner_text() and "cannot read" in failed.inner_text()
    assert "/" not in page.inner_text("#documents").replace("/s", "")
    shot(page, "uploads")
    failed.locator("button.remove").click()
    assert page.locator(".doc").count() == 3
    page.reload()
    expect(page.locator(".doc[data-status=ready]")).to_have_count(3)


DROP_AND_ASK = """([text, question]) => {
  const data = new DataTransfer();
  data.items.add(new File([text], 'otters.txt', { type: 'text/plain' }));
  document.body.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true }));
  document.querySelector('#input').value = question;
  document.querySelector('#composer').requestSubmit();
}"""


def test_a_question_waits_for_an_upload_that_is_still_reading(page: Any) -> None:
    page.evaluate(RECORD_STATUS)
    text = "Sea otters hold hands while they sleep so that they do not drift apart.\n" * 3
    page.evaluate(DROP_AND_ASK, [text, "Why do otters hold hands?"])
    expect(page.locator(".msg.assistant .usage")).to_have_count(1, timeout=30_000)
    assert any("Waiting for otters.txt to finish reading" in s for s in page.evaluate("window.__statuses"))
    assert "Level" in page.locator(".msg.assistant .level-note").inner_text()
    shot(page, "waits-for-upload")


def test_every_citation_mark_opens_the_quote_highlighted(page: Any, tmp_path: Path) -> None:
    doc = tmp_path / "otters.txt"
    doc.write_text("Sea otters hold hands while they sleep so that they do not drift apart.\n" * 3)
    page.set_input_files("#file", str(doc))
    page.wait_for_selector(".doc[data-status=ready]", timeout=30_000)
    answer = ask(page, "Why do otters hold hands?")
    mark = answer.locator(".text button.cite-ref")
    assert mark.inner_text() == "1"
    assert "[1]" not in answer.locator(".text").inner_text()
    mark.click()
    assert "drift apart" in page.locator("#source-text mark").inner_text()
    assert "otters.txt" == page.inner_text("#source-title")
    shot(page, "citation")


def test_math_code_and_copy_buttons(page: Any) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Refused" in m.text else None)
    answer = ask(page, "show me the formula")
    assert answer.locator(".math.display .katex").count() == 1
    assert answer.locator(".math:not(.display) .katex").count() == 1
    assert answer.locator("pre.code code.hljs").inner_text().strip() == "print(6 * 7)"
    answer.locator("pre.code button.copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == "print(6 * 7)\n"
    answer.locator(".actions button.copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == MATH_AND_CODE
    assert refused == []
    shot(page, "math-and-code")


def test_keyboard_shift_enter_is_a_newline_escape_stops_and_ctrl_shift_o_starts_a_chat(page: Any) -> None:
    page.fill("#input", "first line")
    page.press("#input", "Shift+Enter")
    page.keyboard.type("second line")
    assert page.input_value("#input") == "first line\nsecond line"
    assert page.locator(".msg").count() == 0
    page.fill("#input", "an endless story please")
    page.press("#input", "Enter")
    page.wait_for_selector(".msg.assistant .text")
    shot(page, "streaming")
    page.keyboard.press("Escape")
    page.wait_for_selector(".msg.assistant .usage", timeout=30_000)
    assert "cancelled" in page.inner_text(".msg.assistant .usage")
    assert "keeper walked" in page.inner_text(".msg.assistant .text")
    page.keyboard.press("Control+Shift+O")  # a new chat
    expect(page.locator(".msg")).to_have_count(0)
    assert "chat=" not in page.url and page.evaluate("document.activeElement.id") == "input"


def test_dark_mode_follows_the_system(page: Any) -> None:
    ask(page, "show me the formula")
    page.emulate_media(color_scheme="dark")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(22, 24, 29)"
    shot(page, "dark-1280")
    page.emulate_media(color_scheme="light")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(247, 247, 248)"


def test_the_layout_works_390_pixels_wide(page: Any) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    ask(page, "tell me a long story")
    text_width = page.evaluate("document.querySelector('.msg.assistant .text').getBoundingClientRect().width")
    assert text_width > 330
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.locator("#sidebar").bounding_box()["x"] < -200
    shot(page, "narrow-390")
    page.click("#menu")
    expect(page.locator("body")).to_have_class("sidebar-open")
    page.wait_for_timeout(300)
    assert page.locator("#sidebar").bounding_box()["x"] == 0
    shot(page, "narrow-390-chats")
    page.locator("#sessions li").first.click()
    expect(page.locator("body")).not_to_have_class("sidebar-open")


def test_the_library_lists_saved_pages_and_deletes_them(page: Any) -> None:
    import httpx

    origin = page.url.split("/?")[0].rstrip("/")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    saved = {"url": "https://example.org/keeper", "title": "The keeper", "text": "Mira lit the lamp at dusk."}
    httpx.post(f"{origin}/pages", json=saved, headers=auth).raise_for_status()
    page.click("#open-library")
    item = page.locator("#library-pages li", has_text="The keeper")
    expect(item).to_have_count(1)
    assert "this chat" in page.inner_text("#library")
    shot(page, "library")
    item.locator("button.delete").click()
    item.locator("button.delete").click()
    expect(page.locator("#library-pages li", has_text="The keeper")).to_have_count(0)
    assert httpx.get(f"{origin}/pages", headers=auth).json() == []


def test_a_web_citation_opens_the_page_at_the_quote(page: Any) -> None:
    quote = "Mira lit the lamp of the Vesterby light at dusk."
    address = page.evaluate("(text) => pageAddress({ source: 'https://example.org/keeper#top', text })", quote)
    assert address == "https://example.org/keeper#:~:text=Mira%20lit%20the%20lamp,Vesterby%20light%20at%20dusk."
    assert page.evaluate("pageAddress({ source: '/srv/uploads/otters.txt', text: 'x' })") is None


def keeper_pdf() -> bytes:
    fpdf = pytest.importorskip("fpdf", reason="fpdf2 (a dev dependency) writes the PDF")
    pdf = fpdf.FPDF()
    pdf.set_font("Helvetica", size=14)
    for text in ("The first page is about the weather.", "Every evening the keeper lit the lamp of the Vesterby."):
        pdf.add_page()
        pdf.multi_cell(0, 10, text)
    return bytes(pdf.output())


def test_a_pdf_citation_opens_its_page_with_the_quote_highlighted(page: Any, tmp_path: Path) -> None:
    data = keeper_pdf()
    (tmp_path / "keeper.pdf").write_bytes(data)
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Refused" in m.text else None)
    # The original file as the server would send it (the page asks for it; this server has no such route yet).
    page.route("**/api/documents/*/file", lambda route: route.fulfill(body=data, content_type="application/pdf"))
    page.set_input_files("#file", str(tmp_path / "keeper.pdf"))
    expect(page.locator(".doc[data-status=ready], .doc[data-status=error]")).to_have_count(1, timeout=30_000)
    quote = "about the weather. Every evening the keeper lit the lamp of the Vesterby."  # runs over the page break
    citation = {"source": "/srv/uploads/ab/keeper.pdf", "chunk_id": 1, "start": 14, "end": 54, "page": 2, "text": quote}
    answer_text = "The keeper [1]."
    fake_stream(page, [{"type": "text", "text": answer_text}, final_event(answer_text, citations=[citation])])
    answer = ask(page, "Who lit the lamp?")
    answer.locator(".text button.cite-ref").click()
    hits = page.locator("#source-pdf .quote-hit")
    expect(hits.first).to_be_attached(timeout=20_000)
    assert "Vesterby" in " ".join(hits.all_text_contents())
    assert "page 2 of 2" in page.inner_text("#source-where")
    assert page.locator("#source-pdf canvas").count() == 1
    assert refused == []
    shot(page, "pdf-citation")


def test_error_messages_name_files_not_server_paths(page: Any) -> None:
    cases = {
        "cannot parse /srv/lector/uploads/ab12/otters.txt: bad header": "cannot parse otters.txt: bad header",
        r"no such file C:\lector\uploads\report.pdf": "no such file report.pdf",
        "server not reachable at http://127.0.0.1:8765/api": "server not reachable at http://127.0.0.1:8765/api",
    }
    for raw, shown in cases.items():
        assert page.evaluate("(m) => plainError(m)", raw) == shown


def test_a_chat_downloads_as_markdown(page: Any) -> None:
    assert page.locator("#export").is_hidden()
    ask(page, "what is 6*7?")
    with page.expect_download() as download:
        page.click("#export")
    text = Path(download.value.path()).read_text()
    assert text.startswith("# what is 6*7?\n") and "## You\n\nwhat is 6*7?\n" in text
    assert "calculator output" in text and "## Lector\n\nThe result is 42." in text
    assert download.value.suggested_filename == "what-is-6-7-.md"


def test_an_answer_left_running_by_a_reload_can_be_stopped_from_the_banner(page: Any) -> None:
    page.fill("#input", "an endless story please")
    page.press("#input", "Enter")
    page.wait_for_selector(".msg.assistant .text")
    page.reload()
    page.wait_for_selector(".msg.user")
    page.fill("#input", "hello there")
    page.press("#input", "Enter")
    page.wait_for_selector("#banner:not([hidden])")
    assert "already running" in page.inner_text("#banner-text")
    assert page.input_value("#input") == "hello there"
    page.click("#banner-retry:has-text('Stop it and send')")
    expect(page.locator(".msg.assistant .usage")).to_have_count(1, timeout=30_000)
    assert "streaming this markdown answer" in page.locator(".msg.assistant").last.inner_text()
    assert page.input_value("#input") == ""


def test_edit_and_ask_again_replace_the_turn_where_the_server_can_drop_messages(page: Any) -> None:
    ask(page, "hello there")
    asked = page.locator(".msg.user").first.get_attribute("data-id")
    page.locator(".msg.assistant button.regenerate").click()  # the server drops the turn: asked again in its place
    expect(page.locator(".msg.user").first).not_to_have_attribute("data-id", asked or "")
    expect(page.locator(".msg.assistant .usage")).to_have_count(1)
    assert page.locator(".msg.user").count() == 1
    dropped: list[str] = []

    def drop(route: Any) -> None:
        dropped.append(route.request.url.rsplit("/", 1)[1])
        route.fulfill(status=204)

    page.route("**/api/sessions/*/messages/*", drop)
    page.reload()  # the page learns again what the server can do
    page.wait_for_selector(".msg.assistant .text")
    first = page.locator(".msg.user").first
    first_id = first.get_attribute("data-id")
    assert first_id
    first.locator("button.edit").click()
    assert page.input_value("#input") == "hello there" and page.locator("#editing").is_visible()
    page.fill("#input", "tell me a long story")
    page.press("#input", "Enter")
    expect(page.locator(".msg.assistant .usage")).to_have_count(1, timeout=30_000)
    assert page.locator(".msg.user").count() == 1 and dropped == [first_id]
    assert "keeper walked" in page.inner_text(".msg.assistant")
    assert page.locator("#editing").is_hidden()
    shot(page, "edit-and-ask-again")
