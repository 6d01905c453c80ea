"""`lector ask`: the stable JSON with the scripted model, and one end-to-end run on the real 0.5B model."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from lector.cli import main
from lector.llm.backend import ChatOptions
from lector.llm.messages import Message
from lector.llm.scripted import ScriptedBackend

FACT = "The ship's cat on the Albatross is called Marmalade."


def small_document(tmp_path) -> str:
    text = (
        "Harbour notes, spring.\n\n"
        "The Albatross is a fishing boat with a red hull. It leaves the harbour at dawn every day.\n\n"
        f"{FACT} She sleeps on the coiled ropes near the bow.\n\n"
        "The harbour master keeps a log of every boat that comes and goes."
    )
    path = tmp_path / "harbour.txt"
    path.write_text(text, encoding="utf-8")
    return str(path)


def scripted_reply(messages: list[Message], tools: object, options: ChatOptions) -> str:
    blocks = re.split(r"^\[(\d+)\] \(", messages[-1].content, flags=re.M)
    hit = next(n for n, b in zip(blocks[1::2], blocks[2::2], strict=True) if "Marmalade" in b)
    return f"Marmalade [{hit}]"


def test_ask_json_is_the_stable_shape(tmp_path, monkeypatch, capsys) -> None:
    backend = ScriptedBackend(default=scripted_reply)
    monkeypatch.setattr("lector.llm.factory.make_backend", lambda spec=None, **kw: backend)
    path = small_document(tmp_path)
    code = main(["ask", path, "-q", "What is the cat called?", "--json", "--cache-dir", str(tmp_path / "c")])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == ["answer", "level", "citations", "usage", "elapsed_s"]
    assert data["answer"].startswith("Marmalade") and data["level"] == 0
    cite = data["citations"][0]
    assert list(cite) == ["source", "chunk_id", "start", "end", "page", "text"]
    assert cite["source"] == path and FACT in cite["text"]
    assert open(path, encoding="utf-8").read()[cite["start"] : cite["end"]] == cite["text"]
    assert data["usage"] == {
        "llm_calls": 1,
        "prompt_tokens": data["usage"]["prompt_tokens"],
        "completion_tokens": data["usage"]["completion_tokens"],
    }


def test_ask_text_output_and_levels(tmp_path, monkeypatch, capsys) -> None:
    backend = ScriptedBackend(default=scripted_reply)
    monkeypatch.setattr("lector.llm.factory.make_backend", lambda spec=None, **kw: backend)
    path = small_document(tmp_path)
    assert main(["ask", path, "-q", "What is the cat called?", "--level", "1", "--cache-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("Marmalade") and "[1] " in out and "harbour.txt" in out
    assert "level 1" in err and "model calls" in err
    assert main(["ask", str(tmp_path / "missing.txt"), "-q", "x", "--cache-dir", str(tmp_path)]) == 1


def test_ask_end_to_end_with_the_real_small_model(tmp_path, monkeypatch, capsys, small_model: Any) -> None:
    monkeypatch.setattr("lector.llm.factory.make_backend", lambda spec=None, **kw: small_model)
    monkeypatch.setattr(small_model, "close", lambda: None)  # the session fixture closes it
    path = small_document(tmp_path)
    code = main(
        [
            "ask",
            path,
            "-q",
            "What is the name of the cat on the Albatross?",
            "--json",
            "--cache-dir",
            str(tmp_path / "c"),
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert "marmalade" in data["answer"].lower()
    assert data["citations"] and "Marmalade" in data["citations"][0]["text"]
    assert data["usage"]["llm_calls"] >= 1 and data["usage"]["prompt_tokens"] > 0


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def reading_reply(messages: list[Message], tools: object, options: ChatOptions) -> str:
    """SCRIPTED (not a language model): keywords, each passage read (quoting the cat's sentence), an answer."""
    from lector.retrieval.level2 import READ_SCHEMA

    schema = options.json_schema or {}
    if "keywords_en" in schema.get("properties", {}):
        return json.dumps({"keywords_en": ["cat", "Albatross"]})
    if schema == READ_SCHEMA:
        found = [FACT] if FACT in messages[-1].content else []
        return json.dumps({"relevant": bool(found), "quotes": found})
    return json.dumps({"answer": "Marmalade.", "evidence": [1]})


def test_ask_on_a_terminal_says_which_passage_of_how_many_it_reads(tmp_path, monkeypatch, capsys) -> None:
    backend = ScriptedBackend(default=reading_reply, parallel_slots=1)
    monkeypatch.setattr("lector.llm.factory.make_backend", lambda spec=None, **kw: backend)
    filler = [f"Boat {i} of the harbour carried nets, ropes and a cat basket to the quay." for i in range(400)]
    path = tmp_path / "log.txt"
    path.write_text("\n\n".join([*filler[:200], FACT, *filler[200:]]), encoding="utf-8")
    capsys.readouterr()
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    code = main(["ask", str(path), "-q", "What is the cat called?", "--level", "2", "--cache-dir", str(tmp_path / "c")])
    assert code == 0
    out, err = capsys.readouterr()
    assert out.startswith("Marmalade.")
    shown = re.findall(r"\r\x1b\[2K(reading passages?[^\r]*?)(?: · \d+\.\d s)?(?=\r)", err)
    shown = [line for i, line in enumerate(shown) if i == 0 or line != shown[i - 1]]  # redrawn as the clock ticks
    total = int(shown[0].split(" of ")[1].split(" ")[0])
    assert total > 1 and all(line.endswith(f" of {total} (log.txt)…") for line in shown), shown
    read = [re.match(r"reading passages? (\d+)(?:–(\d+))?", line) for line in shown]
    spans = [(int(m[1]), int(m[2] or m[1])) for m in read if m]
    assert spans[0][0] == 1 and all(b[0] == a[1] + 1 for a, b in zip(spans, spans[1:], strict=False)), shown
    assert err.split("\r\x1b[2K")[-1].startswith("(level 2;"), "the status line is cleared before the summary"
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    main(["ask", str(path), "-q", "What is the cat called?", "--level", "2", "--cache-dir", str(tmp_path / "c")])
    assert "reading passage" not in capsys.readouterr().err, "no status line off a terminal"


def test_ask_on_a_terminal_shows_how_far_a_long_prompt_is_read(tmp_path, monkeypatch, capsys) -> None:
    from tests.llm.reading_slowly import SlowReading

    backend = SlowReading(default=scripted_reply, total=3000, pause=0.0)
    monkeypatch.setattr("lector.llm.factory.make_backend", lambda spec=None, **kw: backend)
    path = small_document(tmp_path)
    capsys.readouterr()
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    code = main(["ask", path, "-q", "What is the cat called?", "--cache-dir", str(tmp_path / "c")])
    assert code == 0
    out, err = capsys.readouterr()
    assert out.startswith("Marmalade")
    shown = re.findall(r"\r\x1b\[2K(reading the prompt[^\r]*?)(?: · \d+\.\d s)?(?=\r)", err)
    assert shown == ["reading the prompt 0%…", "reading the prompt 33%…", "reading the prompt 67%…"]
    assert err.split("\r\x1b[2K")[-1].startswith("(level 0;"), "cleared before the summary"
