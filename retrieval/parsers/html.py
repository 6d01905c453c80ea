"""HTML to readable text with lxml: boilerplate elements dropped, headings kept as sections."""

from __future__ import annotations

import re

from lector.retrieval.parsers.base import DocumentError, Segment, TextBuilder
from lector.retrieval.parsers.budget import Meter

_SKIP = {
    "script",
    "style",
    "noscript",
    "template",
    "svg",
    "canvas",
    "iframe",
    "nav",
    "footer",
    "aside",
    "form",
    "button",
    "select",
    "head",
    "object",
    "embed",
}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_BLOCKS = {
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "pre",
    "blockquote",
    "section",
    "article",
    "main",
    "header",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "tr",
    "figure",
    "figcaption",
    "address",
    "hr",
    "br",
    "body",
    "html",
    "caption",
    "details",
    "summary",
}
_CELLS = {"td", "th"}
_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0]+")


class _Walker:
    def __init__(self, meter: Meter | None) -> None:
        self.builder = TextBuilder(meter=meter)
        self.line: list[str] = []
        self.headings: list[tuple[int, str]] = []

    @property
    def section(self) -> str | None:
        return " > ".join(title for _, title in self.headings) or None

    def flush(self) -> None:
        text = _SPACES.sub(" ", "".join(self.line)).strip().removesuffix(" |").strip()
        self.line = []
        if text:
            self.builder.add(text, None, self.section)

    def walk(self, element) -> None:  # noqa: ANN001 - lxml element
        tag = element.tag.lower() if isinstance(element.tag, str) else ""
        if not tag:  # comments and processing instructions
            if element.tail:
                self.line.append(element.tail)
            return
        if tag in _SKIP:
            if element.tail:
                self.line.append(element.tail)
            return
        if tag in _HEADINGS:
            self.flush()
            title = _SPACES.sub(" ", element.text_content()).strip()
            if title:
                level = _HEADINGS[tag]
                self.headings = [(lvl, t) for lvl, t in self.headings if lvl < level] + [(level, title)]
                self.builder.add(title, None, self.section)
        else:
            block = tag in _BLOCKS
            if block:
                self.flush()
            if tag == "pre":
                text = element.text_content().strip("\n")
                if text.strip():
                    self.builder.add(text, None, self.section)
            else:
                if element.text:
                    self.line.append(element.text)
                for child in element:
                    self.walk(child)
                if tag in _CELLS:
                    self.line.append(" | ")
            if block:
                self.flush()
        if element.tail:
            self.line.append(element.tail)


def parse_html(html: str, path: str, meter: Meter | None = None) -> tuple[str, list[Segment], str | None]:
    """Returns text, segments and the page title."""
    import lxml.html
    from lxml.etree import ParserError

    if not html.strip():
        return "", [], None
    try:
        root = lxml.html.document_fromstring(html)
    except (ParserError, ValueError) as exc:
        raise DocumentError(path, f"corrupt HTML: {exc}") from exc
    title_el = root.find(".//title")
    title = _SPACES.sub(" ", title_el.text_content()).strip() if title_el is not None else None
    walker = _Walker(meter)
    body = root.find("body")
    try:
        walker.walk(body if body is not None else root)
    except RecursionError as exc:
        raise DocumentError(path, "HTML nested too deeply to read") from exc
    walker.flush()
    text = walker.builder.text()
    return text, walker.builder.segments, title or None
