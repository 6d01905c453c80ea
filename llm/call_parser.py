"""Prompt-based function calling, coming out: finding the calls in a model's text.

One left-to-right scanner (`StreamingToolCallParser`) finds calls in the forms real models write:

- `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, one block per call (a missing
  closing tag is tolerated);
- a JSON object (or a list of them) in a fenced block: ```json, ```tool_call, or plain ```;
- a bare JSON object (or list) as the start of the reply; and, when tools are given, an object
  `{"name": "<a known tool>", ...}` in the middle of the text;
- Qwen's `✿FUNCTION✿: name` / `✿ARGS✿: {...}` markers (✿RESULT✿ or ✿RETURN✿ ends the reply);
- Qwen3-Coder's `<tool_call><function=name><parameter=key>value</parameter></function></tool_call>`.

A `<tool_response>` (like ✿RESULT✿) means the model started imagining results: the rest of
the reply is dropped. Pass STOP_WORDS as stop strings to save generating it.

Parallel calls come as several `<tool_call>` blocks, a JSON list, or several objects one after another
(in one block, one fence or bare). Call objects may be `{"name", "arguments"}`, `{"name", "parameters"}`
or `{"function": {...}}`, with arguments as an object or as a JSON string; damaged JSON is repaired
(llm.json_repair). Not calls: a tool's definition echoed back (`parameters` holding a JSON schema), and
an object naming its function twice (both are reported inside `<tool_call>`). Arguments come out valid
Unicode, with values converted to the types the tool's schema declares where that is lossless
(llm.arg_coercion); a name longer than MAX_NAME is refused.
Anything inside `<think>...</think>` is dropped. When `tools` is given, JSON in a fenced block
or a bare object whose name is not a known tool is not a call (it is JSON the user asked for);
a `<tool_call>` or ✿FUNCTION✿ block with an unknown name is still reported as a call.

Visible text: everything outside calls and think blocks, with leading and trailing whitespace
removed. A call that cannot be understood becomes an `error` message, never an exception.
`parse_tool_calls(text)` is the streaming parser fed the whole text at once, so streamed and
whole-text parsing agree (one documented exception: a `</think>` with no opening tag, where
the whole-text parse drops what came before it, which a stream has already shown).

The prompt that asks for these calls is built in llm.tool_prompt; tool_choice is enforced in
llm.forced_calls.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, Field

from lector.llm.arg_coercion import coerce_arguments
from lector.llm.json_repair import load_prefix
from lector.llm.messages import ToolCall, ToolSpec, new_call_id
from lector.llm.unicode import valid_json, valid_text

CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
RESPONSE_OPEN = "<tool_response>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
FENCE = "```"
QWEN_FUNCTION, QWEN_ARGS = "✿FUNCTION✿", "✿ARGS✿"
QWEN_STOPS = ("✿RESULT✿", "✿RETURN✿")
QWEN_MARKERS = (QWEN_FUNCTION, QWEN_ARGS, *QWEN_STOPS, "✿THOUGHT✿")
_QWEN_ENDERS = (QWEN_FUNCTION, *QWEN_STOPS)
CALL_FENCE_LANGS = frozenset(
    {
        "",
        "json",
        "json5",
        "jsonc",
        "tool_call",
        "tool_calls",
        "tool_code",
        "tool",
        "function",
        "functions",
        "function_call",
        "toolcall",
    }
)
MAX_FENCE_INFO = 40
MAX_CALLS = 64
FEED_CHUNK = 4096
MAX_NAME = 100
NAME_KEYS = ("name", "function", "tool", "tool_name")
ARG_KEYS = ("arguments", "parameters", "args", "tool_input", "input")
_LITERAL_MARKERS = (CALL_OPEN, RESPONSE_OPEN, THINK_OPEN, THINK_CLOSE, FENCE)
STOP_WORDS = [RESPONSE_OPEN, *QWEN_STOPS]
"""Stop strings for prompt-based calling: past them the model only imagines tool results."""
_MARKERS = re.compile("|".join(re.escape(m) for m in (*_LITERAL_MARKERS, "✿")))
_MARKERS_OR_BRACE = re.compile(_MARKERS.pattern + r"|\{")
_LEADING_WS = re.compile(r"\s*")
_QUOTE_OR_TAG = re.compile(r'["<]')
_QUOTE_OR_BACKSLASH = re.compile(r'["\\]')
_EMBEDDED_FULL = re.compile(r'\{\s*"(?:' + "|".join(NAME_KEYS) + r')"\s*:\s*"([^"\\\n]{1,100})"')
_EMBEDDED_PREFIX = re.compile(r'\{\s*(?:"(\w*)(?:(")\s*(?::\s*(?:"([^"\\\n]*))?)?)?)?')


class ParseResult(BaseModel):
    """Visible text outside any call (call markup removed), the calls found, and what went wrong."""

    text: str = ""
    calls: list[ToolCall] = Field(default_factory=list)
    error: str | None = None
    """One or more problems ('; '-joined) with calls that could not be understood, else None."""


class _Object(dict[str, Any]):
    """A JSON object that remembers the keys it had more than once (`json` keeps only the last value)."""

    duplicates: frozenset[str] = frozenset()


def _object_from_pairs(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object(pairs)
    if len(obj) < len(pairs):
        keys = [k for k, _ in pairs]
        obj.duplicates = frozenset(k for k in obj if keys.count(k) > 1)
    return obj


def _load(text: str, start: int = 0) -> tuple[Any, int]:
    """`load_prefix`, with objects that remember duplicated keys."""
    return load_prefix(text, start, object_pairs_hook=_object_from_pairs)


def _load_values(text: str) -> list[Any]:
    """Every JSON value in `text`, one after another (whitespace or commas between them). Raises ValueError
    when anything else is there."""
    values: list[Any] = []
    i = 0
    while len(values) <= MAX_CALLS:
        while i < len(text) and (text[i].isspace() or text[i] == ","):
            i += 1
        if i >= len(text):
            break
        value, i = _load(text, i)
        values.append(value)
    return values


def _is_schema(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "object" and isinstance(value.get("properties"), dict)


def _call_from_object(obj: Any) -> tuple[str, Any] | None:
    """(name, arguments) when `obj` has the shape of a call, else None. Arguments are not checked.

    Raises ValueError for what looks like a call but can't be one: a key that names the function (or holds
    its arguments) twice, or a tool's definition echoed back (its `parameters` a JSON schema).
    """
    if not isinstance(obj, dict):
        return None
    fn = obj.get("function")
    if isinstance(fn, dict) and isinstance(fn.get("name"), str):
        obj = fn
    name = next((obj[k] for k in NAME_KEYS if isinstance(obj.get(k), str) and obj[k].strip()), None)
    if name is None:
        return None
    twice = sorted(getattr(obj, "duplicates", frozenset()) & {*NAME_KEYS, *ARG_KEYS})
    if twice:
        raise ValueError(f'has the key "{twice[0]}" twice: write one {{"name": ..., "arguments": {{...}}}} per call')
    arg_key = next((k for k in ARG_KEYS if k in obj), None)
    if arg_key is None:
        extra = set(obj) - {*NAME_KEYS, "id", "type"}
        if extra:
            return None  # e.g. {"name": "Ada", "age": 36}: data, not a call
        return name.strip(), {}
    if arg_key == "parameters" and _is_schema(obj[arg_key]):
        raise ValueError(f"is the definition of {_shown(name)}, not a call: write its arguments, not its schema")
    return name.strip(), obj[arg_key]


def _calls_from_values(values: list[Any]) -> list[tuple[str, Any]] | None:
    """All calls in a series of objects or lists of objects; None unless every element is call-shaped.
    Raises ValueError as `_call_from_object` does."""
    items = [item for v in values for item in (v if isinstance(v, list) else [v])]
    if not items:
        return None
    calls = [_call_from_object(v) for v in items]
    if any(c is None for c in calls):
        return None
    return [c for c in calls if c is not None]


def _shown(name: str) -> str:
    """A name as an error message shows it: cut short when it is too long to be one."""
    return name if len(name) <= MAX_NAME else f"{name[:MAX_NAME]}... ({len(name)} characters)"


def _schema_of(tools: list[ToolSpec] | None, name: str) -> dict[str, Any] | None:
    return next((t.parameters for t in tools or [] if t.name == name), None)


def _normalize_arguments(args: Any, schema: dict[str, Any] | None = None) -> str:
    """The arguments as a compact JSON object string, valid Unicode, with values converted to the types
    `schema` declares where that is lossless. Raises ValueError with a readable reason."""
    if args is None or args == "":
        return "{}"
    if isinstance(args, str):
        try:
            args, _ = _load(args)
        except ValueError as exc:
            raise ValueError(f"its arguments string is not valid JSON: {exc}") from None
    if not isinstance(args, dict):
        raise ValueError(f"its arguments must be a JSON object, not {type(args).__name__}")
    return json.dumps(coerce_arguments(valid_json(args), schema), ensure_ascii=False)


def coerce_call(call: ToolCall, tools: list[ToolSpec] | None) -> ToolCall:
    """A call (from a server's native tool calls) with valid Unicode and arguments of the declared types;
    arguments that are not a JSON object are left for the tool's validation to report."""
    try:
        arguments = _normalize_arguments(call.arguments, _schema_of(tools, call.name))
    except ValueError:
        arguments = valid_text(call.arguments)
    return call.model_copy(update={"name": valid_text(call.name), "arguments": arguments})


def _known(name: str, tools: list[ToolSpec] | None) -> bool:
    return tools is None or any(t.name == name for t in tools)


# ---------------------------------------------------------------- the scanner


class StreamingToolCallParser:
    """Incremental call parser. `feed` returns text that is safe to show now; `finish` the rest.

    Text is held back as soon as something that may start a call (or a think block) appears:
    `<tool_call`, a code fence, `✿`, `<think>`, a `{`/`[` at the start of the reply, or (with
    tools) `{"name": "<known tool>"`. Text that turns out not to be a call is released, either
    as soon as that is certain or by `finish()`. `finish().text` is the visible text not yet
    returned by `feed` (so fed + finish().text == parse_tool_calls(whole).text), plus all calls.
    """

    def __init__(self, tools: list[ToolSpec] | None = None, thinking: bool = False) -> None:
        self.tools = tools
        self.calls: list[ToolCall] = []
        self.errors: list[str] = []
        self._buf = ""
        self._state = "think" if thinking else "text"
        self._scan_from = 0
        self._fence_header = ""
        self._json_depth = 0
        self._json_in_string = False
        self._json_escape = False
        self._shown_any = False
        self._pending_ws = ""
        self._markup_removed = False
        self._after_ws = ""
        self._qwen_args_at = -1
        self._attempts = 0
        self._finished = False

    # --- public API

    def feed(self, chunk: str) -> str:
        if self._finished or not chunk:
            return ""
        self._buf += chunk
        out: list[str] = []
        self._run(out, final=False)
        return "".join(out)

    def finish(self) -> ParseResult:
        out: list[str] = []
        if not self._finished:
            self._run(out, final=True)
            self._finished = True
        return ParseResult(text="".join(out), calls=list(self.calls), error="; ".join(self.errors) or None)

    # --- the state machine

    def _run(self, out: list[str], final: bool) -> None:
        while True:
            handler = getattr(self, f"_on_{self._state}")
            if not handler(out, final):
                return

    def _emit(self, out: list[str], text: str) -> None:
        """Show text, holding trailing whitespace back until something visible follows it.

        Where markup was cut out, the whitespace on both sides collapses to one gap (the one
        before it, else the one after it), whatever the chunking.
        """
        if not text:
            return
        if self._markup_removed:
            core = text.lstrip()
            self._after_ws += text[: len(text) - len(core)]
            if not core:
                return
            self._pending_ws = self._pending_ws or self._after_ws
            self._after_ws = ""
            self._markup_removed = False
            text = core
        stripped = text.rstrip()
        if not stripped:
            if self._shown_any:
                self._pending_ws += text
            return
        if not self._shown_any:
            stripped = stripped.lstrip()
            self._shown_any = True
        else:
            stripped = self._pending_ws + stripped
        out.append(stripped)
        self._pending_ws = text[len(text.rstrip()) :]

    def _consume(self, n: int) -> None:
        self._buf = self._buf[n:]
        self._scan_from = 0

    def _cut(self, n: int) -> None:
        """Consume `n` characters of markup (a call or a think block) that are not shown."""
        self._consume(n)
        self._markup_removed = True

    def _on_text(self, out: list[str], final: bool) -> bool:
        buf = self._buf
        at_start = not self._shown_any
        if at_start:
            lead = len(buf) - len(buf.lstrip())
            if lead < len(buf) and buf[lead] in "{[":
                self._consume(lead)
                self._start_json()
                return True
        idx, kind = self._next_marker(buf)
        if idx < 0:
            safe = len(buf) if final else len(buf) - _partial_marker_len(buf)
            self._emit(out, buf[:safe])
            self._consume(safe)
            return False
        if kind == "brace?":  # may start an embedded call: wait for enough text to decide
            verdict = self._embedded_call_start(buf[idx:], final)
            if verdict is None:
                self._emit(out, buf[:idx])
                self._consume(idx)
                return False
            if verdict is False:
                self._emit(out, buf[: idx + 1])
                self._consume(idx + 1)
                return True
            self._emit(out, buf[:idx])
            self._consume(idx)
            self._start_json()
            return True
        self._emit(out, buf[:idx])
        self._consume(idx)
        if kind == THINK_OPEN:
            self._consume(len(THINK_OPEN))
            self._state = "think"
        elif kind == THINK_CLOSE:  # a stray closing tag: drop it
            self._consume(len(THINK_CLOSE))
        elif kind == CALL_OPEN:
            self._consume(len(CALL_OPEN))
            self._json_in_string = self._json_escape = False
            self._state = "call"
        elif kind == RESPONSE_OPEN:  # the model imagining a result: the rest is not its reply
            self._state = "discard"
        elif kind == FENCE:
            self._consume(len(FENCE))
            self._state = "fence_header"
        else:  # a ✿ marker
            return self._on_qwen_marker(out, final)
        return True

    def _next_marker(self, buf: str) -> tuple[int, str]:
        m = (_MARKERS_OR_BRACE if self.tools else _MARKERS).search(buf)
        if m is None:
            return -1, ""
        return m.start(), "brace?" if m.group() == "{" else m.group()

    def _embedded_call_start(self, s: str, final: bool) -> bool | None:
        """Does `s` (from a '{') open a call to a known tool? None: can't tell yet."""
        full = _EMBEDDED_FULL.match(s)
        if full:
            return bool(self.tools) and _known(full.group(1), self.tools)
        if final or len(s) > 200:
            return False
        part = _EMBEDDED_PREFIX.fullmatch(s)
        if part is None:
            return False
        key, key_closed, name = part.group(1) or "", part.group(2), part.group(3)
        if key_closed and key not in NAME_KEYS or not any(k.startswith(key) for k in NAME_KEYS):
            return False
        if name is not None and not any(t.name.startswith(name) for t in self.tools or []):
            return False
        return None

    def _on_qwen_marker(self, out: list[str], final: bool) -> bool:
        buf = self._buf
        for marker in QWEN_MARKERS:
            if buf.startswith(marker):
                break
        else:
            if not final and any(m.startswith(buf[: len(m)]) and len(buf) < len(m) for m in QWEN_MARKERS):
                return False  # a marker still arriving
            self._emit(out, buf[:1])  # a lone ✿ is just text
            self._consume(1)
            return True
        self._consume(len(marker))
        if marker in QWEN_STOPS:
            self._state = "discard"
        elif marker == QWEN_FUNCTION:
            self._state = "qwen"
        return True

    def _on_discard(self, out: list[str], final: bool) -> bool:
        self._buf = ""
        return False

    def _on_think(self, out: list[str], final: bool) -> bool:
        i = self._buf.find(THINK_CLOSE, self._scan_from)
        if i < 0:
            if final:
                self._buf = ""
                return False
            keep = _partial_suffix(self._buf, THINK_CLOSE)
            self._buf = self._buf[len(self._buf) - keep :] if keep else ""
            return False
        self._cut(i + len(THINK_CLOSE))
        self._state = "text"
        return True

    def _find_close(self, marker: str, also: str | None = None) -> int:
        """Index of `marker` (or `also`) in the buffer, searching only text not searched before."""
        buf = self._buf
        i = buf.find(marker, self._scan_from)
        if also is not None:
            j = buf.find(also, self._scan_from)
            if j >= 0 and (i < 0 or j < i):
                i = j
        if i < 0:
            self._scan_from = max(0, len(buf) - max(len(marker), len(also or "")) + 1)
        return i

    def _find_call_end(self) -> int:
        """Where a call's body ends: at the next </tool_call> or <tool_call>, not counting those inside the
        strings of a JSON body; -1 if not yet."""
        buf = self._buf
        lead = _LEADING_WS.match(buf)
        first = lead.end() if lead else 0
        if first == len(buf):
            return -1
        if buf[first] not in "{[":
            return self._find_close(CALL_CLOSE, also=CALL_OPEN)
        i, in_str, esc = self._scan_from, self._json_in_string, self._json_escape
        n = len(buf)
        while i < n:
            if in_str:
                i, in_str, esc = _through_string(buf, i, esc)
                continue
            m = _QUOTE_OR_TAG.search(buf, i)
            i = n if m is None else m.start()
            if i == n:
                break
            if buf[i] == '"':
                in_str = True
            elif buf.startswith(CALL_CLOSE, i) or buf.startswith(CALL_OPEN, i):
                return i
            elif n - i < len(CALL_CLOSE) and _tag_arriving(buf[i:]):
                break  # a tag still arriving
            i += 1
        self._scan_from, self._json_in_string, self._json_escape = i, in_str, esc
        return -1

    def _on_call(self, out: list[str], final: bool) -> bool:
        i = self._find_call_end()
        if i < 0 and not final:
            return False
        if i < 0 and self._json_in_string:  # a string never closed: the first tag ends the call after all
            i = _find_any(self._buf, (CALL_CLOSE, CALL_OPEN), 0)
        body = self._buf if i < 0 else self._buf[:i]
        if i < 0:
            body = body[: len(body) - _partial_suffix(body, CALL_CLOSE)]
        self._add_calls_from_text(body, source="tool_call")
        if i >= 0 and self._buf.startswith(CALL_CLOSE, i):
            self._cut(i + len(CALL_CLOSE))
        else:
            self._cut(len(self._buf) if i < 0 else i)
        self._state = "text"
        return True

    def _on_fence_header(self, out: list[str], final: bool) -> bool:
        nl = self._buf.find("\n")
        if nl < 0 and not final and len(self._buf) <= MAX_FENCE_INFO:
            return False
        info = self._buf[: nl if nl >= 0 else len(self._buf)]
        lang = info.strip().lower()
        if nl >= 0 and lang in CALL_FENCE_LANGS:
            self._fence_header = FENCE + info + "\n"
            self._consume(nl + 1)
            self._state = "fence_hold"
        elif nl < 0 and final and lang in CALL_FENCE_LANGS:
            self._emit(out, FENCE + info)
            self._consume(len(info))
            self._state = "text"
        else:
            self._emit(out, FENCE)
            self._state = "code"
        return True

    def _on_code(self, out: list[str], final: bool) -> bool:
        """Inside a fence of another language (```python): shown as is, markers ignored."""
        i = self._buf.find(FENCE)
        if i < 0:
            safe = len(self._buf) if final else len(self._buf) - _partial_suffix(self._buf, FENCE)
            self._emit(out, self._buf[:safe])
            self._consume(safe)
            return False
        self._emit(out, self._buf[: i + len(FENCE)])
        self._consume(i + len(FENCE))
        self._state = "text"
        return True

    def _on_fence_hold(self, out: list[str], final: bool) -> bool:
        i = self._find_close(FENCE)
        if i < 0 and not final:
            return False
        body = self._buf if i < 0 else self._buf[:i]
        end = len(self._buf) if i < 0 else i + len(FENCE)
        if self._add_calls_from_fenced(body):
            self._cut(end)
        else:
            self._emit(out, self._fence_header + self._buf[:end])
            self._consume(end)
        self._state = "text"
        return True

    def _start_json(self) -> None:
        self._state = "json"
        self._json_depth = 0
        self._json_in_string = False
        self._json_escape = False
        self._scan_from = 0

    def _on_json(self, out: list[str], final: bool) -> bool:
        end = self._scan_json()
        if end < 0 and not final:
            return False
        segment = self._buf if end < 0 else self._buf[:end]
        if self._add_calls_from_json(segment):
            self._cut(len(segment))
        else:
            self._emit(out, segment)
            self._consume(len(segment))
        self._state = "text"
        return True

    def _scan_json(self) -> int:
        """Where the held JSON value ends (just past its closing bracket), or -1 if not yet."""
        buf = self._buf
        i = self._scan_from
        depth, in_str, esc = self._json_depth, self._json_in_string, self._json_escape
        while i < len(buf):
            ch = buf[i]
            i += 1
            if in_str:
                if esc:
                    esc = False
                elif ch == "\\":
                    esc = True
                elif ch == '"':
                    in_str = False
            elif ch == '"':
                in_str = True
            elif ch in "{[":
                depth += 1
            elif ch in "}]":
                depth -= 1
                if depth <= 0:
                    return i
        self._scan_from, self._json_depth, self._json_in_string, self._json_escape = i, depth, in_str, esc
        return -1

    def _on_qwen(self, out: list[str], final: bool) -> bool:
        """After ✿FUNCTION✿: the call runs to the next ✿FUNCTION✿/✿RESULT✿/✿RETURN✿ (or the end);
        its arguments follow the first ✿ARGS✿ before that."""
        buf = self._buf
        overlap = max(len(m) for m in QWEN_MARKERS) - 1
        end = -1
        if self._qwen_args_at < 0:
            start = self._scan_from
            args_at = buf.find(QWEN_ARGS, start)
            ender = _find_any(buf, _QWEN_ENDERS, start)
            if ender >= 0 and (args_at < 0 or ender < args_at):
                end = ender
            elif args_at >= 0:
                self._qwen_args_at = args_at
                self._scan_from = args_at + len(QWEN_ARGS)
            elif not final:
                self._scan_from = max(start, len(buf) - overlap)
                return False
            else:
                end = len(buf)
        if end < 0:
            ender = _find_any(buf, _QWEN_ENDERS, self._scan_from)
            if ender < 0 and not final:
                self._scan_from = max(self._scan_from, len(buf) - overlap)
                return False
            end = ender if ender >= 0 else len(buf)
        block = buf[:end]
        if end == len(buf):
            block = block[: len(block) - _partial_suffix_any(block, QWEN_MARKERS)]
        self._qwen_args_at = -1
        self._add_qwen_call(block, out)
        self._cut(end)
        self._state = "text"
        return True

    # --- turning held text into calls

    def _too_many(self) -> bool:
        self._attempts += 1
        if self._attempts == MAX_CALLS + 1:
            self.errors.append(f"more than {MAX_CALLS} tool calls in one reply; the rest were ignored")
        return self._attempts > MAX_CALLS

    def _record(self, name: str, args: Any) -> None:
        if self._too_many():
            return
        if len(name) > MAX_NAME:
            too_long = f"has a name longer than {MAX_NAME} characters: {_shown(name)}"
            self.errors.append(f"tool call {self._attempts} {too_long}")
            return
        name = valid_text(name)
        try:
            arguments = _normalize_arguments(args, _schema_of(self.tools, name))
        except ValueError as exc:
            self.errors.append(f"tool call {self._attempts} ({name}): {exc}")
            return
        self.calls.append(ToolCall(id=new_call_id(), name=name, arguments=arguments))

    def _fail(self, message: str) -> None:
        if self._too_many():
            return
        self.errors.append(f"tool call {self._attempts} {message}")

    def _load_or_fail(self, text: str, label: str) -> tuple[Any, int] | None:
        """The JSON value `text` starts with and where it ends; None, with the reason recorded, if it has none."""
        try:
            return _load(text)
        except ValueError as exc:
            self._fail(f"{label}is not valid JSON: {exc}")
            return None

    def _add_calls_from_text(self, body: str, source: str) -> None:
        """A <tool_call> body: always a call attempt; unknown names are still calls. It may hold several
        call objects (or lists of them) one after another."""
        body = _strip_inner_fence(body.strip())
        if not body:
            self._fail("is empty")
            return
        if body.startswith("<function="):
            self._add_xml_calls(body)
            return
        try:
            values = _load_values(body)
        except ValueError:  # damage after the first value is ignored, as a lone call's trailing text is
            loaded = self._load_or_fail(body, "")
            if loaded is None:
                return
            values = [loaded[0]]
        try:
            calls = _calls_from_values(values)
        except ValueError as exc:
            self._fail(str(exc))
            return
        if calls is None:
            self._fail('has no function name: expected {"name": ..., "arguments": {...}}')
            return
        for name, args in calls:
            self._record(name, args)

    def _add_xml_calls(self, body: str) -> None:
        """Qwen3-Coder's form: <function=NAME><parameter=KEY>VALUE</parameter>...</function>."""
        for fn in _XML_FUNCTION.finditer(body):
            name = fn.group(1).strip()
            types = _param_types(self.tools, name)
            args: dict[str, Any] = {}
            for param in _XML_PARAMETER.finditer(fn.group(2)):
                key, raw = param.group(1).strip(), param.group(2).removeprefix("\n").removesuffix("\n")
                args[key] = _xml_value(raw, types.get(key))
            self._record(name, args)

    def _add_calls_from_fenced(self, body: str) -> bool:
        """A fenced block: calls only when it parses to call-shaped JSON values (one or several, one after
        another) for known tools."""
        if not body.strip():
            return False
        try:
            _load(body)
        except ValueError:
            return self._damaged_known_call(body)
        try:
            values = _load_values(body)
        except ValueError:
            return False  # JSON and then other text: not a call
        return self._add_known_calls(values)

    def _damaged_known_call(self, body: str) -> bool:
        m = re.search(r'"(?:name|function)"\s*:\s*"([^"]{1,100})"', body)
        if m and re.search(r'"(?:arguments|parameters)"', body) and _known(m.group(1), self.tools):
            self._fail(f"({m.group(1)}) is not valid JSON")
            return True
        return False

    def _add_calls_from_json(self, segment: str) -> bool:
        try:
            value, _ = _load(segment)
        except ValueError:
            return False
        return self._add_known_calls([value])

    def _add_known_calls(self, values: list[Any]) -> bool:
        """Record the calls in JSON values when they are call-shaped and name only known tools."""
        try:
            calls = _calls_from_values(values)
        except ValueError:
            return False  # not usable as a call; outside a <tool_call> block it is shown as it is
        if calls is None or not all(_known(n, self.tools) for n, _ in calls):
            return False
        for name, args in calls:
            self._record(name, args)
        return True

    def _add_qwen_call(self, block: str, out: list[str]) -> None:
        args_at = block.find(QWEN_ARGS)
        head = block if args_at < 0 else block[:args_at]
        name = head.strip().lstrip(":").strip().splitlines()[0].strip() if head.strip(" :\n") else ""
        if not name:
            self._fail("(✿FUNCTION✿) has no function name")
            return
        if args_at < 0:
            self._record(name, {})
            return
        args_text = block[args_at + len(QWEN_ARGS) :].lstrip().removeprefix(":")
        if not args_text.strip():
            self._record(name, {})
            return
        loaded = self._load_or_fail(args_text, f"({_shown(name)}) ")
        if loaded is None:
            return
        value, end = loaded
        self._record(name, value if not isinstance(value, str) else args_text.strip())
        rest = args_text[end:]
        if rest.strip():
            self._emit(out, rest)


_XML_FUNCTION = re.compile(r"<function=([^>\n]{1,100})>(.*?)(?:</function>|\Z)", re.S)
_XML_PARAMETER = re.compile(r"<parameter=([^>\n]{1,100})>(.*?)(?:</parameter>|(?=<parameter=)|\Z)", re.S)


def _param_types(tools: list[ToolSpec] | None, name: str) -> dict[str, Any]:
    spec = next((t for t in tools or [] if t.name == name), None)
    props = (spec.parameters.get("properties") if spec else None) or {}
    return {k: v.get("type") for k, v in props.items() if isinstance(v, dict)}


def _xml_value(raw: str, declared: Any) -> Any:
    """A parameter's text as the type its schema declares (JSON when it parses, else the text)."""
    if declared == "string":
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _strip_inner_fence(body: str) -> str:
    if body.startswith(FENCE):
        nl = body.find("\n")
        body = body[nl + 1 :] if nl >= 0 else ""
        if body.rstrip().endswith(FENCE):
            body = body.rstrip()[: -len(FENCE)]
    return body.strip()


def _partial_suffix(text: str, marker: str) -> int:
    """Length of the longest end of `text` that is a proper beginning of `marker`."""
    for n in range(min(len(marker) - 1, len(text)), 0, -1):
        if marker.startswith(text[-n:]):
            return n
    return 0


def _through_string(buf: str, i: int, escaped: bool) -> tuple[int, bool, bool]:
    """Scan a JSON string from `i`: (where scanning stopped, still inside the string, a backslash pending)."""
    if escaped:
        return i + 1, True, False
    m = _QUOTE_OR_BACKSLASH.search(buf, i)
    if m is None:
        return len(buf), True, False
    return m.end(), m.group() == "\\", m.group() == "\\"


def _tag_arriving(rest: str) -> bool:
    return CALL_CLOSE.startswith(rest) or CALL_OPEN.startswith(rest)


def _find_any(text: str, markers: tuple[str, ...], start: int) -> int:
    found = [i for i in (text.find(m, start) for m in markers) if i >= 0]
    return min(found) if found else -1


def _partial_suffix_any(text: str, markers: tuple[str, ...]) -> int:
    return max((_partial_suffix(text, m) for m in markers), default=0)


def _partial_marker_len(buf: str) -> int:
    """How much of the end of `buf` must wait because a marker may be arriving."""
    n = _partial_suffix_any(buf, _LITERAL_MARKERS)
    return n


def parse_tool_calls(text: str, tools: list[ToolSpec] | None = None) -> ParseResult:
    """Calls and visible text in a whole reply. Never raises."""
    close = text.find(THINK_CLOSE)
    opened = text.find(THINK_OPEN)
    thinking = close >= 0 and (opened < 0 or opened > close)
    parser = StreamingToolCallParser(tools, thinking=thinking)
    # fed in pieces so the buffer stays small: the result does not depend on the chunking
    shown = "".join(parser.feed(text[i : i + FEED_CHUNK]) for i in range(0, len(text), FEED_CHUNK))
    rest = parser.finish()
    return ParseResult(text=shown + rest.text, calls=rest.calls, error=rest.error)
