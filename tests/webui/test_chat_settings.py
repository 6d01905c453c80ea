"""Chat settings as a model: what the page may set, checked at the request, stored as a plain dict.

The server runs over real HTTP on loopback with a SCRIPTED model (not a language model)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from lector.llm.scripted import ScriptedBackend
from lector.retrieval.levels import Level
from lector.webui.app import create_app
from lector.webui.chat_settings import ChatSettings
from lector.webui.config import ServerConfig
from tests.webui.live_server import TOKEN, free_port, serve_app
from tests.webui.test_server_api import sse_events

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize(
    "given, level, stored",
    [
        ({}, Level.AUTO, {"level": "auto"}),
        ({"level": "2"}, Level.READ, {"level": "2"}),
        ({"level": 3}, Level.STEPWISE, {"level": "3"}),
        ({"level": "direct", "model": "qwen2.5-0.5b"}, Level.DIRECT, {"level": "0", "model": "qwen2.5-0.5b"}),
        ({"level": "tools", "system": "Be brief."}, "tools", {"level": "tools", "system": "Be brief."}),
    ],
)
def test_settings_parse_and_store_as_typed(given: dict[str, object], level: object, stored: dict[str, str]) -> None:
    settings = ChatSettings.model_validate(given)
    assert settings.level == level and settings.stored() == stored
    assert ChatSettings.from_stored(settings.stored()) == settings


@pytest.mark.parametrize(
    "given, message",
    [
        ({"level": "9"}, "unknown level '9': expected auto, direct, 0, 1, 2, 3 or tools"),
        ({"levle": "2"}, "Extra inputs are not permitted"),
        ({"model": 7}, "Input should be a valid string"),
    ],
)
def test_invalid_settings_are_refused(given: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ChatSettings.model_validate(given)


def test_an_update_replaces_only_what_it_sets() -> None:
    base = ChatSettings(model="m", level=Level.READ)
    assert base.updated(ChatSettings.model_validate({"level": "1"})) == ChatSettings(model="m", level=Level.RETRIEVE)
    assert base.updated(ChatSettings()) == base and base.updated(None) == base


def test_stored_settings_read_back_without_unknown_keys_or_invalid_values() -> None:
    assert ChatSettings.from_stored({"level": "2", "colour": "blue"}) == ChatSettings(level=Level.READ)
    assert ChatSettings.from_stored({"level": "9", "model": "m"}) == ChatSettings(model="m")  # saved unchecked


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    backend = ScriptedBackend(default="Marmalade [1].")
    config = ServerConfig(data_dir=tmp_path, port=port, token=TOKEN, tools=[], rate_burst=1000)
    with serve_app(create_app(config, backend=backend), port) as base:
        yield base


def test_bad_settings_get_a_clear_422(server: str) -> None:
    bad = httpx.post(server + "/api/sessions", json={"settings": {"level": "9"}}, headers=AUTH)
    assert bad.status_code == 422
    assert "settings.level" in bad.json()["error"]["message"] and "unknown level '9'" in bad.json()["error"]["message"]
    unknown = httpx.post(server + "/api/sessions", json={"settings": {"temperature": 2}}, headers=AUTH)
    assert unknown.status_code == 422 and "settings.temperature" in unknown.json()["error"]["message"]
    sid = httpx.post(server + "/api/sessions", json={}, headers=AUTH).json()["id"]
    chat = httpx.post(
        f"{server}/api/sessions/{sid}/chat", json={"content": "hi", "settings": {"level": "x"}}, headers=AUTH
    )
    assert chat.status_code == 422 and "unknown level 'x'" in chat.json()["error"]["message"]


def test_settings_are_stored_merged_and_read_at_the_chosen_level(server: str, tmp_path: Path) -> None:
    session = httpx.post(server + "/api/sessions", json={"settings": {"system": "Be brief."}}, headers=AUTH).json()
    sid = session["id"]
    assert session["settings"] == {"system": "Be brief.", "level": "auto"}
    patched = httpx.patch(f"{server}/api/sessions/{sid}", json={"settings": {"level": 2}}, headers=AUTH).json()
    assert patched["settings"] == {"system": "Be brief.", "level": "2"}

    files = {"file": ("cat.txt", b"The ship's cat on the Albatross is called Marmalade.", "text/plain")}
    doc = httpx.post(f"{server}/api/sessions/{sid}/documents", files=files, headers=AUTH).json()
    deadline = time.monotonic() + 30
    while httpx.get(f"{server}/api/sessions/{sid}", headers=AUTH).json()["documents"][0]["status"] != "ready":
        assert time.monotonic() < deadline, f"document {doc['id']} was not indexed in time"
        time.sleep(0.05)
    with httpx.stream(
        "POST",
        f"{server}/api/sessions/{sid}/chat",
        headers=AUTH,
        timeout=30,
        json={"content": "What is the cat called?", "settings": {"level": "1"}},
    ) as response:
        events = sse_events(response)
    assert [e["level"] for e in events if e["type"] == "level"] == [1]
    final = next(e for e in events if e["type"] == "final")
    assert final["level"] == 1 and final["citations"][0]["text"].endswith("Marmalade.")
