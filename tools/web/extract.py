"""Turning fetched bytes into what a model can read: HTML to text with title and links, JSON
pretty-printed, text as it is; anything else is a document to save as a file.

Reading HTML can cost seconds of CPU on a hostile page (a 2 MB table), so `read_page` is what a
child process of the fetch tool calls (process_pool.py), where a deadline really stops it."""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urldefrag, urljoin

import httpx

from lector.llm.unicode import valid_json

TEXT_TYPES = ("text/plain", "text/markdown", "text/x-markdown", "text/csv", "text/tab-separated-values")
HTML_TYPES = ("text/html", "application/xhtml+xml")
MAX_ANCHORS = 5000
"""Anchors of a page looked at for links; the rest are ignored."""
MAX_PAGE_LINKS = 1000
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.I)


@dataclass
class Page:
    title: str
    text: str
    links: list[tuple[str, str]] = field(default_factory=list)
    """(anchor text, absolute URL), in page order, without duplicates."""


def kind_of(content_type: str, body: bytes) -> str:
    """'html', 'json', 'text' or 'document', from the declared type, or the bytes when it is vague."""
    ct = content_type.lower()
    if ct in HTML_TYPES:
        return "html"
    if ct == "application/json" or ct.endswith("+json"):
        return "json"
    if ct.startswith("text/") or ct in ("application/xml", "application/javascript") or ct.endswith("+xml"):
        return "text"
    if ct in ("", "application/octet-stream", "binary/octet-stream"):
        head = body[:1024].lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html")) or b"<body" in head:
            return "html"
        if head.startswith(b"%pdf") or looks_binary(body):
            return "document"
        return "text"
    return "document"


def looks_binary(body: bytes) -> bool:
    sample = body[:4096]
    controls = sum(b < 9 or 13 < b < 32 for b in sample)
    return b"\x00" in sample or controls > len(sample) // 10


def decode_text(body: bytes, headers: httpx.Headers, html: bool = False) -> str:
    """Bytes to str: the declared charset, a <meta charset> for HTML, a BOM, else UTF-8."""
    candidates: list[str] = []
    ct = headers.get("content-type", "")
    match = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", ct, re.I)
    if match:
        candidates.append(match.group(1))
    if body.startswith(codecs.BOM_UTF8):
        candidates.insert(0, "utf-8-sig")
    if html:
        meta = _META_CHARSET.search(body[:4096])
        if meta:
            candidates.append(meta.group(1).decode("ascii", "replace"))
    for name in candidates:
        try:
            return body.decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    return body.decode("utf-8", "replace")


def pretty_json(text: str) -> str:
    """Indented JSON; escapes of lone surrogates ("\\ud800") become U+FFFD rather than invalid text."""
    try:
        return json.dumps(valid_json(json.loads(text)), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def read_page(html: str, url: str) -> dict[str, Any]:
    """`html_to_page` as JSON-ready fields, for a child process."""
    return asdict(html_to_page(html, url))


def page_from_fields(fields: dict[str, Any]) -> Page:
    links = [(str(text), str(link)) for text, link in fields.get("links", [])]
    return Page(title=str(fields.get("title", "")), text=str(fields.get("text", "")), links=links)


def html_to_page(html: str, url: str) -> Page:
    import lxml.html
    import trafilatura

    try:
        doc = lxml.html.document_fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return Page(title="", text=_collapse(html))
    title = _collapse(doc.findtext(".//title") or "")
    base = url
    base_el = doc.find(".//base[@href]")
    if base_el is not None:
        base = urljoin(url, base_el.get("href", "").strip())
    links = _links(doc, base)
    text = trafilatura.extract(
        html, url=url, include_comments=False, include_tables=True, favor_recall=True, deduplicate=False
    )
    if not text:
        for bad in doc.xpath("//script|//style|//noscript|//template"):
            bad.drop_tree()
        body = doc.find(".//body")
        text = _collapse((body if body is not None else doc).text_content())
    return Page(title=title or _fallback_title(doc), text=text.strip(), links=links)


def _fallback_title(doc: Any) -> str:
    """A page without <title>: its og:title, else its first heading (trafilatura's metadata pass costs seconds on
    a hostile page)."""
    og = doc.find(".//meta[@property='og:title']")
    if og is not None and og.get("content"):
        return _collapse(og.get("content"))[:300]
    heading = doc.find(".//h1")
    return _collapse(heading.text_content())[:300] if heading is not None else ""


def _links(doc: object, base: str) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for count, a in enumerate(doc.iter("a")):  # type: ignore[attr-defined]
        if count >= MAX_ANCHORS or len(seen) >= MAX_PAGE_LINKS:
            break
        href = (a.get("href") or "").strip()
        if not href or href.startswith(("#", "javascript:", "mailto:", "tel:", "data:")):
            continue
        absolute, _ = urldefrag(urljoin(base, href))
        if not absolute.lower().startswith(("http://", "https://")) or len(absolute) > 2048:
            continue
        if absolute not in seen:
            seen[absolute] = _collapse(a.text_content())[:100]
    return [(text, link) for link, text in seen.items()]


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
