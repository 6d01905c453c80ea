"""A call's arguments converted to the types its tool's JSON schema declares, where nothing is lost.

Small models write "5" for an integer, "true" for a boolean, 5 for a string or a list as a JSON string. Those become
5, true, "5" and the list; an integer where the schema asks for a number becomes a float (5.0), the type a number is
read as. A key written with stray spaces or quotes (`"unit "`) goes under the key it stands for. An enum value that
is a member stays as it is; one that names a member in another spelling ("Celsius", 1 for "1") becomes that member.
An optional argument given as null (or as the text "null") where its schema does not allow null is left out (the
model had no value for it; the tool's default applies). So is a top-level optional argument that only repeats the
default its schema declares: a small model fills in every parameter it is shown, most often with that default, and
the tool does the same without it. Anything else is left alone, for the tool registry's validation to report to the
model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

_INTEGER = re.compile(r"\s*[+-]?\d{1,30}\s*")
_NUMBER = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*")
_NO = object()
"""A conversion that does not apply."""


_SCHEMA_WORDS = {"type", "properties", "required", "additionalProperties", "$schema", "title", "description"}


def coerce_arguments(args: dict[str, Any], schema: dict[str, Any] | None) -> dict[str, Any]:
    """`args` with every value the schema types converted to its declared type where that is lossless, and the
    schema's own keywords that a small model copies next to real arguments left out when none is a parameter."""
    if not schema:
        return args
    declared = schema.get("properties") or {}
    if isinstance(declared, dict) and any(k in declared for k in args):
        args = {k: v for k, v in args.items() if k in declared or k not in _SCHEMA_WORDS}
    coerced = coerce_value(args, schema)
    return without_defaults(coerced, schema) if isinstance(coerced, dict) else args


def without_defaults(args: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """`args` without the optional ones whose value is the default the schema declares for them."""
    declared = schema.get("properties")
    if not isinstance(declared, dict):
        return args
    required = schema.get("required") or []
    return {k: v for k, v in args.items() if k in required or not _is_default(v, declared.get(k))}


def _is_default(value: Any, prop: Any) -> bool:
    if not isinstance(prop, dict) or "default" not in prop:
        return False
    default = prop["default"]
    if isinstance(value, str) and isinstance(default, str):
        return value.strip().casefold() == default.strip().casefold()
    return value == default and isinstance(value, bool) == isinstance(default, bool)


def coerce_value(value: Any, schema: Any) -> Any:
    if not isinstance(schema, dict):
        return value
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return _enum_member(value, enum)
    declared = _declared_types(schema)
    if declared and not any(_has_type(value, t) for t in declared):
        for name in declared:
            converted = _CONVERTERS.get(name, _never)(value)
            if converted is not _NO:
                value = converted
                break
    if "number" in declared and "integer" not in declared and type(value) is int and abs(value) < 2**53:
        return float(value)
    return _coerce_inside(value, schema)


def _declared_types(schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [k for k in kind if isinstance(k, str)]
    return []


def _has_type(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return name == "boolean"
    checks: dict[str, Callable[[Any], bool]] = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int),
        "number": lambda v: isinstance(v, int | float),
        "boolean": lambda v: False,
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
        "null": lambda v: v is None,
    }
    return checks.get(name, lambda v: True)(value)


def _coerce_inside(value: Any, schema: dict[str, Any]) -> Any:
    props = schema.get("properties")
    if isinstance(value, dict) and isinstance(props, dict):
        required = schema.get("required") or []
        value = _declared_keys(value, props)
        return {
            k: coerce_value(v, props.get(k))
            for k, v in value.items()
            if not (_is_null(v, props.get(k)) and k not in required and _refuses_null(props.get(k)))
        }
    items = schema.get("items")
    if isinstance(value, list) and isinstance(items, dict):
        return [coerce_value(v, items) for v in value]
    return value


def _declared_keys(args: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
    """`args` with a key the model wrote with stray spaces or quotes (`"unit "`, `'unit'`) under the declared key
    it stands for, where that key is not given too."""
    out: dict[str, Any] = {}
    for key, v in args.items():
        bare = key.strip().strip("'\":").strip() if isinstance(key, str) else key
        out[bare if key not in props and bare in props and bare not in args else key] = v
    return out


def _is_null(value: Any, schema: Any) -> bool:
    """None, or null written as text ("null", "None") where the schema does not list that text as a choice."""
    if isinstance(value, str) and value.strip().casefold() in ("null", "none"):
        enum = schema.get("enum") if isinstance(schema, dict) else None
        return not (isinstance(enum, list) and value in enum)
    return value is None


def _refuses_null(schema: Any) -> bool:
    """A property whose schema declares a type other than null: null there means the model had no value."""
    return isinstance(schema, dict) and bool(_declared_types(schema)) and "null" not in _declared_types(schema)


def _enum_member(value: Any, enum: list[Any]) -> Any:
    if any(value == m and type(value) is type(m) for m in enum):
        return value
    same_text = [m for m in enum if _as_text(m) == _as_text(value)]
    if len(same_text) == 1:
        return same_text[0]
    folded = [m for m in enum if isinstance(m, str) and isinstance(value, str) and m.casefold() == value.casefold()]
    return folded[0] if len(folded) == 1 else value


def _as_text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float | str):
        return str(value).strip()
    return None


def _to_integer(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value) and float(value).is_integer() and abs(float(value)) < 2**53:
        return int(float(value))
    return _NO


def _to_number(value: Any) -> Any:
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        return float(value)
    return _NO


def _to_boolean(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return _NO


def _to_string(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return _NO


def _parsed_as(kind: type) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if not isinstance(value, str):
            return _NO
        try:
            parsed = json.loads(value)
        except ValueError:
            return _NO
        return parsed if isinstance(parsed, kind) else _NO

    return convert


def _never(value: Any) -> Any:
    return _NO


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "integer": _to_integer,
    "number": _to_number,
    "boolean": _to_boolean,
    "string": _to_string,
    "array": _parsed_as(list),
    "object": _parsed_as(dict),
}
