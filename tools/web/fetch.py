"""The `web_fetch` tool: fetch a URL the conversation allows, safely, and return readable text.

Safety: URL policy (tools/web/policy.py) -> SSRF guard on every hop (tools/web/guard.py) ->
connections pinned to validated addresses with caps on time, bytes and hops (tools/web/transport.py).
"""

from __future__ import annotations

import os
import re
import ssl
import tempfile
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote

import httpcore
import httpx
from pydantic import BaseModel, Field

from lector.tools.base import Tool, ToolContext, ToolResult
from lector.tools.process_pool import ProcessPool, WorkerFailed, WorkerTimeout
from lector.tools.web.extract import Page, decode_text, kind_of, looks_binary, page_from_fields, pretty_json
from lector.tools.web.guard import AddressBlocked, Blocked, NetGuard, Resolver
from lector.tools.web.policy import UrlPolicy, remember_urls
from lector.tools.web.transport import (
    DEFAULT_USER_AGENT,
    FetchError,
    FetchOptions,
    FetchResult,
    PinnedFetcher,
    human_bytes,
)

_DOC_EXTENSIONS = {
    "application/pdf": ".pdf",
    "application/msword": ".doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/epub+zip": ".epub",
    "application/rtf": ".rtf",
    "application/zip": ".zip",
}
_UNSAFE_NAME = re.compile(r"[^\w.\-]+")
READ_PAGE = "lector.tools.web.extract:read_page"
READERS = ProcessPool(max_idle=1)
"""Child processes that turn HTML into text: a hostile page cannot hold the server, and its deadline stops it."""
ALLOW_HOSTS_ENV = "LECTOR_WEB_FETCH_ALLOW_HOSTS"
POLICY_ENV = "LECTOR_WEB_FETCH_POLICY"


class WebFetch(Tool):
    name = "web_fetch"
    description = (
        "Fetch a web page or online document by its http(s) URL. Returns the page's readable text "
        "with its title and links; PDFs and other documents are saved as files for the document "
        "tools. Only URLs the user gave, or links from pages already fetched, may be fetched."
    )

    class Args(BaseModel):
        url: str = Field(description="The full http:// or https:// URL.")

    def __init__(
        self,
        *,
        resolver: Resolver | None = None,
        allow_hosts: Iterable[str] | None = None,
        policy: UrlPolicy | str | Iterable[str] | None = None,
        max_bytes: int = 2 * 1024 * 1024,
        max_file_bytes: int = 25 * 1024 * 1024,
        timeout: float = 10.0,
        max_redirects: int = 5,
        download_dir: str | Path | None = None,
        max_chars: int = 20_000,
        max_links: int = 40,
        verify: ssl.SSLContext | str | bool = True,
        user_agent: str = DEFAULT_USER_AGENT,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
        read_seconds: float = 15.0,
    ) -> None:
        """`allow_hosts`: explicit exceptions to the address rules ('127.0.0.1:8080'), none by default;
        None reads the comma-separated LECTOR_WEB_FETCH_ALLOW_HOSTS (for `lector chat` users).
        `policy`: 'conversation', 'off', a list of domains, or a UrlPolicy; None reads
        LECTOR_WEB_FETCH_POLICY ('off', 'conversation' or comma-separated domains), else 'conversation'.
        `network_backend`: an httpcore backend under the pinning layer (tests use a fake one).
        `read_seconds`: how long turning one HTML page into text may take."""
        if allow_hosts is None:
            allow_hosts = _env_list(ALLOW_HOSTS_ENV)
        if policy is None:
            env_policy = os.environ.get(POLICY_ENV, "conversation").strip() or "conversation"
            policy = env_policy if env_policy in ("off", "conversation") else _env_list(POLICY_ENV)
        self.guard = NetGuard(resolver=resolver, allow_hosts=allow_hosts)
        self.policy = UrlPolicy.coerce(policy)
        self.max_bytes = max_bytes
        self.max_file_bytes = max_file_bytes
        self.max_chars = max_chars
        self.max_links = max_links
        self.read_seconds = read_seconds
        default_dir = Path(tempfile.gettempdir()) / "lector-downloads"
        self.download_dir = Path(download_dir) if download_dir else default_dir
        self.fetcher = PinnedFetcher(
            self.guard,
            FetchOptions(
                timeout=timeout, max_bytes=max_bytes, max_redirects=max_redirects, verify=verify, user_agent=user_agent
            ),
            network_backend=network_backend,
        )
        self.timeout = timeout + read_seconds + 5.0  # the fetch and the reading enforce their own limits

    async def run(self, args: Args, ctx: ToolContext) -> ToolResult:
        url = args.url.strip()
        refusal = self.policy.check(url, ctx)
        if refusal:
            return ToolResult(content=refusal, error=True, source=url)
        try:
            result = await self.fetcher.get(url, self._limit_for)
        except AddressBlocked as exc:
            hint = f"To allow a host you trust, set {ALLOW_HOSTS_ENV}={exc.allow} (comma-separated host:port entries)."
            return ToolResult(content=f"Could not fetch {url}: {exc}. {hint}", error=True, source=url)
        except (Blocked, FetchError) as exc:
            return ToolResult(content=f"Could not fetch {url}: {exc}", error=True, source=url)
        remember_urls(ctx, result.hops)
        return await self._present(result, ctx)

    def _limit_for(self, headers: httpx.Headers) -> tuple[int, bool]:
        ct = headers.get("content-type", "").split(";")[0].strip().lower()
        if kind_of(ct, b"") == "document":
            return self.max_file_bytes, False
        return self.max_bytes, True

    async def _present(self, result: FetchResult, ctx: ToolContext) -> ToolResult:
        header = f"Source: {result.url}"
        if len(result.hops) > 1:
            header += f"\n(redirected from {result.hops[0]})"
        if result.status >= 400:
            text = decode_text(result.body[:4000], result.headers)
            snippet = re.sub(r"\s+", " ", text)[:500]
            return ToolResult(
                content=f"{header}\nHTTP {result.status}: the server refused or failed.\n{snippet}".rstrip(),
                error=True,
                source=result.url,
            )
        kind = kind_of(result.content_type, result.body)
        cut_note = (
            ""
            if result.complete
            else (f"\n[cut: the response is larger than {human_bytes(self.max_bytes)}; read the first part only]")
        )
        if kind == "document":
            if not result.complete:
                return ToolResult(
                    content=f"{header}\nresponse larger than {human_bytes(self.max_bytes)}",
                    error=True,
                    source=result.url,
                )
            return self._save_document(result, ctx, header)
        if looks_binary(result.body):
            why = (
                f"response larger than {human_bytes(self.max_bytes)} (stopped reading), and binary"
                if not result.complete
                else f"the {result.content_type or 'response'} body is binary data"
            )
            return ToolResult(content=f"{header}\n{why}, not text", error=True, source=result.url)
        if kind == "html":
            page = await self._read_page(decode_text(result.body, result.headers, html=True), result.url)
            if isinstance(page, str):
                return ToolResult(content=f"{header}\n{page}", error=True, source=result.url)
            remember_urls(ctx, (link for _, link in page.links))
            parts = [header]
            if page.title:
                parts.append(f"Title: {page.title}")
            parts.append("")
            parts.append(self._truncate(page.text or "(no readable text)") + cut_note)
            if page.links:
                shown = page.links[: self.max_links]
                parts.append(f"\nLinks ({len(shown)} of {len(page.links)}):")
                parts.extend(f"- {text} <{link}>" if text else f"- <{link}>" for text, link in shown)
            return ToolResult(content="\n".join(parts), source=result.url)
        text = decode_text(result.body, result.headers)
        if kind == "json" and result.complete:
            text = pretty_json(text)
        return ToolResult(content=f"{header}\n\n{self._truncate(text)}{cut_note}", source=result.url)

    async def _read_page(self, html: str, url: str) -> Page | str:
        """The page's text, title and links, or why it could not be read."""
        try:
            return page_from_fields(await READERS.call(READ_PAGE, html, url, timeout=self.read_seconds))
        except WorkerTimeout:
            return f"reading the page's HTML took longer than {self.read_seconds:g} s, so it was stopped"
        except WorkerFailed as exc:
            return f"the page's HTML could not be read: {exc}"

    def _truncate(self, text: str) -> str:
        if len(text) <= self.max_chars:
            return text
        return f"{text[: self.max_chars]}\n[truncated: showed {self.max_chars} of {len(text)} characters]"

    def _save_document(self, result: FetchResult, ctx: ToolContext, header: str) -> ToolResult:
        folder = self.download_dir / (_UNSAFE_NAME.sub("_", ctx.conversation_id).strip("._") or "default")
        folder.mkdir(parents=True, exist_ok=True)
        path = _unique(folder / _file_name(result))
        path.write_bytes(result.body)
        ct = result.content_type or "unknown type"
        message = (
            f"{header}\nSaved the document {path.name} ({ct}, {human_bytes(len(result.body))}) to {path}. "
            "It is a file for the document pipeline (e.g. document search), not text shown here."
        )
        return ToolResult(content=message, files=[str(path)], source=result.url)


def _env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def _file_name(result: FetchResult) -> str:
    disposition = result.headers.get("content-disposition", "")
    match = re.search(r"filename\*=(?:UTF-8'')?([^;]+)|filename=\"?([^\";]+)", disposition, re.I)
    name = unquote((match.group(1) or match.group(2)).strip()) if match else ""
    if not name:
        name = unquote(httpx.URL(result.url).path.rsplit("/", 1)[-1])
    name = _UNSAFE_NAME.sub("_", Path(name).name).strip("._")[:100] or "download"
    ext = _DOC_EXTENSIONS.get(result.content_type)
    if ext and not name.lower().endswith(ext):
        name += ext
    return name


def _unique(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate
