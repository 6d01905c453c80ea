"""A chat session's settings: what the page may set, checked where a request comes in.

The store keeps them as the plain dict `stored()` gives; `from_stored` reads that dict back.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer, field_validator

from lector.retrieval.levels import Level, parse_level

ChatLevel = Level | Literal["tools"]
"""A reading level for questions about the session's documents, or "tools": the planner with the server's tools
even when documents are attached."""


class ChatSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, max_length=200, description="Model spec; none: the server's model")
    level: ChatLevel = Field(default=Level.AUTO, description='"auto", "direct", "0" to "3", or "tools"')
    system: str | None = Field(default=None, max_length=20_000, description="System prompt for the tools planner")

    @field_validator("level", mode="before")
    @classmethod
    def _parse_level(cls, value: object) -> ChatLevel:
        if value == "tools":
            return "tools"
        try:
            return parse_level(value)
        except ValueError:
            raise ValueError(f"unknown level {value!r}: expected auto, direct, 0, 1, 2, 3 or tools") from None

    @field_serializer("level")
    def _level_label(self, level: ChatLevel) -> str:
        return level.label if isinstance(level, Level) else level

    def updated(self, change: ChatSettings | None) -> ChatSettings:
        """These settings with the fields `change` sets replaced."""
        if change is None:
            return self
        return self.model_copy(update={name: getattr(change, name) for name in change.model_fields_set})

    def stored(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> ChatSettings:
        """Settings read back from the store. Sessions saved before settings were checked may hold any key or
        value: unknown keys and invalid values are left out (their defaults apply)."""
        known = {k: v for k, v in data.items() if k in cls.model_fields}
        try:
            return cls.model_validate(known)
        except ValidationError as exc:
            invalid = {error["loc"][0] for error in exc.errors() if error["loc"]}
            return cls.model_validate({k: v for k, v in known.items() if k not in invalid})
