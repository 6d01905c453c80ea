"""What one call of the code interpreter produced, and the text the model reads of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lector.llm.unicode import valid_text

CONTENT_CAP = 6000
"""Characters of text the model gets back from one call."""
LISTED_FILES = 20


@dataclass
class Execution:
    """What one call produced."""

    stdout: str = ""
    stderr: str = ""
    value: str | None = None
    error: str | None = None
    images: list[str] = field(default_factory=list)
    """PNG data URLs."""
    created: list[tuple[str, int]] = field(default_factory=list)
    """Files created or changed in the work folder: (path relative to it, size)."""
    files: list[Path] = field(default_factory=list)
    """Host copies of the created files, out of the sandbox's reach (for the UI)."""
    notes: list[str] = field(default_factory=list)
    dropped_output: int = 0
    timed_out: bool = False
    session_lost: bool = False
    """The worker died or was killed: variables are gone (files in the work folder remain)."""
    elapsed: float = 0.0

    @classmethod
    def from_answer(cls, answer: dict[str, Any], raw: bytes, raw_dropped: int) -> Execution:
        """The kernel's answer, with the raw output the sandbox wrote meanwhile added to stderr."""
        stderr = clean(answer.get("stderr"))
        raw_text = clean(raw.decode("utf-8", "replace"))
        if raw_text:
            stderr = (stderr + ("\n" if stderr else "") + raw_text).strip("\n")
        dropped = sum(int(answer.get(k) or 0) for k in ("stdout_dropped", "stderr_dropped")) + raw_dropped
        return cls(
            stdout=clean(answer.get("stdout")),
            stderr=stderr,
            value=clean(answer.get("value")) if answer.get("value") is not None else None,
            error=clean(answer.get("error")) or None,
            images=[f"data:image/png;base64,{b64}" for b64 in answer.get("images") or [] if isinstance(b64, str)],
            dropped_output=dropped,
            timed_out=bool(answer.get("timed_out")),
        )

    def add_error(self, message: str) -> None:
        self.error = f"{self.error}\n{message}" if self.error else message

    def content(self, cap: int = CONTENT_CAP) -> str:
        parts: list[str] = list(self.notes)
        if self.stdout:
            parts.append(f"stdout:\n{self.stdout.rstrip()}")
        if self.stderr:
            parts.append(f"stderr:\n{self.stderr.rstrip()}")
        if self.dropped_output:
            parts.append(f"[{self.dropped_output} more characters of output were dropped]")
        if self.value is not None:
            parts.append(f"Out: {self.value}")
        if self.error:
            parts.append(f"Error:\n{self.error}")
        if self.created:
            more = f" and {len(self.created) - LISTED_FILES} more" if len(self.created) > LISTED_FILES else ""
            listed = ", ".join(_describe_file(*c) for c in self.created[:LISTED_FILES])
            parts.append(f"Files created: {listed}{more}")
        if self.images:
            parts.append(f"[{len(self.images)} image(s) shown to the user]")
        text = "\n".join(parts) if parts else "(no output)"
        if len(text) > cap:
            head = text[: cap * 2 // 3]
            tail = text[-cap // 3 :]
            text = f"{head}\n[... {len(text) - len(head) - len(tail)} characters cut ...]\n{tail}"
        return text


def clean(text: object) -> str:
    """A string safe to pass on: each lone surrogate from the sandbox becomes one U+FFFD."""
    if not text:
        return ""
    return valid_text(str(text))


def _describe_file(rel: str, size: int) -> str:
    return f"{rel} ({size} bytes)" if size < 10_000 else f"{rel} ({size // 1024} KiB)"
