"""Who speaks a line of a play: the speaker's tag that heads the speech ("HAMLET." or "NORA:" on the line before
it, or at the start of its first line). A question asking who says a quoted line is answered by that tag, which
sentence windows around the quote often leave out of a long speech."""

from __future__ import annotations

import re

MAX_LINES_BACK = 60
"""Lines walked back from the quoted words to the tag that heads their speech."""
MIN_TAGS = 2
"""Speaker tags a passage must hold to be read as a play (one all-caps line is more often a heading)."""

_NAME_WORD = r"[A-Z][A-Z'’\-]+"
_TAG = re.compile(
    rf"^[ \t]*(?P<name>{_NAME_WORD}(?:[ \t]+(?:{_NAME_WORD}|[A-Z]|OF|of|the|de|la|von|van))*)"
    r"(?:[ \t]*[.:](?=\s|$)|[ \t]*$|\t|[ \t]{2,}(?=\S))"
)
_HEADING = re.compile(r"^[ \t]*(?:ACT|SCENE|PROLOGUE|EPILOGUE|CHAPTER|BOOK|PART|INDUCTION|THE END)\b")
_ROMAN = re.compile(r"[IVXLCDM]+")
_ASKS_WHO = re.compile(
    r"\b(?:who|whom|whose|which\s+(?:character|person|speaker|figure|one)|speaks?|spoke|speaker|says?|said|"
    r"utters?|uttered|quoted\s+as)\b",
    re.IGNORECASE,
)
MAX_TAG_WORDS = 4


def asks_who(question: str) -> bool:
    """Does the question ask who says something?"""
    return bool(_ASKS_WHO.search(question))


def speaker_tag(line: str) -> str | None:
    """The speaker's name when `line` starts with a play's speaker tag, else None."""
    if _HEADING.match(line):
        return None
    found = _TAG.match(line)
    if found is None:
        return None
    name = " ".join(found.group("name").split())
    if len(name.split()) > MAX_TAG_WORDS or _ROMAN.fullmatch(name.replace(" ", "")):
        return None
    return name


def _tags(text: str) -> int:
    return sum(1 for line in text.splitlines() if speaker_tag(line))


def speaker_line(text: str, at: int) -> tuple[int, str] | None:
    """The line that heads the speech holding offset `at` of `text` (its start offset and the line), or None when
    `text` is not a play's or no tag heads the speech within reach (a heading or the text's start comes first)."""
    if _tags(text) < MIN_TAGS:
        return None
    end = text.find("\n", at)
    end = len(text) if end < 0 else end
    for _ in range(MAX_LINES_BACK):
        start = text.rfind("\n", 0, end) + 1
        line = text[start:end]
        if _HEADING.match(line):
            return None
        if speaker_tag(line):
            return start, " ".join(line.split())
        if start == 0:
            return None
        end = start - 1
    return None
