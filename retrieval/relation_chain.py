"""Relation chains in questions: "Who was the father of Enoch's father?" is the relation "father" applied twice
to Enoch; "What is the default of `p` in the first See Also entry of `f`?" asks the default of `p` in what one
relation gives for `f`. Parsed here; followed hop by hop in retrieval/follow_relations.py."""

from __future__ import annotations

import re
from dataclasses import dataclass

_ENTITY = r"(?:`[^`]+`|\"[^\"]+\"|[A-Z][\w'’.-]*(?:\s+(?:of\s+|de\s+|van\s+|von\s+)?[A-Z][\w'’.-]*)*|[\w.]+\(\))"
_POSSESSIVE = re.compile(rf"({_ENTITY})['’]s\s+((?:[a-z][\w-]*\s+){{0,3}}?[a-z][\w-]*)\b")
_TAIL = re.compile(rf"\bof\s+(?:the\s+)?({_ENTITY})\s*[?.!]*\s*$")
_WORD = r"(?!(?:of|the|in|for)\b)[\w-]+"
_LINK = re.compile(rf"(?:^|\s)the\s+((?:{_WORD}\s+){{0,5}}{_WORD})\s*$", re.IGNORECASE)
_OF_END = re.compile(r"\s+of\s*$", re.IGNORECASE)
_COMPOSED = {
    "grandfather": ["father", "father"],
    "grandmother": ["mother", "mother"],
    "grandson": ["son", "son"],
    "granddaughter": ["daughter", "daughter"],
}
"""Relations that are two others in a row (innermost first); the paternal line where the text does not say."""
_TRIVIAL_OUTER = re.compile(r"(?:^|[,;:])\s*(?:who|what|which|whom)(?:\s+(?:is|was|were|are|be))?\s*$", re.IGNORECASE)
"""An outer question that only asks for the chain's end ("Who was", "In the manual, what is")."""


@dataclass
class RelationChain:
    entity: str
    """The name the chain starts from, as the question writes it (quotes and backticks removed)."""
    relations: list[str]
    """Innermost first: "the father of the mother of X" is ["mother", "father"]."""
    outer: str
    """What is asked of the chain's end ("What is the default of `p` in"); '' when the end is the answer."""

    def final_question(self, name: str) -> str:
        """The outer question about `name`, the entity the chain led to."""
        return f"{self.outer} {name}?" if self.outer else ""


def _unpossessive(question: str) -> str:
    """ "X's father's mother" as "the mother of the father of X"."""
    text = question
    for _ in range(4):
        match = _POSSESSIVE.search(text)
        if match is None:
            break
        text = text[: match.start()] + f"the {match.group(2)} of {match.group(1)}" + text[match.end() :]
    return text


def relation_chain(question: str) -> RelationChain | None:
    """The chain of relations the question applies to a name, or None when it names no "the R of X"."""
    text = _unpossessive(question.strip())
    tail = _TAIL.search(text)
    if tail is None:
        return None
    entity = tail.group(1).strip('`"')
    rest = text[: tail.start()].rstrip()
    relations: list[str] = []
    while (link := _LINK.search(rest)) is not None:
        relations.append(link.group(1))
        rest = rest[: link.start()]
        of = _OF_END.search(rest)
        if of is None:
            break
        rest = rest[: of.start()]
    if not relations:
        return None
    relations = [r for relation in relations for r in _COMPOSED.get(relation.lower(), [relation])]
    outer = rest.strip()
    return RelationChain(entity, relations, "" if _TRIVIAL_OUTER.search(outer) else outer)


def hops_needed(question: str) -> int:
    """Lookups one after another: each relation, plus the outer question when there is one."""
    chain = relation_chain(question)
    if chain is None:
        return 1
    return len(chain.relations) + (1 if chain.outer else 0)
