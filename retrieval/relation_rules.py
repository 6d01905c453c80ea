"""How texts write family relations, for following "the father of X" without asking the model: "Y begat X",
"Y became the father of X", "X, son of Y" all say Y is X's father. Other relations are read by the model."""

from __future__ import annotations

import re

NAME = r"[A-Z][\w'’-]+(?:\s+(?:of\s+)?[A-Z][\w'’-]+)?"
_FATHERED = r"(?:begat|begot|fathered|became\s+the\s+father\s+of|was\s+the\s+father\s+of)"
_MOTHERED = r"(?:bore|bare|gave\s+birth\s+to|became\s+the\s+mother\s+of|was\s+the\s+mother\s+of)"
_BETWEEN = r"(?:[^.;:]{0,60}?\s)?"
"""Other words between a verb and its object ("begat Shem, Ham, and Japheth")."""
_GAP = r"(?:[^.;:]{0,80}?\s)?"
"""Other words between the subject and its verb ("Seth lived an hundred and five years, and begat Enos")."""
_WHO_WAS = r"(?:(?:which|who|that)\s+(?:was|is)\s+)?"
"""As in "Heli, which was the son of Matthat"."""
_OPENERS = frozenset("And The A An His Her But Then So Now When After".split())

SYNONYMS: dict[str, tuple[str, ...]] = {
    "father": ("begat", "begot", "fathered", "son", "daughter"),
    "mother": ("bore", "bare", "birth", "son", "daughter"),
    "son": ("begat", "begot", "father", "fathered"),
    "daughter": ("begat", "begot", "father", "bore"),
    "wife": ("married", "husband", "took"),
    "husband": ("married", "wife"),
    "grandfather": ("father", "begat", "son"),
}
"""Words a text may state a relation with besides its own name; they widen the search for it."""


def _rules(relation: str, entity: str) -> list[str]:
    e = re.escape(entity)
    child = rf"(?P<name>{NAME})\s*,?\s+{_WHO_WAS}(?:the\s+)?(?:son|daughter)\s+of\s+{e}\b"
    parent = rf"\b{e}\s*,?\s+{_WHO_WAS}(?:the\s+)?(?:son|daughter)\s+of\s+(?P<name>{NAME})"
    rules = {
        "father": [rf"(?P<name>{NAME})\s+{_GAP}{_FATHERED}\s+{_BETWEEN}{e}\b", parent],
        "mother": [rf"(?P<name>{NAME})\s+{_GAP}{_MOTHERED}\s+{_BETWEEN}{e}\b"],
        "son": [rf"\b{e}\s+{_GAP}{_FATHERED}\s+(?P<name>{NAME})", child],
        "daughter": [rf"\b{e}\s+{_GAP}(?:{_FATHERED}|{_MOTHERED})\s+(?P<name>{NAME})", child],
        "wife": [
            rf"\b{e}\s+(?:married|took\s+to\s+wife)\s+(?P<name>{NAME})",
            rf"(?P<name>{NAME}),?\s+(?:the\s+)?wife\s+of\s+{e}\b",
        ],
        "husband": [
            rf"(?P<name>{NAME})\s+(?:married|took\s+to\s+wife)\s+{e}\b",
            rf"\b{e},?\s+(?:the\s+)?wife\s+of\s+(?P<name>{NAME})",
        ],
    }
    return rules.get(relation.lower(), [])


def has_rules(relation: str) -> bool:
    return bool(_rules(relation, "X"))


def related_by_rule(relation: str, entity: str, text: str) -> str | None:
    """The name `text` gives as the `relation` of `entity` by a family-relation pattern, or None."""
    for rule in _rules(relation, entity):
        for match in re.finditer(rule, text):
            words = match.group("name").split()
            while words and words[0] in _OPENERS:
                words = words[1:]
            name = " ".join(words)
            if name and name != entity:
                return name
    return None
