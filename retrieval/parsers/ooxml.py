"""Office Open XML read as a stream: a part's elements as they end, its relationships, and the text of runs.

No DTD, no entity expansion, no network; a part is fed to the parser block by block, so no part is held
whole, and callers release each block-level element once they have read it.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from typing import Any

from lxml import etree

from lector.retrieval.parsers.zip_guard import Package

NAMESPACES = {
    "w": "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    "a": "http://schemas.openxmlformats.org/drawingml/2006/main",
    "p": "http://schemas.openxmlformats.org/presentationml/2006/main",
    "s": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
    "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "rel": "http://schemas.openxmlformats.org/package/2006/relationships",
}
_ROOT_START = re.compile(rb"<[^?!]")
Element = Any
"""An lxml element (lxml ships no type stubs here)."""


def tag(prefixed: str) -> str:
    """'w:p' -> '{http://...wordprocessingml...}p'."""
    prefix, _, local = prefixed.partition(":")
    return f"{{{NAMESPACES[prefix]}}}{local}"


def ends(package: Package, name: str) -> Iterator[Element]:
    """Each element of the part as it ends (children before their parent; the root last)."""
    parser = etree.XMLPullParser(
        events=("end",), resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    prolog: bytes | None = b""
    try:
        for block in package.blocks(name):
            if prolog is not None:
                prolog = _check_prolog(package, name, prolog + block)
            parser.feed(block)
            for _, element in parser.read_events():
                yield element
        parser.close()
    except etree.XMLSyntaxError as exc:
        raise package.meter.refuse(f"corrupt {package.kind} file: {name} is not well-formed XML ({exc.msg})") from exc


def _check_prolog(package: Package, name: str, head: bytes) -> bytes | None:
    """Refuse a DTD before the root element; the head read so far, or None once the root has begun."""
    root = _ROOT_START.search(head)
    if b"<!DOCTYPE" in (head if root is None else head[: root.start()]):
        raise package.meter.refuse(f"{name} declares a DTD (entities), which Office files never do")
    return head if root is None else None


def children_at(package: Package, name: str, parent: str) -> Iterator[Element]:
    """The children of every `parent` element of the part, each once it has ended; released after use."""
    parent_tag = tag(parent)
    for element in ends(package, name):
        up = element.getparent()
        if up is not None and up.tag == parent_tag:
            package.meter.tick()
            yield element
            release(element)


def release(element: Element) -> None:
    """Free an element that has been read, and the siblings before it."""
    element.clear(keep_tail=False)
    parent = element.getparent()
    while parent is not None and element.getprevious() is not None:
        del parent[0]


def root_of(package: Package, name: str) -> Element:
    """A small part (relationships, styles, workbook) parsed whole, within the budget."""
    root = None
    for element in ends(package, name):
        root = element
    return root


def relationships(package: Package, part: str) -> dict[str, tuple[str, str]]:
    """rId -> (type's last word, target part name) from the part's .rels; external targets left out."""
    rels = posixpath.join(posixpath.dirname(part), "_rels", posixpath.basename(part) + ".rels")
    if rels not in package.names:
        return {}
    out: dict[str, tuple[str, str]] = {}
    for rel in root_of(package, rels).iterchildren(tag("rel:Relationship")):
        if rel.get("TargetMode") == "External" or not rel.get("Target"):
            continue
        out[rel.get("Id", "")] = (rel.get("Type", "").rsplit("/", 1)[-1], _resolve(part, rel.get("Target")))
    return out


def _resolve(part: str, target: str) -> str:
    if target.startswith("/"):
        return target.lstrip("/")
    return posixpath.normpath(posixpath.join(posixpath.dirname(part), target))


def main_part(package: Package, default: str) -> str:
    """The package's main document part (from _rels/.rels), or `default`."""
    for kind, target in relationships(package, "").values():
        if kind == "officeDocument" and target in package.names:
            return target
    if default not in package.names:
        raise package.meter.refuse(f"corrupt {package.kind} file (no {default})")
    return default


def run_text(element: Element, text_tag: str, breaks: tuple[str, ...] = (), tabs: tuple[str, ...] = ()) -> str:
    """The text of an element's runs, in document order: text elements, line breaks as newlines, tabs."""
    parts: list[str] = []
    for node in element.iter(text_tag, *breaks, *tabs):
        if node.tag == text_tag:
            parts.append(node.text or "")
        elif node.tag in breaks:
            parts.append("\n")
        else:
            parts.append("\t")
    return "".join(parts)
