"""Reading levels: the one type for a level, and the one parser of what people type for it."""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema


class Level(IntEnum):
    AUTO = -1
    """Pick the cheapest level that answers, and escalate when its evidence falls short."""
    DIRECT = 0
    """The documents fit the window: the model reads them whole."""
    RETRIEVE = 1
    READ = 2
    STEPWISE = 3

    @property
    def label(self) -> str:
        """What a person types for this level: "auto", or its number."""
        return "auto" if self is Level.AUTO else str(self.value)


_NAMES = {"auto": Level.AUTO, "direct": Level.DIRECT, **{str(level.value): level for level in Level if level >= 0}}


def parse_level(value: object) -> Level:
    """A Level from a Level, an int 0-3, or the text "auto", "direct" or "0" to "3" (any case, spaces ignored)."""
    if isinstance(value, Level):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 3:
        return Level(value)
    if isinstance(value, str) and value.strip().lower() in _NAMES:
        return _NAMES[value.strip().lower()]
    raise ValueError(f"unknown level {value!r}: expected auto, direct, 0, 1, 2 or 3")


LEVEL_CHOICES = ["auto", "direct", "0", "1", "2", "3"]
_LEVEL_SCHEMA = {"anyOf": [{"type": "string", "enum": LEVEL_CHOICES}, {"type": "integer", "minimum": 0, "maximum": 3}]}

LevelInput = Annotated[
    Level,
    BeforeValidator(parse_level),
    PlainSerializer(lambda level: level.label, return_type=str),
    WithJsonSchema(_LEVEL_SCHEMA),
]
"""A Level in a request or a stored setting: parsed from what a person types, written back as its label."""
