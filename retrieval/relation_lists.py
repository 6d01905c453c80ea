"""Relations that pick an item of a list under a heading: "the first See Also entry of f" is the first name listed
under f's "See Also" heading. Read here off the passage, without asking the model, as manuals write such lists:
one name per line (`name : what it does`), several on a line (`a, b, c`), or bullets (`- name`, `* name`)."""

from __future__ import annotations

import re

from lector.retrieval.phrases import phrase_text_pattern

ORDINALS = {"first": 0, "second": 1, "third": 2, "fourth": 3, "fifth": 4, "last": -1}
_UNDERLINE = re.compile(r"^\s*([-=~^*#])\1{2,}\s*$")
_BULLET = re.compile(r"^\s*(?:[-*•+]|\d+[.)])\s+")
_ITEM = re.compile(r"[A-Za-z_][\w.]*(?:\(\))?")


def _ordinal(relation: str) -> int | None:
    return next((ORDINALS[w.lower()] for w in relation.split() if w.lower() in ORDINALS), None)


def _items(lines: list[str]) -> tuple[list[str], bool]:
    """The names the list lines give, in order, and whether the list ends within them: each entry's leading
    name, descriptions and their indented continuation lines left out; the list ends at its first blank line,
    at a line indented less, or at a line that is no entry."""
    names: list[str] = []
    indent: int | None = None
    for line in lines:
        if not line.strip():
            if names:
                return names, True
            continue
        depth = len(line) - len(line.lstrip())
        if indent is None:
            indent = depth
        if depth < indent:
            return names, True
        if depth > indent:
            continue  # the description of the entry above
        entry = _BULLET.sub("", line).split(" : ", 1)[0]
        for part in entry.split(","):
            match = _ITEM.match(part.strip())
            if match is None:
                return names, True
            names.append(match.group(0).removesuffix("()"))
    return names, False


def listed_item(relation: str, heading: str, passage: str) -> str | None:
    """The item `relation` picks ("first", "second", "last") from the list under `heading` in `passage`, or None
    when the relation names no position or the passage has no such list."""
    position = _ordinal(relation)
    pattern = phrase_text_pattern(heading)
    found = pattern.search(passage) if pattern is not None and position is not None else None
    if found is None or position is None:
        return None
    lines = passage[found.end() :].split("\n")[1:]
    while lines and not lines[0].strip():
        lines = lines[1:]
    if lines and _UNDERLINE.match(lines[0]):
        lines = lines[1:]
    names, ended = _items(lines[:-1])  # the passage's last line may be cut short
    if position >= len(names) or (position < 0 and not ended):
        return None
    return names[position]
