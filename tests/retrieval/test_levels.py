"""Levels: one parser for what people type, and the label a level is written back as."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from lector.retrieval.levels import Level, LevelInput, parse_level
from lector.retrieval.reading_types import Answer


@pytest.mark.parametrize(
    "typed, level",
    [
        ("auto", Level.AUTO),
        (" AUTO ", Level.AUTO),
        ("direct", Level.DIRECT),
        ("0", Level.DIRECT),
        (0, Level.DIRECT),
        ("1", Level.RETRIEVE),
        (1, Level.RETRIEVE),
        ("2", Level.READ),
        (3, Level.STEPWISE),
        (Level.READ, Level.READ),
        (Level.AUTO, Level.AUTO),
    ],
)
def test_parse_level_accepts_what_people_type(typed: object, level: Level) -> None:
    assert parse_level(typed) is level


@pytest.mark.parametrize("typed", ["7", 4, -1, "-1", "", "tools", "level 2", 2.0, True, None])
def test_parse_level_refuses_anything_else_clearly(typed: object) -> None:
    with pytest.raises(ValueError, match=r"unknown level .*: expected auto, direct, 0, 1, 2 or 3"):
        parse_level(typed)


class _Request(BaseModel):
    level: LevelInput = Level.AUTO


def test_a_level_in_a_request_is_parsed_and_written_back_as_typed() -> None:
    assert _Request.model_validate({"level": "direct"}).level is Level.DIRECT
    assert _Request.model_validate({"level": 2}).model_dump() == {"level": "2"}
    assert _Request().model_dump(mode="json") == {"level": "auto"}
    with pytest.raises(ValidationError, match="unknown level '9'"):
        _Request.model_validate({"level": "9"})


def test_an_answer_comes_from_one_level_and_writes_it_as_a_number() -> None:
    answer = Answer.model_validate({"answer": "green", "level": 2})
    assert answer.level is Level.READ and type(answer.to_json_dict()["level"]) is int
    with pytest.raises(ValidationError, match="one level, not auto"):
        Answer(answer="green", level=Level.AUTO)
