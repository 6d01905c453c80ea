"""What the chat page says while Level 2 reads: "Reading passage 3 of 8 in keeper.txt…", live, in Chromium.

The model is SCRIPTED (not a language model) and slowed down so the page can be watched while it reads; the
server, the indexing and Level 2's choice of passages are real."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from lector.llm.backend import ChatOptions
from lector.llm.messages import Message
from lector.llm.scripted import ScriptedBackend
from lector.retrieval.level2 import READ_SCHEMA
from lector.webui.app import create_app
from lector.webui.config import ServerConfig
from tests.webui.live_server import TOKEN, free_port, serve_app
from tests.webui.test_chat_page import CHROMIUM, RECORD_STATUS, shot
from tests.webui.test_documents_api import FILLER, OTTERS, new_chat, upload

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")


def slow_reader(messages: list[Message], tools: object, options: ChatOptions) -> str:
    """SCRIPTED: keywords, each passage read (quoting the otters' sentence where it is), then a cited answer."""
    schema = options.json_schema or {}
    if "keywords_en" in schema.get("properties", {}):
        return json.dumps({"information": "", "instruction": "", "keywords_en": ["otters", "hands"]})
    if schema == READ_SCHEMA:
        found = re.findall(r"Sea otters[^.]*\.", messages[-1].content)
        return json.dumps({"relevant": bool(found), "quotes": found[:1], "note": "x" * 120})
    return json.dumps({"answer": "They hold hands so as not to drift apart [1].", "evidence": [1]})


@pytest.fixture()
def reading_page(tmp_path: Path) -> Iterator[tuple[Any, str]]:
    from playwright.sync_api import sync_playwright

    port = free_port()
    backend = ScriptedBackend(default=slow_reader, parallel_slots=1, delay=0.02)
    config = ServerConfig(data_dir=tmp_path / "data", port=port, token=TOKEN, tools=[], rate_burst=1000)
    with serve_app(create_app(config, backend=backend), port) as base, sync_playwright() as pw:
        sid = new_chat(base, level="2")
        upload(base, sid, "otters.txt", (" ".join(FILLER[:60]) + " " + OTTERS + " " + " ".join(FILLER[60:])).encode())
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        tab = browser.new_page(viewport={"width": 1100, "height": 700})
        tab.goto(f"{base}/?token={TOKEN}&chat={sid}")
        yield tab, base
        browser.close()


def test_the_page_says_which_passage_of_how_many_it_is_reading(reading_page: tuple[Any, str]) -> None:
    tab, _ = reading_page
    expect(tab.locator(".doc[data-status=ready]")).to_have_count(1)
    tab.evaluate(RECORD_STATUS)
    tab.fill("#input", "Why do otters hold hands?")
    tab.press("#input", "Enter")
    live = tab.locator(".live-status")
    expect(live).to_contain_text(re.compile(r"Reading passage 3 of \d+ in otters\.txt…"), timeout=30_000)
    shot(tab, "reading-passage-n-of-total")
    expect(tab.locator(".msg.assistant .usage")).to_have_count(1, timeout=60_000)
    statuses = tab.evaluate("window.__statuses")
    numbered = [m for s in statuses if (m := re.match(r"Reading passage (\d+) of (\d+) in otters\.txt…", s))]
    totals = {int(m.group(2)) for m in numbered}
    assert len(totals) == 1, "one round of reading: one total"
    total = totals.pop()
    seen = sorted({int(m.group(1)) for m in numbered})
    assert seen == list(range(1, len(seen) + 1)) and 3 <= len(seen) <= total, "every passage named, in order"
    summary = tab.locator(".msg.assistant .reading summary").inner_text()
    assert re.fullmatch(rf"Read {len(seen)} of {total} passages, [12] verified quotes?", summary), summary
    assert "drift apart" in tab.locator(".msg.assistant .text").inner_text()
