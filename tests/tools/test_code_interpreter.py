"""The code interpreter's normal behaviour: stateful sessions, values, plots, files, attachments, reclaim."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lector.llm.messages import ToolCall
from lector.tools.base import ToolContext
from lector.tools.code import sandbox
from lector.tools.code.execution import CONTENT_CAP
from lector.tools.code.manager import SessionManager, shutdown_all
from lector.tools.code.sandbox import Limits
from lector.tools.code.tool import CodeInterpreter
from lector.tools.registry import ToolRegistry

pytestmark = pytest.mark.skipif(sandbox.bwrap_path() is None, reason="bubblewrap is not installed")


@pytest.fixture(scope="module")
def interp() -> Iterator[CodeInterpreter]:
    sandbox.setup_env()
    tool = CodeInterpreter(limits=Limits(timeout=20))
    yield tool
    tool.close()


async def run(tool: CodeInterpreter, code: str, conversation: str = "c1", **ctx_kw: object):
    return await tool.run(tool.Args(code=code), ToolContext(conversation_id=conversation, **ctx_kw))  # type: ignore[arg-type]


async def test_state_persists_across_calls(interp: CodeInterpreter) -> None:
    await run(interp, "import math\nx = 20\nwith open('notes.txt', 'w') as f: f.write('kept')", "state")
    result = await run(interp, "x * 2 + math.floor(2.5)", "state")
    assert not result.error, result.content
    assert "Out: 42" in result.content
    result = await run(interp, "open('notes.txt').read()", "state")
    assert "Out: 'kept'" in result.content


async def test_last_expression_value_and_stdout(interp: CodeInterpreter) -> None:
    result = await run(interp, "print('hello')\n[i * i for i in range(4)]")
    assert result.content == "stdout:\nhello\nOut: [0, 1, 4, 9]"
    result = await run(interp, "y = 3\nNone")
    assert result.content == "(no output)"
    result = await run(interp, "y")
    assert result.content == "Out: 3"


async def test_errors_come_back_as_tracebacks_from_the_cell(interp: CodeInterpreter) -> None:
    result = await run(interp, "def f():\n    return 1 / 0\nf()")
    assert result.error
    assert "ZeroDivisionError: division by zero" in result.content
    assert 'File "<cell>"' in result.content
    assert "<string>" not in result.content
    result = await run(interp, "def broken(:")
    assert result.error and "SyntaxError" in result.content
    assert (await run(interp, "1 + 1")).content == "Out: 2"


async def test_matplotlib_plot_returns_png_image(interp: CodeInterpreter) -> None:
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('t')\nplt.show()"
    result = await run(interp, code, "plots")
    assert not result.error, result.content
    assert len(result.images) == 1
    header, data = result.images[0].split(",", 1)
    assert header == "data:image/png;base64"
    assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "image" in result.content
    # figures are closed after being returned: the next call has none
    assert (await run(interp, "plt.get_fignums()", "plots")).content == "Out: []"


async def test_pandas_and_numpy_work(interp: CodeInterpreter) -> None:
    code = (
        "import numpy as np, pandas as pd\n"
        "df = pd.DataFrame({'a': np.arange(5), 'b': np.arange(5) ** 2})\n"
        "int(df['b'].sum()), df.shape"
    )
    result = await run(interp, code)
    assert not result.error, result.content
    assert "Out: (30, (5, 2))" in result.content


async def test_created_files_are_listed_with_host_paths(interp: CodeInterpreter) -> None:
    code = (
        "import pandas as pd\npd.DataFrame({'v': [1, 2]}).to_csv('table.csv', index=False)\n"
        "import os; os.mkdir('sub')\nopen('sub/a.txt', 'w').write('a')"
    )
    result = await run(interp, code, "files")
    names = sorted(Path(p).name for p in result.files)
    assert names == ["a.txt", "table.csv"]
    table = next(Path(p) for p in result.files if p.endswith("table.csv"))
    assert table.read_text().splitlines() == ["v", "1", "2"]
    assert "Files created: " in result.content and "table.csv" in result.content
    # unchanged files are not listed again
    assert (await run(interp, "1", "files")).files == []


async def test_attachments_are_copied_into_the_work_folder(interp: CodeInterpreter, tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("x,y\n1,2\n3,4\n")
    result = await run(
        interp, "import pandas as pd\nint(pd.read_csv('data.csv')['y'].sum())", "att", attachments=[data]
    )
    assert "Out: 6" in result.content, result.content
    assert result.files == []  # an attachment is input, not output
    # the code's edits of its copy persist while the attachment is unchanged; a changed one is copied again
    await run(interp, "open('data.csv', 'a').write('5,6\\n')", "att", attachments=[data])
    result = await run(interp, "len(open('data.csv').read().splitlines())", "att", attachments=[data])
    assert result.content == "Out: 4"
    data.write_text("x,y\n1,100\n")
    result = await run(interp, "open('data.csv').read()", "att", attachments=[data])
    assert result.content == "Out: 'x,y\\n1,100\\n'"


async def test_conversations_have_separate_sessions(interp: CodeInterpreter) -> None:
    await run(interp, "secret_a = 1\nopen('only_a.txt', 'w').write('a')", "conv-a")
    result = await run(interp, "import os\nprint('secret_a' in globals(), os.path.exists('only_a.txt'))", "conv-b")
    assert "False False" in result.content


async def test_output_is_capped_for_the_model(interp: CodeInterpreter) -> None:
    result = await run(interp, "for i in range(20000): print('line', i)")
    assert len(result.content) <= CONTENT_CAP + 200
    assert "dropped" in result.content or "cut" in result.content


async def test_runs_through_the_registry(interp: CodeInterpreter) -> None:
    registry = ToolRegistry([interp])
    call = ToolCall(id="1", name="code_interpreter", arguments=json.dumps({"code": "6 * 7"}))
    result = await registry.execute(call, ToolContext(conversation_id="reg"))
    assert result.content == "Out: 42"
    assert "code_interpreter" in registry.names()
    bad = await registry.execute(ToolCall(id="2", name="code_interpreter", arguments="{}"), ToolContext())
    assert bad.error and bad.content == "Error: invalid arguments for code_interpreter: 'code' is a required property"


async def test_idle_session_is_reclaimed_and_says_so() -> None:
    tool = CodeInterpreter(limits=Limits(timeout=10), idle_timeout=0.5)
    try:
        await run(tool, "x = 5\nopen('keep.txt', 'w').write('k')", "idle")
        assert tool.manager.session_alive("idle")
        deadline = time.monotonic() + 15
        while tool.manager.session_alive("idle") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not tool.manager.session_alive("idle")
        result = await run(tool, "print(open('keep.txt').read())\nx", "idle")
        assert "NameError" in result.content
        assert "idle" in result.content and "variables" in result.content
        assert "stdout:\nk" in result.content  # files survive the reclaim
    finally:
        tool.close()


async def test_missing_bwrap_refuses_with_install_hint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sandbox, "BWRAP_PATH", str(tmp_path / "no-such-bwrap"))
    marker = tmp_path / "ran"
    tool = CodeInterpreter()
    try:
        result = await run(tool, f"open({str(marker)!r}, 'w').write('x')")
        assert result.error
        assert "apt-get install bubblewrap" in result.content
        assert not marker.exists()
        with pytest.raises(sandbox.SandboxUnavailable):
            tool.manager.execute("x", "1")
    finally:
        tool.close()


async def test_shutdown_all_kills_sessions_and_removes_work_folders() -> None:
    tool = CodeInterpreter(limits=Limits(timeout=10))
    await run(tool, "open('f.txt', 'w').write('1')", "bye")
    workdir = tool.manager.workdir_for("bye")
    assert workdir.is_dir() and tool.manager.session_alive("bye")
    shutdown_all()
    assert not tool.manager.session_alive("bye")
    assert not workdir.exists()


def test_sessions_outlive_the_event_loop_and_thread_that_started_them() -> None:
    # `lector chat` may run each turn in its own asyncio.run(); worker threads come and go
    import asyncio
    import threading

    tool = CodeInterpreter(limits=Limits(timeout=10))
    try:
        asyncio.run(run(tool, "kept = 'across loops'", "loops"))
        thread = threading.Thread(target=tool.manager.execute, args=("threads", "kept = 'across threads'"))
        thread.start()
        thread.join()
        time.sleep(0.5)
        assert asyncio.run(run(tool, "kept", "loops")).content == "Out: 'across loops'"
        assert tool.manager.execute("threads", "kept").value == "'across threads'"
    finally:
        tool.close()


async def test_unicode_control_characters_and_lone_surrogates_survive(interp: CodeInterpreter) -> None:
    result = await run(interp, "print('héllo \\u2028 \\x00 \\\\ \"q\" 日本')\n'\\udcff' + 'x'")
    assert not result.error, result.content
    assert 'héllo \u2028 \x00 \\ "q" 日本' in result.content
    assert "Out: '\\udcffx'" in result.content  # repr escapes it; nothing breaks on the way out
    result = await run(interp, "print('\\udcff')")
    assert "\ufffd" in result.content
    result = await run(interp, "exit(3)")
    assert "SystemExit: 3" in result.content


def test_least_recently_used_session_is_evicted_beyond_the_cap() -> None:
    manager = SessionManager(Limits(timeout=10), max_sessions=2, prewarm=False)
    try:
        for key in ("one", "two", "three"):
            assert manager.execute(key, f"name = {key!r}").error is None
        assert not manager.session_alive("one") and manager.session_alive("three")
        result = manager.execute("one", "name")
        assert "NameError" in (result.error or "")
        assert any("least recently used" in note for note in result.notes)
        assert manager.execute("three", "name").value == "'three'"
    finally:
        manager.close()


def test_conversation_ids_that_look_alike_get_distinct_folders() -> None:
    manager = SessionManager(prewarm=False)
    try:
        folders = {manager.workdir_for(k) for k in ("a/b", "a_b", "a b", "../x", "é")}
        assert len(folders) == 5
        assert all(f.parent == manager.workroot for f in folders)
    finally:
        manager.close()
