"""Which URLs the model may fetch: by default only URLs the user wrote and links of pages
already fetched in this conversation, so a prompt-injected page cannot make the model send
data out through URLs it composes. Optionally an allowlist of domains, or no policy at all."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from lector.tools.base import ToolContext

STATE_KEY = "web_fetch.allowed_urls"
MAX_REMEMBERED = 5000

_URL = re.compile(r"""https?://[^\s<>"'`{}|\\^]+""", re.I)
_BARE = re.compile(
    r"""(?<![\w@/.:-])((?:www\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}(?::\d{1,5})?"""
    r"""(?:/[^\s<>"'`{}|\\^]*)?)""",
    re.I,
)
_TRAILING = ".,;:!?'\"»"


def normalize_url(url: str) -> str | None:
    """A canonical form for comparing URLs (lowercase scheme and host, no default port, no fragment,
    '/' for an empty path), or None when it does not parse as http(s)."""
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, ValueError):
        return None
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        return None
    host = parsed.raw_host.decode("ascii").lower().rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    port = f":{parsed.port}" if parsed.port is not None else ""
    path = parsed.raw_path.decode("ascii") or "/"
    return f"{parsed.scheme}://{host}{port}{path}"


def _trim(candidate: str) -> str:
    candidate = candidate.rstrip(_TRAILING)
    while candidate.endswith(")") and candidate.count(")") > candidate.count("("):
        candidate = candidate[:-1].rstrip(_TRAILING)
    while candidate.endswith("]") and candidate.count("]") > candidate.count("["):
        candidate = candidate[:-1].rstrip(_TRAILING)
    return candidate


def urls_in_text(text: str) -> set[str]:
    """Normalised URLs a text mentions, with a scheme or as a bare domain (`example.com/page`,
    which counts as both its http and https form)."""
    found: set[str] = set()
    for match in _URL.finditer(text):
        norm = normalize_url(_trim(match.group(0)))
        if norm:
            found.add(norm)
    stripped = _URL.sub(" ", text)
    for match in _BARE.finditer(stripped):
        bare = _trim(match.group(1))
        for scheme in ("https", "http"):
            norm = normalize_url(f"{scheme}://{bare}")
            if norm:
                found.add(norm)
    return found


def remember_urls(ctx: ToolContext, urls: Iterable[str]) -> None:
    """Record URLs (links of a fetched page, the page itself) as fetchable in this conversation."""
    known: set[str] = ctx.state.setdefault(STATE_KEY, set())
    for url in urls:
        if len(known) >= MAX_REMEMBERED:
            break
        norm = normalize_url(url)
        if norm:
            known.add(norm)


@dataclass
class UrlPolicy:
    """`conversation`: allow URLs from the user's messages and fetched pages' links.
    `domains`: always allow these domains and their subdomains. `enabled=False`: allow all
    (the SSRF rules still apply)."""

    conversation: bool = True
    domains: frozenset[str] = field(default_factory=frozenset)
    enabled: bool = True

    def __post_init__(self) -> None:
        self.domains = frozenset(d.lower().strip().strip(".") for d in self.domains if d.strip())

    @classmethod
    def off(cls) -> UrlPolicy:
        return cls(enabled=False)

    @classmethod
    def only_domains(cls, domains: Iterable[str]) -> UrlPolicy:
        return cls(conversation=False, domains=frozenset(domains))

    @classmethod
    def coerce(cls, value: Any) -> UrlPolicy:
        """A policy from a UrlPolicy, None/'off', 'conversation', or a list of domains."""
        if isinstance(value, UrlPolicy):
            return value
        if value is None or value is False or value == "off":
            return cls.off()
        if value is True or value == "conversation":
            return cls()
        if isinstance(value, str):
            raise ValueError(f"unknown URL policy {value!r} (use 'conversation', 'off' or a list of domains)")
        return cls.only_domains(value)

    def check(self, url: str, ctx: ToolContext) -> str | None:
        """None when the model may fetch `url`, else a refusal it can read."""
        if not self.enabled:
            return None
        norm = normalize_url(url)
        if norm is None:
            return None  # not http(s): the network guard gives the precise reason
        host = httpx.URL(norm).host.lower()
        if any(host == d or host.endswith("." + d) for d in self.domains):
            return None
        if self.conversation:
            allowed = set(ctx.state.get(STATE_KEY, ()))
            for text in ctx.user_texts:
                allowed |= urls_in_text(text)
            if norm in allowed or (norm.startswith("https://") and "http://" + norm[8:] in allowed):
                return None
            extra = f", or domains {', '.join(sorted(self.domains))}" if self.domains else ""
            return (
                f"URL not in the conversation: {url}. The policy allows only URLs the user gave "
                f"or links from fetched pages{extra}. Ask the user for the URL if it is needed."
            )
        names = ", ".join(sorted(self.domains))
        return f"URL not allowed: {host} is not among the allowed domains ({names})."
