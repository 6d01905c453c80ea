"""What reaches a terminal: control characters shown not obeyed, one-line errors, quiet broken pipes, exit codes.
The model is SCRIPTED (llm/scripted.py), not a language model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lector.cli import main
from lector.cli.terminal import printable
from lector.llm import factory
from lector.llm.messages import Message
from lector.llm.scripted import ScriptedBackend, call

HOSTILE = ["\x1b[2J", "\x1b]0;pwned\x07", "\x00", "\x9b31m", "\u202eevil", "\x08\x08\x08", "\r"]


@pytest.mark.parametrize("sequence", HOSTILE)
def test_control_characters_are_shown_not_obeyed(sequence: str) -> None:
    shown = printable(f"before{sequence}after")
    assert shown.startswith("before") and shown.endswith("after")
    assert all(ord(ch) >= 0x20 and not 0x7F <= ord(ch) <= 0x9F for ch in shown)
    assert "\u202e" not in shown


def test_tabs_newlines_and_text_pass_unchanged() -> None:
    assert printable("a\tb\nc — café 中文 😀") == "a\tb\nc — café 中文 😀"


def test_lector_chat_prints_model_and_tool_escapes_harmlessly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    replies: list[Any] = [
        Message.assistant("", [call("calculator", {"expression": "1+1"})]),
        "Done \x1b[2J\x1b]0;title\x07 here",
    ]
    monkeypatch.setattr(factory, "make_backend", lambda spec=None, **kw: ScriptedBackend(replies))
    assert main(["chat", "--model", "scripted", "-q", "add"]) == 0
    out, err = capsys.readouterr()
    assert "\x1b" not in out and "\x07" not in out
    assert "Done \\x1b[2J\\x1b]0;title\\x07 here" in out


def run_cli(*argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lector", *argv], input=stdin, capture_output=True, text=True, timeout=120
    )


def test_a_missing_input_is_one_line_and_a_failure(tmp_path: Path) -> None:
    done = run_cli("index", str(tmp_path / "missing.txt"), "--cache-dir", str(tmp_path))
    assert done.returncode == 1
    assert "file not found" in done.stderr and "Traceback" not in done.stderr


def test_verbose_works_after_the_subcommand(tmp_path: Path) -> None:
    doc = tmp_path / "a.txt"
    doc.write_text("The keeper trimmed the lamp.", encoding="utf-8")
    done = run_cli("search", str(doc), "-q", "lamp", "-v", "--cache-dir", str(tmp_path / "c"))
    assert done.returncode == 0, done.stderr
    assert "lamp" in done.stdout


def test_an_unreachable_model_server_is_one_line(tmp_path: Path) -> None:
    doc = tmp_path / "a.txt"
    doc.write_text("The keeper trimmed the lamp. " * 3000, encoding="utf-8")
    model = "openai:http://127.0.0.1:9/v1#absent"
    done = run_cli("ask", str(doc), "-q", "what did the keeper trim?", "--model", model, "--cache-dir", str(tmp_path))
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "127.0.0.1:9" in done.stderr


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    doc = tmp_path / "big.txt"
    doc.write_text("\n\n".join(f"Line {i}: the lighthouse keeper logged a ship." for i in range(4000)), "utf-8")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lector",
            "search",
            str(doc),
            "-q",
            "lighthouse keeper",
            "-k",
            "200",
            "--cache-dir",
            str(tmp_path / "c"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    code = proc.wait(timeout=120)
    err = proc.stderr.read()
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert code == 141


def test_chat_with_an_unreachable_model_server_is_one_line_and_no_loading_note(tmp_path: Path) -> None:
    model = "openai:http://127.0.0.1:9/v1#absent"
    done = run_cli("chat", "--model", model, stdin="what is 2 + 2?\n")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "127.0.0.1:9" in done.stderr
    assert "loading the model" not in (done.stdout + done.stderr).lower(), "a remote model is not loaded here"


def test_verbose_after_the_subcommand_shows_the_details(tmp_path: Path) -> None:
    doc = tmp_path / "a.txt"
    doc.write_text("The keeper trimmed the lamp.", encoding="utf-8")
    model = "openai:http://127.0.0.1:9/v1#absent"
    done = run_cli("ask", str(doc), "-q", "what?", "--model", model, "--cache-dir", str(tmp_path), "-v")
    assert done.returncode != 0 and "Traceback" in done.stderr
