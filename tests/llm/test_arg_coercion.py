"""Arguments converted to the types their schema declares, only where nothing is lost (llm.arg_coercion)."""

from __future__ import annotations

from typing import Any

import pytest

from lector.llm.arg_coercion import coerce_arguments, coerce_value

INTEGER = {"type": "integer"}
NUMBER = {"type": "number"}
BOOLEAN = {"type": "boolean"}
STRING = {"type": "string"}
UNIT = {"type": "string", "enum": ["celsius", "fahrenheit"]}
LEVEL = {"type": "string", "enum": ["1", "2"]}
NUMS = {"type": "array", "items": INTEGER}

# (id, schema, value given, value after)
CASES: list[tuple[str, dict[str, Any], Any, Any]] = [
    ("int-from-string", INTEGER, "5", 5),
    ("int-from-signed-string", INTEGER, " -12 ", -12),
    ("int-from-whole-float", INTEGER, 5.0, 5),
    ("int-from-whole-float-string", INTEGER, "7.0", 7),
    ("int-from-fraction-stays", INTEGER, 5.5, 5.5),
    ("int-from-fraction-string-stays", INTEGER, "5.5", "5.5"),
    ("int-from-word-stays", INTEGER, "five", "five"),
    ("int-from-bool-stays", INTEGER, True, True),
    ("number-from-string", NUMBER, "3.0", 3.0),
    ("number-from-int-string", NUMBER, "3", 3.0),
    ("number-from-exponent", NUMBER, "1e3", 1000.0),
    ("number-int-is-read-as-a-float", NUMBER, 3, 3.0),
    ("number-list-items-too", {"type": "array", "items": NUMBER}, [133, 34], [133.0, 34.0]),
    ("number-or-integer-keeps-an-int", {"type": ["number", "integer"]}, 3, 3),
    ("number-from-word-stays", NUMBER, "3 apples", "3 apples"),
    ("bool-from-string", BOOLEAN, "true", True),
    ("bool-from-capitalised", BOOLEAN, "False", False),
    ("bool-from-int-stays", BOOLEAN, 1, 1),
    ("bool-from-yes-stays", BOOLEAN, "yes", "yes"),
    ("string-from-int", STRING, 5, "5"),
    ("string-from-float", STRING, 2.5, "2.5"),
    ("string-from-bool-stays", STRING, True, True),
    ("string-from-list-stays", STRING, [1], [1]),
    ("string-stays", STRING, "5", "5"),
    ("enum-member-exact", UNIT, "celsius", "celsius"),
    ("enum-other-case", UNIT, "Celsius", "celsius"),
    ("enum-not-a-member-stays", UNIT, "kelvin", "kelvin"),
    ("enum-number-names-a-member", LEVEL, 1, "1"),
    ("array-from-json-string", NUMS, "[1, 2]", [1, 2]),
    ("array-items-converted", NUMS, ["1", 2.0, "x"], [1, 2, "x"]),
    ("array-from-word-stays", NUMS, "1, 2", "1, 2"),
    ("object-from-json-string", {"type": "object", "properties": {"n": INTEGER}}, '{"n": "4"}', {"n": 4}),
    ("nullable-int", {"type": ["integer", "null"]}, "8", 8),
    ("nullable-null-stays", {"type": ["integer", "null"]}, None, None),
    ("untyped-stays", {"description": "anything"}, "5", "5"),
    ("any-of-stays", {"anyOf": [INTEGER, STRING]}, "5", "5"),
]


@pytest.mark.parametrize(("schema", "given", "after"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_coerce_value(schema: dict[str, Any], given: Any, after: Any) -> None:
    got = coerce_value(given, schema)
    assert got == after and type(got) is type(after)


def test_arguments_by_their_properties_and_nested() -> None:
    schema = {
        "type": "object",
        "properties": {
            "count": INTEGER,
            "flags": {"type": "object", "properties": {"dry": BOOLEAN}},
            "unit": UNIT,
        },
    }
    args = {"count": "3", "flags": {"dry": "true"}, "unit": "Fahrenheit", "extra": "7"}
    assert coerce_arguments(args, schema) == {"count": 3, "flags": {"dry": True}, "unit": "fahrenheit", "extra": "7"}
    assert coerce_arguments(args, None) == args


def test_an_optional_argument_given_as_null_is_left_out() -> None:
    schema = {
        "type": "object",
        "properties": {"day": STRING, "note": {"type": ["string", "null"]}, "city": STRING, "any": {}},
        "required": ["city"],
    }
    args = {"day": None, "note": None, "city": None, "any": None}
    assert coerce_arguments(args, schema) == {"note": None, "city": None, "any": None}


def test_an_optional_argument_that_repeats_its_default_is_left_out() -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "default": "Paris"},
            "unit": {**UNIT, "default": "celsius"},
            "days": {"type": "integer", "default": 1},
            "hourly": {"type": "boolean", "default": False},
            "lang": {"type": "string", "default": "en"},
            "body": {"type": "object", "properties": {"mode": {"type": "string", "default": "cool"}}},
        },
        "required": ["city"],
    }
    args = {"city": "Paris", "unit": "Celsius", "days": "1", "hourly": False, "lang": "de", "body": {"mode": "cool"}}
    assert coerce_arguments(args, schema) == {"city": "Paris", "lang": "de", "body": {"mode": "cool"}}
    assert coerce_arguments({"city": "Rome", "days": 0, "hourly": 0}, schema) == {
        "city": "Rome",
        "days": 0,
        "hourly": 0,
    }


def test_a_key_with_stray_spaces_or_quotes_goes_under_the_declared_key() -> None:
    schema = {"type": "object", "properties": {"mode": {"type": "string"}, "unit": {"type": "string"}}}
    assert coerce_arguments({"mode ": "COOL", "'unit'": "C"}, schema) == {"mode": "COOL", "unit": "C"}
    assert coerce_arguments({"mode": "A", "mode ": "B"}, schema) == {"mode": "A", "mode ": "B"}, "both given: kept"


def test_an_optional_null_written_as_text_is_left_out_unless_it_is_a_choice() -> None:
    schema = {
        "type": "object",
        "properties": {"time": {"type": "string"}, "pick": {"type": "string", "enum": ["None", "Some"]}},
        "required": [],
    }
    assert coerce_arguments({"time": "null", "pick": "None"}, schema) == {"pick": "None"}
    assert coerce_arguments({"time": "null"}, {**schema, "required": ["time"]}) == {"time": "null"}
