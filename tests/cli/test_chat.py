"""`lector chat`, driven by the SCRIPTED model (llm/scripted.py) in place of a real one."""

from __future__ import annotations

import io
from typing import Any

import pytest

from lector.cli import main
from lector.llm import factory
from lector.llm.messages import Message
from lector.llm.scripted import ScriptedBackend, call


class Script:
    """Replies the SCRIPTED model will give, and the specs make_backend was asked for."""

    def __init__(self) -> None:
        self.replies: list[Any] = []
        self.specs: list[str | None] = []


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> Script:
    script = Script()

    def make_backend(spec: str | None = None, **kwargs: Any) -> ScriptedBackend:
        script.specs.append(spec)
        return ScriptedBackend(script.replies)

    monkeypatch.setattr(factory, "make_backend", make_backend)
    return script


def test_one_question_with_a_tool_call(script: Script, capsys: pytest.CaptureFixture[str]) -> None:
    """SCRIPTED model: -q answers once; the answer is on stdout, the tool trace and usage on stderr."""
    script.replies += [Message.assistant("", [call("calculator", {"expression": "12345*6789"})]), "It is 83810205."]
    code = main(["chat", "--model", "scripted-test", "-q", "What is 12345*6789?"])
    out, err = capsys.readouterr()
    assert code == 0
    assert out.strip() == "It is 83810205."
    assert '→ calculator {"expression": "12345*6789"}' in err and "← 83810205" in err
    assert "2 step(s)" in err and "completion tokens" in err
    assert script.specs == ["scripted-test"]


def test_reads_questions_from_stdin_with_commands(
    script: Script, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SCRIPTED model: one question per stdin line; /reset and /exit work; nothing after /exit is read."""
    script.replies += ["first answer", "second answer"]
    monkeypatch.setattr("sys.stdin", io.StringIO("hello\n\n/reset\nagain\n/exit\nnever asked\n"))
    code = main(["chat", "--tools", "none"])
    out, err = capsys.readouterr()
    assert code == 0
    assert out.split() == ["first", "answer", "second", "answer"]
    assert "(new conversation)" in err


def test_unknown_tool_name_is_a_usage_error(script: Script, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "--tools", "calculator,nope", "-q", "x"]) == 2
    assert "unknown tool 'nope'" in capsys.readouterr().err


def test_a_failing_model_gives_exit_code_1(script: Script, capsys: pytest.CaptureFixture[str]) -> None:
    """SCRIPTED model with no replies left: the error is shown, the command fails cleanly."""
    assert main(["chat", "-q", "x"]) == 1
    assert "error: Model error" in capsys.readouterr().err


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_a_long_prompt_shows_how_far_it_is_read_then_makes_way_for_the_answer() -> None:
    from lector.agent.events import PromptProgress, TextDelta
    from lector.cli.chat import Printer

    out, err = io.StringIO(), Terminal()
    printer = Printer(out, err)
    for done in (0, 400, 800):
        printer.show(PromptProgress(done=done, total=1000, step=1))
    printer.show(TextDelta(text="Hello."))
    assert err.getvalue() == (
        "\r\x1b[2Kreading the prompt 0%…\r\x1b[2Kreading the prompt 40%…\r\x1b[2Kreading the prompt 80%…\r\x1b[2K"
    )
    assert out.getvalue() == "Hello."
    plain_err = io.StringIO()
    Printer(io.StringIO(), plain_err).show(PromptProgress(done=1, total=2))
    assert plain_err.getvalue() == "", "nothing off a terminal"
