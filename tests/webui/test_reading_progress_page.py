"""What the chat page says while Level 2 reads ("Reading passage 3 of 8 in keeper.txt…") and while the model reads
a long prompt ("Reading the prompt: 40 %"), live, in Chromium.

The model is SCRIPTED (not a language model) and slowed down so the page can be watched while it reads; the
server, the indexing and Level 2's choice of passages are real."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from lector.agent.stepwise import PLAN_SCHEMA
from lector.llm.backend import ChatOptions
from lector.llm.messages import Message
from lector.llm.scripted import ScriptedBackend
from lector.retrieval.answer_prompt import ANSWER_SCHEMA
from lector.retrieval.level2 import READ_SCHEMA
from lector.webui.app import create_app
from lector.webui.config import ServerConfig
from tests.llm.reading_slowly import SlowReading
from tests.webui.live_server import TOKEN, free_port, serve_app
from tests.webui.test_chat_page import CHROMIUM, RECORD_STATUS, shot
from tests.webui.test_documents_api import FILLER, OTTERS, chat, new_chat, upload

EXTENSION = Path(__file__).resolve().parents[2] / "webui" / "extension"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")


def slow_reader(messages: list[Message], tools: object, options: ChatOptions) -> str:
    """SCRIPTED: keywords, each passage read (quoting the otters' sentence where it is), then a cited answer."""
    schema = options.json_schema or {}
    if "keywords_en" in schema.get("properties", {}):
        return json.dumps({"keywords_en": ["otters", "hands"]})
    if schema == READ_SCHEMA:
        found = re.findall(r"Sea otters[^.]*\.", messages[-1].content)
        return json.dumps({"relevant": bool(found), "quotes": found[:1], "note": "x" * 120})
    return json.dumps({"answer": "They hold hands so as not to drift apart [1].", "evidence": [1]})


@contextmanager
def reading_chat(tmp_path: Path, reply: Callable[..., str], level: str = "2") -> Iterator[tuple[Any, str]]:
    """The chat page in Chromium on a chat at `level` holding otters.txt, answered by the SCRIPTED `reply`."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    backend = ScriptedBackend(default=reply, parallel_slots=1, delay=0.02)
    config = ServerConfig(data_dir=tmp_path / "data", port=port, token=TOKEN, tools=[], rate_burst=1000)
    with serve_app(create_app(config, backend=backend), port) as base, sync_playwright() as pw:
        sid = new_chat(base, level=level)
        upload(base, sid, "otters.txt", (" ".join(FILLER[:60]) + " " + OTTERS + " " + " ".join(FILLER[60:])).encode())
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        tab = browser.new_page(viewport={"width": 1100, "height": 700})
        tab.goto(f"{base}/?token={TOKEN}&chat={sid}")
        expect(tab.locator(".doc[data-status=ready]")).to_have_count(1)
        yield tab, base
        browser.close()


@pytest.fixture()
def reading_page(tmp_path: Path) -> Iterator[tuple[Any, str]]:
    with reading_chat(tmp_path, slow_reader) as opened:
        yield opened


WAVE = re.compile(r"(?:Sub-question 1: r|R)eading passages? (\d+)(?:–(\d+))? of (\d+) in otters\.txt…")


def waves(statuses: list[str]) -> tuple[list[tuple[int, int]], int]:
    """The passages each status said were being read, in order ((first, last) each), and the one total."""
    found = [m for s in statuses if (m := WAVE.match(s))]
    totals = {int(m.group(3)) for m in found}
    assert len(totals) == 1, f"one round of reading, one total: {statuses}"
    shown = list(dict.fromkeys((int(m.group(1)), int(m.group(2) or m.group(1))) for m in found))
    return shown, totals.pop()


def test_the_page_says_which_passage_of_how_many_it_is_reading(reading_page: tuple[Any, str]) -> None:
    tab, _ = reading_page
    tab.evaluate(RECORD_STATUS)
    tab.fill("#input", "Why do otters hold hands?")
    tab.press("#input", "Enter")
    live = tab.locator(".live-status")
    expect(live).to_contain_text(WAVE, timeout=30_000)
    shot(tab, "reading-passage-n-of-total")
    expect(tab.locator(".msg.assistant .usage")).to_have_count(1, timeout=60_000)
    shown, total = waves(tab.evaluate("window.__statuses"))
    assert shown[0][0] == 1 and all(b[0] == a[1] + 1 for a, b in zip(shown, shown[1:], strict=False)), shown
    read = shown[-1][1]
    assert 3 <= read <= total, "every passage named, in order, of the total chosen"
    summary = tab.locator(".msg.assistant .reading summary").inner_text()
    assert re.fullmatch(rf"Read {read} of {total} passages, [1-4] verified quotes?", summary), summary
    assert "drift apart" in tab.locator(".msg.assistant .text").inner_text()


def slow_answer(messages: list[Message], tools: object, options: ChatOptions) -> str:
    """SCRIPTED: reads as slow_reader does, then writes a long answer (seconds at the scripted speed)."""
    if options.json_schema == ANSWER_SCHEMA:
        return json.dumps({"answer": "They hold hands so as not to drift apart. " * 60, "evidence": [1]})
    return slow_reader(messages, tools, options)


def test_stop_keeps_the_quotes_found_and_says_what_they_cost(tmp_path: Path) -> None:
    with reading_chat(tmp_path, slow_answer) as (tab, _):
        tab.fill("#input", "Why do otters hold hands?")
        tab.press("#input", "Enter")
        expect(tab.locator(".msg.assistant .reading blockquote").first).to_contain_text("drift apart", timeout=30_000)
        expect(tab.locator(".msg.assistant .text")).to_contain_text("They hold hands", timeout=30_000)  # writing
        tab.click("#stop")
        usage = tab.locator(".msg.assistant .usage")
        expect(usage).to_have_count(1, timeout=30_000)
        assert re.match(r"cancelled · [1-9]\d* prompt \+ [1-9]\d* completion tokens", usage.inner_text())
        text = tab.locator(".msg.assistant .text").inner_text()
        assert "Found so far" in text and "drift apart" in text and "otters.txt" in text
        shot(tab, "stopped-keeps-what-was-found")
        tab.reload()  # what was found is kept with the chat
        expect(tab.locator(".msg.assistant .text")).to_contain_text("Found so far")


def stepwise_reader() -> Callable[[list[Message], object, ChatOptions], str]:
    """SCRIPTED Level 3: following names gives an answer the passages do not hold, so the planner asks one
    sub-question (read as slow_reader reads), then answers."""
    plans: list[str] = []

    def reply(messages: list[Message], tools: object, options: ChatOptions) -> str:
        schema = options.json_schema or {}
        if schema == PLAN_SCHEMA:
            plans.append("asked")
            if len(plans) == 1:
                return json.dumps({"action": "ask", "text": "Why do otters hold hands?"})
            return json.dumps({"action": "answer", "text": "So as not to drift apart."})
        if schema == ANSWER_SCHEMA and not plans:
            return json.dumps({"answer": "Purple unicorns dance on the moon [1].", "evidence": [1]})
        return slow_reader(messages, tools, options)

    return reply


def test_level_3_says_which_passage_each_sub_question_is_reading(tmp_path: Path) -> None:
    with reading_chat(tmp_path, stepwise_reader(), level="3") as (tab, _):
        tab.evaluate(RECORD_STATUS)
        tab.fill("#input", "Why do otters hold hands?")
        tab.press("#input", "Enter")
        live = tab.locator(".live-status")
        expect(live).to_contain_text(re.compile(r"Sub-question 1: reading passages? [\d–]+ of \d+ in otters\.txt…"))
        shot(tab, "level3-sub-question-reading")
        assert "unicorns" not in tab.locator(".msg.assistant").inner_text(), "the answer Level 3 dropped is gone"
        expect(tab.locator(".msg.assistant .usage")).to_have_count(1, timeout=60_000)
        statuses = tab.evaluate("window.__statuses")
        shown, total = waves([s for s in statuses if s.startswith("Sub-question 1: ")])
        assert shown[0][0] == 1 and shown[-1][1] <= total
        sub = tab.locator(".msg.assistant details.sub summary").inner_text()
        counted = rf" · read {shown[-1][1]} of {total} passages?, [1-4] verified quotes?"
        assert re.fullmatch(r"Sub-question 1: Why do otters hold hands\?" + counted, sub), sub
        answered = tab.locator(".msg.assistant details.sub .result")
        assert "drift apart" in answered.inner_text() and answered.locator("button.cite-ref").inner_text() == "1"
        assert "drift apart" in tab.locator(".msg.assistant .reading blockquote").first.inner_text()
        shot(tab, "level3-sub-question-read")


@pytest.fixture()
def slow_prompt_page(tmp_path: Path) -> Iterator[tuple[Any, str]]:
    from playwright.sync_api import sync_playwright

    port = free_port()
    backend = SlowReading(default=slow_reader, total=4000, pause=0.4, parallel_slots=1)
    config = ServerConfig(data_dir=tmp_path / "data", port=port, token=TOKEN, tools=[], rate_burst=1000)
    with serve_app(create_app(config, backend=backend), port) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        tab = browser.new_page(viewport={"width": 1100, "height": 600})
        tab.goto(f"{base}/?token={TOKEN}")
        yield tab, base
        browser.close()


def test_the_page_shows_how_far_the_model_has_read_a_long_prompt(slow_prompt_page: tuple[Any, str]) -> None:
    tab, _ = slow_prompt_page
    tab.evaluate(RECORD_STATUS)
    tab.fill("#input", "hello")
    tab.press("#input", "Enter")
    # Each step shows for a fraction of a second: wait on what the page recorded, not on a poll of the box.
    tab.wait_for_function(
        "() => (window.__statuses || []).some(s => s.startsWith('Reading the prompt: 33 %'))", timeout=30_000
    )
    shot(tab, "reading-the-prompt")
    expect(tab.locator(".msg.assistant .usage")).to_have_count(1, timeout=30_000)
    statuses = [s.split(" · ")[0] for s in tab.evaluate("window.__statuses")]
    read = [s for s in statuses if s.startswith("Reading the prompt")]
    assert list(dict.fromkeys(read)) == [
        "Reading the prompt: 0 %",
        "Reading the prompt: 33 %",
        "Reading the prompt: 67 %",
    ]
    after = statuses[statuses.index(read[-1]) :]
    assert after[-1] == statuses[statuses.index(read[0]) - 1], "what it was doing before comes back as it writes"


def test_a_document_answer_streams_prompt_progress(tmp_path: Path) -> None:
    port = free_port()
    backend = SlowReading(default=slow_reader, total=4000, pause=0.0, parallel_slots=1)
    config = ServerConfig(data_dir=tmp_path / "data", port=port, token=TOKEN, tools=[], rate_burst=1000)
    with serve_app(create_app(config, backend=backend), port) as base:
        sid = new_chat(base, level="1")
        upload(base, sid, "otters.txt", (" ".join(FILLER) + " " + OTTERS).encode())
        events = chat(base, sid, "Why do otters hold hands?")
    kinds = [e["type"] for e in events]
    progress = [e for e in events if e["type"] == "prompt_progress"]
    assert {(e["done"], e["total"]) for e in progress} == {(0, 4000), (1333, 4000), (2666, 4000)}
    assert kinds.index("prompt_progress") < kinds.index("draft") < kinds.index("final")


CHROME_STUB = """window.chrome = {
  runtime: { sendMessage: (message, reply) => reply({ ok: true, data: [] }) },
  tabs: { query: async () => [] },
};"""


@contextmanager
def side_panel(height: int) -> Iterator[Any]:
    """The side panel's own script on its own page, with a LiveAnswer; the service worker it talks to is a stub
    that has no pages."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            panel = browser.new_page(viewport={"width": 400, "height": height})
            panel.add_init_script(CHROME_STUB)
            panel.goto((EXTENSION / "sidepanel.html").as_uri())
            panel.evaluate("window.live = new LiveAnswer()")
            yield panel
        finally:
            browser.close()


def test_the_side_panel_says_which_passage_and_how_far_the_prompt_is_read() -> None:
    with side_panel(500) as panel:
        status = panel.locator("#status")
        panel.evaluate("live.on({ type: 'status', text: 'Choosing the passages to read…' })")
        panel.evaluate("live.on({ type: 'reading', first: 3, last: 3, total: 8, sources: ['keeper.html'] })")
        expect(status).to_contain_text("Reading passage 3 of 8…")
        panel.evaluate("live.on({ type: 'reading', first: 5, last: 8, total: 8, sources: ['keeper.html'] })")
        expect(status).to_contain_text("Reading passages 5–8 of 8…")
        quote = "Mira lit the lamp at dusk."
        panel.evaluate("(q) => live.on({ type: 'chunk_read', source: 'keeper.html', chunk_id: 4, quotes: [q] })", quote)
        expect(panel.locator("#found li")).to_have_text([f"“{quote}”"])  # each verified quote as it is found
        panel.evaluate("live.on({ type: 'reading', first: 2, last: 2, total: 5, sources: [], sub: 1 })")
        expect(status).to_contain_text("Sub-question 1: reading passage 2 of 5…")
        panel.evaluate("live.on({ type: 'status', text: 'Writing the answer from what was found…' })")
        panel.evaluate("live.on({ type: 'prompt_progress', done: 1200, total: 3000 })")
        expect(status).to_contain_text("Reading the prompt: 40 %")
        shot(panel, "sidepanel-reading-the-prompt")
        panel.evaluate("live.on({ type: 'draft', text: 'Mira', reset: false })")
        expect(status).to_contain_text("Writing the answer…")
        expect(status).not_to_contain_text("Reading the prompt")
        panel.evaluate("clearInterval(live.tick)")


WRITE_SLOWLY = """async () => {
  for (const piece of ['Mira ', 'lit ', 'the ', 'lamp ', 'at ', 'dusk.']) {
    live.on({ type: 'draft', text: piece, reset: false });
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}"""


def test_the_side_panel_shows_how_fast_the_answer_is_written() -> None:
    with side_panel(300) as panel:
        status = panel.locator("#status")
        panel.evaluate("live.on({ type: 'status', text: 'Loading the model (the first answer takes longer)…' })")
        expect(status).to_contain_text("Loading the model")
        panel.evaluate(WRITE_SLOWLY)
        panel.evaluate("live.paint()")
        expect(status).to_contain_text(re.compile(r"Writing the answer… · \d+\.\d s · ≈ \d+\.\d tok/s"))
        rate = float(re.findall(r"≈ (\d+\.\d) tok/s", status.inner_text())[0])
        assert 5 < rate < 15, "five pieces in about half a second"
        final = {"type": "final", "message": {"content": "Mira lit the lamp at dusk."}, "level": 1}
        final["usage"] = {"prompt_tokens": 120, "completion_tokens": 6}
        panel.evaluate("(e) => live.on(e)", final)
        expect(status).to_contain_text(
            re.compile(r"Answered in \d+\.\d s · reading level 1 · 120 \+ 6 tokens · \d+\.\d tok/s")
        )
        shot(panel, "sidepanel-tokens-per-second")
        # The server's count of the writing time covers the JSON the panel never sees: 30 tokens in 2 s.
        served = {"usage": {"prompt_tokens": 120, "completion_tokens": 30}, "writing_s": 2}
        summary = panel.evaluate("(f) => answerSummary(f, '9.0', '')", served)
        assert summary.endswith("120 + 30 tokens · 15.0 tok/s")
