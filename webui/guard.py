"""ASGI middleware in front of every route: Host allowlist, token auth, rate limit, body-size limit, security headers.

Written as plain ASGI (not BaseHTTPMiddleware) so that streamed (SSE) responses pass straight through.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = {"/health"}
PAGE_PATHS = {"/"}
"""Where `?token=` is accepted (and then kept in a cookie)."""
SHELL_PREFIX = "/static/"
"""The page shell (`/` and its scripts and styles) holds no secret and asks for the token itself: it is served
without one. Every API route still needs the token."""
COOKIE = "lector_token"
# Nothing a page shows may make the browser reach another origin: no remote images, styles, fonts, frames or
# connections, no inline script, no style attributes. Figures come as data: URLs.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'none'; "
        b"font-src 'self'; connect-src 'self'; object-src 'none'; frame-src 'none'; frame-ancestors 'none'; "
        b"base-uri 'none'; form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class BodyTooLarge(Exception):
    pass


@dataclass
class TokenBucket:
    rate_per_s: float
    burst: float
    level: float = field(init=False)
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.level = self.burst

    def take(self) -> float:
        """0 when a request may pass now, else seconds until one may."""
        now = time.monotonic()
        self.level = min(self.burst, self.level + (now - self.stamp) * self.rate_per_s)
        self.stamp = now
        if self.level >= 1:
            self.level -= 1
            return 0.0
        return (1 - self.level) / self.rate_per_s


async def send_error(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] = ()) -> None:  # type: ignore[assignment]
    body = json.dumps({"error": {"status": status, "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


def with_security_headers(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
        await send(message)

    return wrapped


def rate_key(scope: Scope, headers: dict[bytes, bytes]) -> str:
    """One bucket per chat session (its id is in the path), else per client address and origin, so one busy
    session or client cannot starve the others that share the token."""
    parts = scope.get("path", "").split("/")
    if len(parts) > 3 and parts[1] == "api" and parts[2] == "sessions":
        return "session:" + parts[3]
    client = scope.get("client") or ("?", 0)
    return f"client:{client[0]}:{headers.get(b'origin', b'').decode('latin-1')}"


def is_page_shell(scope: Scope) -> bool:
    path: str = scope.get("path", "")
    return scope.get("method") in ("GET", "HEAD") and (path in PAGE_PATHS or path.startswith(SHELL_PREFIX))


class Guard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        allowed_hosts: set[str],
        max_body: int,
        max_upload: int,
        upload_paths: tuple[str, ...] = ("/documents", "/pages"),
        rate_per_minute: int = 600,
        burst: int = 120,
    ) -> None:
        self.app = app
        self.token = token
        self.allowed_hosts = allowed_hosts
        self.max_body = max_body
        self.max_upload = max_upload
        self.upload_paths = upload_paths
        self.rate_per_s = rate_per_minute / 60.0
        self.burst = burst
        self.buckets: dict[str, TokenBucket] = {}

    def _presented_token(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[str | None, str]:
        """(token, where it came from). The cookie counts only for GET, so it can't drive a cross-site write."""
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip(), "header"
        if b"x-lector-token" in headers:
            return headers[b"x-lector-token"].decode("latin-1").strip(), "header"
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if "token" in query and scope.get("method") == "GET" and scope.get("path") in PAGE_PATHS:
            return query["token"][0], "query"
        if scope.get("method") == "GET":
            cookies = SimpleCookie(headers.get(b"cookie", b"").decode("latin-1"))
            if COOKIE in cookies:
                return cookies[COOKIE].value, "cookie"
        return None, ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = with_security_headers(send)
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        host = headers.get(b"host", b"").decode("latin-1").lower()
        if host not in self.allowed_hosts:
            await send_error(send, 421, f"Host header {host!r} is not allowed by this server")
            return
        path: str = scope.get("path", "")
        if path in OPEN_PATHS or scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)
            return
        authorized = await self._authorize(scope, headers, send)
        if authorized is None:
            return
        send = authorized
        bucket = self.buckets.setdefault(rate_key(scope, headers), TokenBucket(self.rate_per_s, self.burst))
        wait = bucket.take()
        if wait > 0:
            retry = str(max(1, int(wait + 0.999))).encode()
            await send_error(send, 429, f"rate limit exceeded: retry in {retry.decode()} s", [(b"retry-after", retry)])
            return
        limit = self.max_upload if path.endswith(self.upload_paths) else self.max_body
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await send_error(send, 400, "invalid Content-Length header")
                return
            if declared > limit:
                await send_error(send, 413, f"request body of {declared} bytes exceeds the limit of {limit} bytes")
                return
        await self._call_limited(scope, receive, send, limit)

    async def _authorize(self, scope: Scope, headers: dict[bytes, bytes], send: Send) -> Send | None:
        """The `send` to answer with (setting the cookie when the token came in the URL), or None once refused."""
        if self.token is None:
            return send
        presented, origin = self._presented_token(scope, headers)
        valid = presented is not None and hmac.compare_digest(presented.encode(), self.token.encode())
        if not valid and is_page_shell(scope):
            return send
        if not presented:
            await send_error(send, 401, "missing access token: send 'Authorization: Bearer <token>'")
            return None
        if not valid:
            await send_error(send, 401, "invalid access token")
            return None
        return self._setting_cookie(send) if origin == "query" else send

    def _setting_cookie(self, send: Send) -> Send:
        """The page opened with ?token= keeps a strict, HttpOnly cookie so its own GETs (scripts, styles) pass."""
        cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/".encode()

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie)]}
            await send(message)

        return wrapped

    async def _call_limited(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        received = 0
        over = started = False
        too_large = f"request body exceeds the limit of {limit} bytes"

        async def counting_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            # A body parser that caught BodyTooLarge answers with its own error (a multipart upload says 400
            # "error parsing the body"); the person must learn that the body was too large.
            nonlocal started
            if over:
                if not started:
                    started = True
                    await send_error(send, 413, too_large)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await send_error(send, 413, too_large)
