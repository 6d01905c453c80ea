"""`lector chat`, driven by the SCRIPTED model (llm/scripted.py) in place of a real one."""

from __future__ import annotations

import io
import re
import time
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
    printer = Printer(out, err, tick=None)
    for done in (0, 400, 800):
        printer.show(PromptProgress(done=done, total=1000, step=1))
    printer.show(TextDelta(text="Hello."))
    shown = re.findall(r"\r\x1b\[2K([^\r]*)", err.getvalue())
    assert [re.sub(r" · \d+\.\d s$", "", s) for s in shown] == [
        "reading the prompt 0%…",
        "reading the prompt 40%…",
        "reading the prompt 80%…",
        "",
    ]
    assert err.getvalue().endswith("\r\x1b[2K") and out.getvalue() == "Hello."
    plain_err = io.StringIO()
    Printer(io.StringIO(), plain_err).show(PromptProgress(done=1, total=2))
    assert plain_err.getvalue() == "", "nothing off a terminal"


def test_on_a_terminal_the_step_the_tool_a_running_clock_and_the_writing_speed_are_shown() -> None:
    from lector.agent.events import Final, StepStarted, TextDelta, ToolCallFinished, ToolCallStarted
    from lector.cli.chat import Printer
    from lector.llm.backend import Usage

    out, err = io.StringIO(), Terminal()
    printer = Printer(out, err, tick=0.05)
    printer.show(StepStarted(step=1))
    time.sleep(0.3)  # the clock runs while the model thinks
    printer.show(ToolCallStarted(call_id="c1", name="calculator", arguments='{"expression": "6*7"}', step=1))
    printer.show(ToolCallFinished(call_id="c1", name="calculator", content="42", elapsed=0.01, step=1))
    printer.show(StepStarted(step=2))
    for piece in ["The ", "result ", "is ", "42", "."]:
        printer.show(TextDelta(text=piece, step=2))
        time.sleep(0.1)
    printer.show(Final(message=Message.assistant("The result is 42."), usage=Usage(completion_tokens=5), steps=2))
    printer.close()
    lines = re.findall(r"\r\x1b\[2K([^\r\n]+)", err.getvalue())
    clock = [float(m.group(1)) for line in lines if (m := re.match(r"thinking \(step 1\)… · (\d+\.\d) s$", line))]
    assert len(clock) >= 3 and clock == sorted(clock) and clock[-1] >= 0.2, lines
    assert any(line.startswith("running calculator… · ") for line in lines)
    assert any(line.startswith("thinking (step 2)… · ") for line in lines)
    speed = re.search(r"completion tokens · \d+\.\d s · (\d+\.\d) tok/s\]", err.getvalue())
    assert speed is not None and 5 < float(speed.group(1)) < 15, err.getvalue()
    assert out.getvalue() == "The result is 42.\n"
    end = err.getvalue()
    time.sleep(0.15)
    assert err.getvalue() == end, "the clock stops when the answer is done"
