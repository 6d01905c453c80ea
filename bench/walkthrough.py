"""A new user's first session, timed: `lector serve` (a real HTTP server on the REAL default model) driven in
Chromium through the steps a person takes, with the time to the first visible feedback and to the answer.

Steps: open the page; ask a calculator question (the first answer also waits for the model to load); upload the
shipped sample document and ask about it at Auto; ask at Level 2 ("careful reading"); ask a compound question; ask
for a plot; open the page with a wrong token; stop the server and send a message.

Per step it prints: the first status the page showed (its own "Sending your question…" counts), the first step
the server named (a tool, a level, a passage; not "Waiting for the model"), the first answer text,
the finished answer, and a screenshot. A step that runs past its limit is stopped from the page (what Stop
keeps is shown in its screenshot). Run it alone on the machine (it loads the model):

    flock /tmp/lector-model.lock .venv/bin/python -m bench.walkthrough [--shots DIR] [--budget 540]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "beacon-manual.md"
CHROMIUM = os.environ.get("LECTOR_CHROMIUM", "/usr/bin/chromium")
# What the page shows before the server has said what it is doing: its own first line, and the model's wait.
NOT_A_STEP = ("Sending your question", "Waiting for the model", "Loading the model")

# In the page: every change of the live status line, the first answer text and each finished answer, timed.
RECORDER = """(() => {
  window.__marks = [];
  let last = '';
  const mark = (kind, text) => window.__marks.push({ t: performance.now(), kind, text });
  new MutationObserver(() => {
    const live = document.querySelector('.live-status');
    const now = live ? live.textContent.split(' · ')[0] : '';
    if (now && now !== last) mark('status', now);
    last = now;
    const answers = document.querySelectorAll('.msg.assistant');
    const answer = answers[answers.length - 1];
    const text = answer && answer.querySelector('.text');
    if (text && text.textContent.trim() && !answer.dataset.seen) { answer.dataset.seen = '1'; mark('text', ''); }
  }).observe(document, { subtree: true, childList: true, characterData: true });
})();"""

SEND = """(text) => {
  const t = performance.now();
  document.querySelector('#input').value = text;
  document.querySelector('#composer').requestSubmit();
  return t;
}"""


# How many answers have ended (with their usage line, or with an error).
ENDED = (
    "() => [...document.querySelectorAll('.msg.assistant')]"
    ".filter((m) => m.querySelector('.usage, .error-note')).length"
)


@dataclass
class Step:
    name: str
    feedback_s: float | None = None  # first status shown in the page
    server_s: float | None = None  # first step the server named (a tool, a level, a passage), or the first text
    text_s: float | None = None  # first answer text
    done_s: float | None = None  # the finished answer (or what the step waits for)
    shot: str = ""
    note: str = ""
    statuses: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def lector_serve(port: int, token: str, data: Path, log: Path, model: str | None) -> Iterator[subprocess.Popen[bytes]]:
    """`lector serve` as a person starts it (on the default model unless `model`), in its own data folder."""
    lector = Path(sys.executable).parent / "lector"
    command = [str(lector), "serve", "--port", str(port), "--token", token, "--data-dir", str(data)]
    command += ["--model", model] if model else []
    with log.open("wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"lector serve did not start; see {log}")
        yield server
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)


class Walk:
    def __init__(self, page: Any, shots: Path, deadline: float) -> None:
        self.page = page
        self.shots = shots
        self.deadline = deadline
        self.steps: list[Step] = []

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def shot(self, step: Step, name: str) -> None:
        self.page.evaluate("document.querySelector('#messages').scrollTop = 1e9")
        path = self.shots / f"{len(self.steps) + 1:02d}-{name}.png"
        self.page.screenshot(path=str(path))
        step.shot = str(path)

    def ask(self, name: str, question: str, limit: float, expect: str = "") -> Step:
        """Send `question` and time it to the finished answer; past `limit` (or the run's budget) press Stop."""
        page, step = self.page, Step(name)
        answers = page.evaluate(f"({ENDED})()")
        page.evaluate("window.__marks = []")
        t0 = page.evaluate(SEND, question)
        wait_s = max(5.0, min(limit, self.left() - 20))
        finished = f"() => ({ENDED})() > {answers} && !document.querySelector('.live-status')"
        try:
            page.wait_for_function(finished, timeout=wait_s * 1000, polling=100)
        except Exception:  # noqa: BLE001 -- Playwright's TimeoutError: stop it as a person would
            step.note = f"stopped at {wait_s:.0f} s"
            page.click("#stop")
            page.wait_for_function(finished, timeout=60_000, polling=100)
        self.timed(step, t0)
        answer = page.locator(".msg.assistant").last.inner_text()
        if expect and expect.lower() not in answer.lower():
            step.note = (step.note + "; " if step.note else "") + f"answer lacks {expect!r}"
        self.shot(step, name.split()[0].lower())
        self.steps.append(step)
        return step

    def timed(self, step: Step, t0: float) -> None:
        marks = self.page.evaluate("window.__marks")
        for m in marks:
            at = (m["t"] - t0) / 1000
            if m["kind"] == "status":
                step.statuses.append(m["text"])
                step.feedback_s = at if step.feedback_s is None else step.feedback_s
                if not m["text"].startswith(NOT_A_STEP) and step.server_s is None:
                    step.server_s = at
            elif m["kind"] == "text" and step.text_s is None:
                step.text_s = at
        done = self.page.evaluate("performance.now()")
        step.done_s = (done - t0) / 1000
        if step.text_s is not None:
            step.server_s = step.text_s if step.server_s is None else min(step.server_s, step.text_s)

    def open_page(self, base: str, token: str) -> None:
        step = Step("Open the page")
        started = time.monotonic()
        self.page.goto(f"{base}/?token={token}")
        self.page.wait_for_selector("#input")
        step.feedback_s = step.done_s = time.monotonic() - started
        status = httpx.get(f"{base}/api/status", headers={"Authorization": f"Bearer {token}"}).json()
        step.note = f"model {status['model']['state']} when the page opened"
        self.shot(step, "open")
        self.steps.append(step)

    def upload(self, path: Path) -> None:
        step = Step(f"Upload {path.name}")
        started = time.monotonic()
        self.page.set_input_files("#file", str(path))
        self.page.wait_for_selector(".doc[data-status]", timeout=10_000)
        step.feedback_s = time.monotonic() - started
        self.page.wait_for_selector(".doc[data-status=ready], .doc[data-status=error]", timeout=60_000)
        step.done_s = time.monotonic() - started
        step.note = self.page.locator(".doc").last.inner_text().replace("\n", " ")
        self.shot(step, "upload")
        self.steps.append(step)

    def set_level(self, value: str) -> None:
        self.page.click("#open-settings")
        self.page.select_option("#level", value)
        self.page.click("#settings-done")

    def wrong_token(self, browser: Any, base: str) -> None:
        step = Step("Open with a wrong token")
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        tab = context.new_page()
        started = time.monotonic()
        tab.goto(f"{base}/?token=not-the-token")
        tab.wait_for_selector("#token-dialog[open]", timeout=10_000)
        tab.wait_for_selector("#token-error:has-text('not accepted')", timeout=10_000)
        step.feedback_s = step.done_s = time.monotonic() - started
        step.note = "the token form, not JSON" if "{" not in tab.inner_text("body") else "JSON shown"
        path = self.shots / f"{len(self.steps) + 1:02d}-wrong-token.png"
        tab.screenshot(path=str(path))
        step.shot = str(path)
        context.close()
        self.steps.append(step)

    def server_down(self, server: subprocess.Popen[bytes]) -> None:
        step = Step("Send with the server down")
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(15)
        text = "Is anyone there?"
        started = time.monotonic()
        self.page.evaluate(SEND, text)
        self.page.wait_for_selector("#banner:not([hidden])", timeout=30_000)
        step.feedback_s = step.done_s = time.monotonic() - started
        kept = self.page.input_value("#input") == text
        step.note = f"banner: {self.page.inner_text('#banner-text')!r}; message {'kept' if kept else 'LOST'}"
        self.shot(step, "server-down")
        self.steps.append(step)


def seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} s"


def table(steps: list[Step]) -> str:
    head = "| step | first feedback | first step named | first answer text | answer | screenshot | note |"
    rows = [head, "| --- | --- | --- | --- | --- | --- | --- |"]
    for s in steps:
        cells = [s.name, seconds(s.feedback_s), seconds(s.server_s), seconds(s.text_s), seconds(s.done_s)]
        rows.append("| " + " | ".join([*cells, s.shot, s.note.replace("|", "/")]) + " |")
    return "\n".join(rows)


def statuses(steps: list[Step]) -> str:
    lines = []
    for s in steps:
        if s.statuses:
            lines.append(f"- {s.name}: " + " → ".join(dict.fromkeys(s.statuses)))
    return "\n".join(lines)


def walk(shots: Path, budget: float, keep: bool, model: str | None) -> list[Step]:
    from playwright.sync_api import sync_playwright

    shots.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="lector-walk-"))
    port, token = free_port(), secrets.token_urlsafe(16)
    base = f"http://127.0.0.1:{port}"
    limits = {"calc": 120.0, "auto": 120.0, "level2": 180.0, "compound": 150.0, "plot": 120.0}
    with lector_serve(port, token, data / "data", data / "serve.log", model) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
        page.add_init_script(RECORDER)
        user = Walk(page, shots, time.monotonic() + budget)
        try:
            user.open_page(base, token)
            user.ask("Calculator question (first answer)", "What is 1234 * 5678?", limits["calc"], "7006652")
            user.upload(SAMPLE)
            user.ask("Sample document at Auto", "How do I reset the beacon?", limits["auto"], "10 seconds")
            user.set_level("2")
            user.ask("Level 2 question", "How often should the solar panel be cleaned?", limits["level2"], "3 months")
            user.set_level("auto")
            compound = "What is the part number of the battery pack, and how much does it weigh?"
            user.ask("Compound question", compound, limits["compound"], "1.8")
            if user.left() > 60:
                page.click("#new-session")
                user.ask("Plot request", "Plot y = x squared for x from 0 to 10.", limits["plot"])
            user.wrong_token(browser, base)
            user.server_down(server)
        finally:
            browser.close()
    if keep:
        print(f"server data and log kept in {data}", file=sys.stderr)
    else:
        shutil.rmtree(data, ignore_errors=True)
    return user.steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shots", type=Path, default=Path("/tmp/lector-walkthrough"), help="screenshot folder")
    parser.add_argument("--budget", type=float, default=540.0, help="seconds for the whole walk (steps are stopped)")
    parser.add_argument("--keep", action="store_true", help="keep the server's data folder and log")
    parser.add_argument("--model", default=None, help="another model spec (a dry run: openai:http://127.0.0.1:9#x)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    steps = walk(args.shots, args.budget, args.keep, args.model)
    print(table(steps))
    print()
    print("What the live status line said, in order:")
    print(statuses(steps))
    model = args.model or "the default model"
    print(f"\n(whole walk {time.monotonic() - started:.0f} s, {model}, screenshots in {args.shots})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
