"""HTTP GET that connects only to addresses the NetGuard validated, hop by hop, within caps.

The connection pool's network backend looks every (host, port) up in a pin table filled from
validated Targets, so a second DNS answer (rebinding) can never be used, while the request keeps
the real Host header and TLS uses the real host name for SNI and certificate checks.
No cookies, no proxies, no automatic redirects.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from lector.tools.web.guard import Blocked, NetGuard, Target

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
DEFAULT_USER_AGENT = "Lector/0.1 (web_fetch tool; a reading assistant)"
ACCEPT = "text/html,application/xhtml+xml,text/plain;q=0.9,application/json;q=0.9,application/pdf;q=0.8,*/*;q=0.5"


class FetchError(Exception):
    """A fetch failed; the message is short and meant for the model."""


def human_bytes(n: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def human_seconds(s: float) -> str:
    return f"{s:g} s"


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to pinned addresses of (host, port); refuses everything else."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.inner = inner or httpcore.AnyIOBackend()
        self.pins: dict[tuple[str, int], tuple[str, ...]] = {}

    def pin(self, target: Target) -> None:
        self.pins[(target.host, target.port)] = target.addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = self.pins.get((host.lower(), port))
        if not addresses:
            raise httpcore.ConnectError(f"refusing to connect to unvalidated {host}:{port}")
        error: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class BoundedDecoder:
    """Undoes Content-Encoding (identity, gzip, deflate) without ever producing more than asked."""

    def __init__(self, encoding: str) -> None:
        enc = encoding.strip().lower()
        self.encoding = enc
        self._z: Any = None
        self.overflow = False
        if enc in ("", "identity"):
            return
        if enc in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif enc == "deflate":
            self._z = zlib.decompressobj(zlib.MAX_WBITS)
            self._raw_fallback = True
        else:
            raise FetchError(f"unsupported content encoding {encoding!r}")

    def feed(self, data: bytes, room: int) -> bytes:
        """At most `room` decoded bytes; sets `overflow` when the data holds more."""
        if self._z is None:
            if len(data) > room:
                self.overflow = True
            return data[:room]
        try:
            out = self._z.decompress(data, room + 1)
        except zlib.error:
            if self.encoding == "deflate" and getattr(self, "_raw_fallback", False):
                self._raw_fallback = False
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                return self.feed(data, room)
            raise FetchError(f"corrupt {self.encoding} response body") from None
        self._raw_fallback = False
        if len(out) > room or self._z.unconsumed_tail:
            self.overflow = True
        return out[:room]

    def flush(self, room: int) -> bytes:
        if self._z is None:
            return b""
        out = self._z.flush()
        if len(out) > room:
            self.overflow = True
        return out[:room]


@dataclass
class FetchResult:
    url: str
    """The URL finally answered (after redirects)."""
    status: int
    headers: httpx.Headers
    body: bytes
    complete: bool
    """False when the body was cut at the byte limit."""
    hops: list[str] = field(default_factory=list)
    """Every URL requested, in order (the first is the one asked for)."""

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


LimitFor = Callable[[httpx.Headers], tuple[int, bool]]
"""Response headers -> (byte limit, whether a body cut at the limit is still usable)."""


@dataclass
class FetchOptions:
    timeout: float = 10.0
    max_bytes: int = 2 * 1024 * 1024
    max_redirects: int = 5
    max_header_bytes: int = 32 * 1024
    user_agent: str = DEFAULT_USER_AGENT
    verify: ssl.SSLContext | str | bool = True


class PinnedFetcher:
    def __init__(
        self,
        guard: NetGuard,
        options: FetchOptions | None = None,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.guard = guard
        self.options = options or FetchOptions()
        self.network_backend = network_backend
        self._ssl_context: ssl.SSLContext | None = None

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            verify = self.options.verify
            self._ssl_context = (
                verify
                if isinstance(verify, ssl.SSLContext)
                else httpx.create_ssl_context(verify=verify, trust_env=False)
            )
        return self._ssl_context

    async def get(self, url: str, limit_for: LimitFor | None = None) -> FetchResult:
        """GET a URL, validating each hop; raises Blocked or FetchError with a short reason."""
        opts = self.options
        try:
            async with asyncio.timeout(opts.timeout):
                return await self._get(url, limit_for)
        except TimeoutError:
            raise FetchError(f"timed out after {human_seconds(opts.timeout)}") from None

    async def _get(self, url: str, limit_for: LimitFor | None) -> FetchResult:
        opts = self.options
        backend = PinnedBackend(self.network_backend)
        pool = httpcore.AsyncConnectionPool(
            ssl_context=self.ssl_context(),
            http1=True,
            http2=False,
            retries=0,
            max_connections=4,
            network_backend=backend,
        )
        hops: list[str] = []
        current = url
        try:
            async with pool:
                while True:
                    try:
                        target = await self.guard.check(current)
                    except Blocked as exc:
                        if hops:  # the same exception, so that an allow-list hint still applies
                            exc.args = (f"redirect to {current} refused: {exc}",)
                        raise
                    hops.append(str(target.url.copy_with(fragment=None)))
                    backend.pin(target)
                    response = await pool.handle_async_request(self._request(target))
                    try:
                        headers = httpx.Headers(response.headers)
                        if sum(len(k) + len(v) for k, v in response.headers) > opts.max_header_bytes:
                            raise FetchError(f"response headers larger than {human_bytes(opts.max_header_bytes)}")
                        location = headers.get("location")
                        if response.status in REDIRECT_CODES and location:
                            current = self._next_hop(target.url, location, hops)
                            continue
                        limit, partial_ok = (limit_for or (lambda h: (opts.max_bytes, True)))(headers)
                        body, complete = await self._read(response, headers, limit, partial_ok)
                        return FetchResult(hops[-1], response.status, headers, body, complete, hops)
                    finally:
                        await response.aclose()
        except httpcore.TimeoutException:
            raise FetchError(f"timed out after {human_seconds(opts.timeout)}") from None
        except httpcore.ConnectError as exc:
            detail = str(exc) or "connection refused"
            if "SSL" in detail or isinstance(exc.__context__, ssl.SSLError):
                raise FetchError(f"TLS error with {_host_of(current)}: {detail}") from None
            raise FetchError(f"could not connect to {_host_of(current)}: {detail}") from None
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as exc:
            why = str(exc) or type(exc).__name__
            raise FetchError(f"connection to {_host_of(current)} failed: {why}") from None
        except ssl.SSLError as exc:
            raise FetchError(f"TLS error with {_host_of(current)}: {exc}") from None

    def _request(self, target: Target) -> httpcore.Request:
        url = target.url
        headers = [
            (b"Host", url.netloc),
            (b"User-Agent", self.options.user_agent.encode()),
            (b"Accept", ACCEPT.encode()),
            (b"Accept-Encoding", b"gzip, deflate"),
            (b"Connection", b"close"),
        ]
        t = self.options.timeout
        return httpcore.Request(
            b"GET",
            httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=headers,
            extensions={"timeout": {"connect": t, "read": t, "write": t, "pool": t}},
        )

    def _next_hop(self, base: httpx.URL, location: str, hops: list[str]) -> str:
        try:
            nxt = base.join(location.strip()).copy_with(fragment=None)
        except (httpx.InvalidURL, ValueError) as exc:
            raise FetchError(f"bad redirect location {location[:200]!r}: {exc}") from None
        if len(hops) > self.options.max_redirects:
            raise FetchError(f"too many redirects ({len(hops)} > {self.options.max_redirects})")
        if str(nxt) in hops:
            raise FetchError(f"redirect loop: {hops[-1]} redirects back to {nxt}")
        return str(nxt)

    async def _read(
        self, response: httpcore.Response, headers: httpx.Headers, limit: int, partial_ok: bool
    ) -> tuple[bytes, bool]:
        too_large = FetchError(f"response larger than {human_bytes(limit)}")
        declared = headers.get("content-length", "")
        if not partial_ok and declared.isdigit() and int(declared) > limit:
            raise too_large
        decoder = BoundedDecoder(headers.get("content-encoding", ""))
        parts: list[bytes] = []
        size = raw = 0
        async for chunk in response.aiter_stream():
            raw += len(chunk)
            out = decoder.feed(chunk, limit - size)
            parts.append(out)
            size += len(out)
            if decoder.overflow or raw > limit:
                if not partial_ok:
                    raise too_large
                return b"".join(parts), False
        parts.append(decoder.flush(limit - size))
        if decoder.overflow and not partial_ok:
            raise too_large
        return b"".join(parts), not decoder.overflow


def _host_of(url: str) -> str:
    try:
        return httpx.URL(url).host or url
    except (httpx.InvalidURL, ValueError):
        return url
