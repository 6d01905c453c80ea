"""A backend for any OpenAI-compatible chat server (vLLM, llama.cpp's llama-server, Ollama, OpenAI).

Streams Server-Sent Events from `/chat/completions`. Tool calls go through the server's native `tools`
field when it has one; otherwise (or when the server rejects `tools`) calls go through the prompt-based
pipeline of `llm.prompt_calling`, the same as every backend without native calls. The wire format is
`llm.openai_wire`'s.

Failures map to the errors in `llm.errors`: a server that is not there is a BackendUnavailableError,
a prompt that does not fit is a ContextOverflowError. 429, 5xx and connection failures are retried
with exponential backoff and jitter, but never once some output has been streamed to the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import json
import logging
import math
import os
import random
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from lector.llm import openai_wire, prompt_calling
from lector.llm.backend import Backend, ChatOptions, Delta, Usage
from lector.llm.embedded import prompt_read  # llama.cpp's `prompt_progress` reports, as the embedded engine gets them
from lector.llm.errors import BackendUnavailableError, ContextOverflowError, LLMError, ModelNotFoundError
from lector.llm.messages import Message, ToolCall, ToolSpec, to_openai

log = logging.getLogger(__name__)

API_KEY_ENV = "LECTOR_OPENAI_API_KEY"
DEFAULT_CONTEXT_SIZE = 8192
CHARS_PER_TOKEN = 3.5
"""Used only when the server cannot tokenize: BPE tokenizers average about 4 characters per token on
English prose and fewer on code, so 3.5 errs towards over-counting, which keeps prompt budgets safe."""

_CONTEXT_OVERFLOW_MARKERS = (
    "maximum context length",  # vLLM and OpenAI
    "context_length_exceeded",  # OpenAI error code
    "exceeds the available context size",  # llama.cpp
    "exceed_context_size",  # llama.cpp error type
    "longer than the maximum model length",  # vLLM V1 engine
    "context window",
    "prompt is too long",
)
_RETRY_STATUSES = {429, 500, 502, 503, 504}
PROGRESS_BATCH = 512
"""A prompt left to read of up to this many tokens is read in one go (llama.cpp's default micro-batch), so its
progress is not shown."""
_TOKEN_CACHE_SIZE = 4096


class _Retryable(Exception):
    """A failed attempt that may be tried again (before any output was streamed)."""

    def __init__(self, error: LLMError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class _RejectsTools(Exception):
    """The server refused the `tools` field; switch to prompt-based calling."""


def _normalise_base_url(base_url: str) -> str:
    """`http://host:8000` becomes `http://host:8000/v1`; a URL with a path is kept as given."""
    url = base_url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    if urlsplit(url).path in ("", "/"):
        url += "/v1"
    return url


def _error_message(body: bytes | str) -> str:
    """The human part of an error body: OpenAI's {"error": {"message"}}, llama.cpp's, vLLM's or plain text."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:500]
    return _message_from_json(data) or text.strip()[:500]


def _message_from_json(data: Any) -> str:
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            parts = [str(err.get(k)) for k in ("message", "code", "type") if err.get(k)]
            return " | ".join(parts) if parts else json.dumps(data)[:500]
        if isinstance(err, str):
            detail = data.get("message") or data.get("detail")
            return f"{err}: {detail}" if detail else err
        if "detail" in data:
            return str(data["detail"])
    return json.dumps(data)[:500] if data is not None else ""


def _is_context_overflow(message: str) -> bool:
    lower = message.lower()
    return any(marker in lower for marker in _CONTEXT_OVERFLOW_MARKERS)


def _parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _connect_failure(exc: BaseException) -> str:
    """Why a connect failed, from the OS error under httpx's ("All connection attempts failed")."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or "refused" in str(seen).lower():
            return "connection refused"
        if isinstance(seen, socket.gaierror):
            return f"host name not found: {seen}"
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__


class OpenAIBackend(Backend):
    """A model behind an OpenAI-compatible HTTP server.

    `base_url` is the API root (`http://host:8000/v1`; a bare `http://host:8000` gets `/v1` added).
    `native_tools`: True sends `tools` to the server, False always uses prompt-based calling, None
    (the default) tries native first and switches to prompt-based for good if the server rejects `tools`.
    `timeout` is the read timeout in seconds (the longest silence between streamed bytes);
    `connect_timeout` bounds the TCP connect. `api_key` defaults to $LECTOR_OPENAI_API_KEY.
    `model="default"` (or empty) asks the server's /models for the model it serves.
    """

    def __init__(
        self,
        base_url: str,
        model: str = "default",
        api_key: str | None = None,
        native_tools: bool | None = None,
        timeout: float = 120.0,
        connect_timeout: float = 5.0,
        max_retries: int = 3,
        context_size: int | None = None,
        parallel_slots: int = 8,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.base_url = _normalise_base_url(base_url)
        self.root_url = self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url
        self.model = model if model not in ("", "default") else ""
        self.name = f"openai:{self.model or 'default'}@{self.base_url}"
        self.api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        self._native_mode: bool | None = native_tools
        self.native_tools = native_tools is not False
        self.timeout = httpx.Timeout(connect=connect_timeout, read=timeout, write=timeout, pool=None)
        self.max_retries = max(0, max_retries)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._context_from_user = context_size is not None
        self.context_size = context_size or DEFAULT_CONTEXT_SIZE
        self.parallel_slots = parallel_slots
        self._headers = {"Accept": "text/event-stream", **(headers or {})}
        if self.api_key:
            self._headers["Authorization"] = f"Bearer {self.api_key}"
        self._ssl = ssl.create_default_context()
        # Proxy variables are for the outside world; a loopback server is reached directly.
        self._trust_env = urlsplit(self.base_url).hostname not in ("127.0.0.1", "localhost", "::1")
        self._probed = False
        self.llamacpp = False
        """Whether the server is llama.cpp's (its /models says `owned_by: llamacpp`): then each stream asks for
        `return_progress` and reports how far the prompt is read, as the embedded engine (the same code) does."""
        self._tokenize_style: str | None = None  # "llamacpp", "vllm" or "none" once known
        self._token_cache: OrderedDict[str, int] = OrderedDict()
        self._token_lock = threading.Lock()
        self._sync_client: httpx.Client | None = None

    # ---------------------------------------------------------------- chat

    def _client(self) -> httpx.AsyncClient:
        # One client per stream: an AsyncClient is bound to the event loop that first uses it, and the
        # sync API runs each call on a fresh loop. Sharing the SSL context keeps creation cheap.
        return httpx.AsyncClient(
            timeout=self.timeout, headers=self._headers, verify=self._ssl, trust_env=self._trust_env
        )

    async def astream(
        self,
        messages: list[Message],
        tools: list[ToolSpec] | None = None,
        options: ChatOptions | None = None,
    ) -> AsyncIterator[Delta]:
        options = options or ChatOptions()
        await self._probe()
        async with self._client() as client:
            while True:
                try:
                    request = self._request(messages, tools, options)
                    raw = self._raw_stream(client, self._body(request, options), request)
                    stream = prompt_calling.read_reply(raw, request.parse_tools, request.tool_choice, messages)
                    async with contextlib.aclosing(stream):
                        async for delta in stream:
                            yield delta
                    return
                except _RejectsTools as exc:
                    log.warning(
                        "%s rejected `tools` (%s); using prompt-based tool calls from now on", self.base_url, exc
                    )
                    self._native_mode = False
                    self.native_tools = False

    def _request(
        self, messages: list[Message], tools: list[ToolSpec] | None, options: ChatOptions
    ) -> prompt_calling.PromptRequest:
        """Native calls until the server rejects `tools`, then the prompt-based pipeline.

        Natively the server renders the specs; servers that accept `tools` may still return calls as
        text (a chat template the server does not recognise, a missing --tool-call-parser), so the
        content goes through the call parser either way.
        """
        if self._native_mode is False:
            return prompt_calling.prepare(messages, tools, options)
        return prompt_calling.PromptRequest(
            messages=messages,
            template_tools=tools or None,
            schema=options.json_schema,
            forced=False,
            parse_tools=tools if tools and options.tool_choice != "none" else None,
            tool_choice=options.tool_choice,
        )

    def _body(self, request: prompt_calling.PromptRequest, options: ChatOptions) -> dict[str, Any]:
        body = openai_wire.request_body(
            request.messages,
            options,
            model=self.model or "default",
            tools=request.template_tools,
            schema=request.schema,
            schema_name="tool_call" if request.forced else "response",
        )
        if self.llamacpp:
            body["return_progress"] = True  # llama.cpp only: other servers may refuse a field they do not know
        return body

    async def _raw_stream(
        self, client: httpx.AsyncClient, body: dict[str, Any], request: prompt_calling.PromptRequest
    ) -> AsyncGenerator[prompt_calling.RawChunk, None]:
        """The reply's text as it streams; native calls and usage (estimated if the server sent none) last."""
        fragments = openai_wire.ToolCallFragments()
        text: list[str] = []
        usage: Usage | None = None
        tools = request.template_tools
        chunks = self._chunks(client, body, may_reject_tools=bool(tools))
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                content = openai_wire.read_chunk(chunk)
                for fragment in content.fragments:
                    fragments.add(fragment)
                text.append(content.text)
                usage = content.usage or usage
                read = prompt_read(chunk.get("prompt_progress"), PROGRESS_BATCH) if self.llamacpp else None
                yield prompt_calling.RawChunk(text=content.text, finish_reason=content.finish_reason, prompt_read=read)
        calls = fragments.calls()
        if calls:
            log.debug("server %s returned %d native tool calls", self.base_url, len(calls))
        yield prompt_calling.RawChunk(
            tool_calls=calls, usage=usage or self._estimated_usage(request.messages, tools, "".join(text), calls)
        )

    async def _chunks(
        self, client: httpx.AsyncClient, body: dict[str, Any], *, may_reject_tools: bool
    ) -> AsyncGenerator[dict[str, Any], None]:
        """The JSON chunks of one streamed completion, with retries up to the first chunk."""
        url = f"{self.base_url}/chat/completions"
        attempt = 0
        while True:
            streamed = False
            try:
                async with client.stream("POST", url, json=body) as response:
                    if response.status_code >= 400:
                        await self._raise_for_status(response, may_reject_tools)
                    async for chunk in self._sse(response):
                        streamed = True
                        yield chunk
                return
            except _Retryable as retry:
                if attempt >= self.max_retries:
                    raise retry.error from None
                await asyncio.sleep(self._backoff(attempt, retry.retry_after))
            except httpx.TimeoutException as exc:
                if isinstance(exc, httpx.ConnectTimeout) and not streamed and attempt < self.max_retries:
                    await asyncio.sleep(self._backoff(attempt, None))
                else:
                    raise self._timeout_error(exc, streamed) from exc
            except httpx.TransportError as exc:
                if streamed:
                    raise LLMError(f"connection to {self.base_url} lost mid-reply: {exc}") from exc
                if attempt >= self.max_retries:
                    raise self._unavailable(exc) from exc
                await asyncio.sleep(self._backoff(attempt, None))
            attempt += 1

    async def _sse(self, response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
        async for payload in openai_wire.sse_payloads(response.aiter_lines()):
            chunk = self._decode_chunk(payload)
            if chunk is not None:
                yield chunk

    def _decode_chunk(self, payload: str) -> dict[str, Any] | None:
        try:
            chunk = json.loads(payload)
        except ValueError as exc:
            raise LLMError(f"server at {self.base_url} sent a bad stream event: {payload[:200]!r}") from exc
        if not isinstance(chunk, dict):
            return None
        if chunk.get("error"):
            message = _message_from_json(chunk)
            if _is_context_overflow(message):
                raise ContextOverflowError(f"the prompt does not fit the model's context window: {message}")
            raise LLMError(f"model server at {self.base_url} failed mid-stream: {message}")
        return chunk

    async def _raise_for_status(self, response: httpx.Response, may_reject_tools: bool) -> None:
        status = response.status_code
        message = _error_message(await response.aread())
        where = self.base_url
        if _is_context_overflow(message):
            raise ContextOverflowError(f"the prompt does not fit the model's context window: {message}")
        if may_reject_tools and self._native_mode is None and status in (400, 422, 500, 501):
            if "tool" in message.lower():
                raise _RejectsTools(message)
        if status in _RETRY_STATUSES:
            error = LLMError(f"model server at {where} answered HTTP {status}: {message}")
            raise _Retryable(error, _parse_retry_after(response.headers.get("retry-after")))
        if status in (401, 403):
            hint = "set api_key= or $" + API_KEY_ENV if not self.api_key else "check the api_key"
            raise LLMError(f"authentication failed at {where} (HTTP {status}): {message}; {hint}")
        if status == 404:
            if self.model and self.model.lower() in message.lower():
                raise ModelNotFoundError(f"model {self.model!r} is not served at {where}: {message}")
            raise LLMError(f"no chat endpoint at {where}/chat/completions (HTTP 404): {message}")
        raise LLMError(f"model server at {where} rejected the request (HTTP {status}): {message}")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.backoff_max)
        delay = self.backoff_base * (2**attempt)
        return min(delay * random.uniform(0.5, 1.5), self.backoff_max)

    def _unavailable(self, exc: Exception) -> BackendUnavailableError:
        if isinstance(exc, httpx.ConnectError):
            return BackendUnavailableError(f"no model server at {self.base_url} ({_connect_failure(exc)})")
        return BackendUnavailableError(f"model server at {self.base_url} unreachable: {exc!r}")

    def _timeout_error(self, exc: httpx.TimeoutException, streamed: bool) -> LLMError:
        if isinstance(exc, httpx.ConnectTimeout):
            return BackendUnavailableError(
                f"no model server at {self.base_url} (connect timed out after {self.timeout.connect}s)"
            )
        if streamed:
            return LLMError(f"model server at {self.base_url} went silent mid-reply for {self.timeout.read}s")
        return BackendUnavailableError(
            f"model server at {self.base_url} sent no response within {self.timeout.read}s (read timeout)"
        )

    # ---------------------------------------------------------------- usage and token counting

    def _estimated_usage(
        self, messages: list[Message], tools: list[ToolSpec] | None, text: str, calls: list[ToolCall]
    ) -> Usage:
        # The server sent no usage (stream_options unsupported): estimate from characters rather than
        # issue more requests; this is an approximation, not the model's own count.
        prompt = json.dumps(to_openai(messages))
        if tools:
            prompt += json.dumps([t.to_openai() for t in tools])
        completion = text + "".join(c.name + c.arguments for c in calls)
        return Usage(prompt_tokens=approximate_tokens(prompt), completion_tokens=approximate_tokens(completion))

    def count_tokens(self, text: str) -> int:
        """Tokens in `text` by the server's own tokenizer (POST /tokenize on vLLM and llama.cpp).

        Servers without /tokenize (OpenAI, Ollama) or that are unreachable get `approximate_tokens`.
        Results are cached by content.
        """
        if not text:
            return 0
        key = self._cache_key(text)
        with self._token_lock:
            cached = self._token_cache.get(key)
            if cached is not None:
                self._token_cache.move_to_end(key)
                return cached
            if self._tokenize_style == "none":
                return approximate_tokens(text)
            if self._sync_client is None:
                self._sync_client = httpx.Client(
                    timeout=self.timeout, headers=self._headers, verify=self._ssl, trust_env=self._trust_env
                )
            client = self._sync_client
        count = self._tokenize(client, text)
        if count is None:
            return approximate_tokens(text)
        with self._token_lock:
            self._token_cache[key] = count
            while len(self._token_cache) > _TOKEN_CACHE_SIZE:
                self._token_cache.popitem(last=False)
        return count

    @staticmethod
    def _cache_key(text: str) -> str:
        return text if len(text) <= 128 else hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def _tokenize(self, client: httpx.Client, text: str) -> int | None:
        """Try llama.cpp's then vLLM's /tokenize form once, and remember which one the server speaks."""
        styles = [self._tokenize_style] if self._tokenize_style else ["llamacpp", "vllm"]
        for style in styles:
            if style == "llamacpp":
                payload: dict[str, Any] = {"content": text, "add_special": False}
            else:
                payload = {"model": self.model or "default", "prompt": text, "add_special_tokens": False}
            try:
                response = client.post(f"{self.root_url}/tokenize", json=payload)
            except httpx.HTTPError:
                return None  # unreachable now; do not conclude the server lacks /tokenize
            if response.status_code == 404 or response.status_code == 405:
                self._tokenize_style = "none"
                return None
            if response.status_code >= 400:
                continue
            try:
                data = response.json()
            except ValueError:
                continue
            tokens = data.get("tokens") if isinstance(data, dict) else None
            if not isinstance(tokens, list):
                continue
            if style == "llamacpp" and not tokens and "count" not in data:
                continue  # a server that ignored `content` answers an empty list
            self._tokenize_style = style
            if not self._context_from_user and isinstance(data.get("max_model_len"), int):
                self.context_size = data["max_model_len"]
            return int(data.get("count", len(tokens)))
        if not self._tokenize_style:
            self._tokenize_style = "none"
        return None

    # ---------------------------------------------------------------- discovery

    async def _probe(self) -> None:
        """Once: learn the served model name (when none was given) and vLLM's max_model_len from /models."""
        if self._probed or (self.model and self._context_from_user):
            return
        # Concurrent first requests may both probe; that is harmless, and a lock would tie the backend
        # to one event loop (the sync API runs each call on its own loop).
        try:
            async with self._client() as client:
                wait = min(10.0, self.timeout.read or 10.0)
                response = await client.get(f"{self.base_url}/models", timeout=wait)
        except httpx.HTTPError:
            return  # the chat request that follows reports the failure properly
        self._probed = True
        if response.status_code != 200:
            return
        try:
            models = response.json().get("data") or []
        except (ValueError, AttributeError):
            return
        self.llamacpp = any(isinstance(m, dict) and m.get("owned_by") == "llamacpp" for m in models)
        entry = next((m for m in models if isinstance(m, dict) and m.get("id") == self.model), None)
        if entry is None and not self.model and models and isinstance(models[0], dict):
            entry = models[0]
            self.model = str(entry.get("id") or "")
            self.name = f"openai:{self.model or 'default'}@{self.base_url}"
        if entry and not self._context_from_user and isinstance(entry.get("max_model_len"), int):
            self.context_size = entry["max_model_len"]

    def close(self) -> None:
        if self._sync_client is not None:
            self._sync_client.close()
            self._sync_client = None


def approximate_tokens(text: str) -> int:
    """A character-based token estimate for servers that cannot tokenize (see CHARS_PER_TOKEN)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0
