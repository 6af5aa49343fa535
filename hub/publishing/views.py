"""A holder record as an answer of the API (a look-up, a page of the feed, a granted tap).

Not a `ClosedView`: its whole schema is the registry's `holder-record` version it names, and
which of its fields appear is the department's agreement, so the model states the envelope
and leaves the rest open.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hub.db import Rfc3339


class RecordEvent(BaseModel):
    """What a holder record reports: a permit event, or the look-up or tap that asked for it."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, description="The event's number; lookup-… or tap-… otherwise")
    type: str = Field(pattern=r"^[a-z]+(?:-[a-z]+)*$", description="issue, endorse, …, lookup, tap")
    at: Rfc3339


class HolderRecord(BaseModel):
    """A holder record as your department's agreement lets it see it. Its whole schema is the
    registry's `holder-record` version it names (`$schema`, `schema_version`: GET
    /schemas/v1/subjects/holder-record/versions/{version}); which fields of `permit` and
    `holder` appear is your agreement's allow-list."""

    model_config = ConfigDict(extra="allow")

    schema_uri: str = Field(alias="$schema", min_length=1)
    schema_version: int = Field(ge=1)
    event: RecordEvent
    permit: dict[str, Any] = Field(default_factory=dict, description="The agreed permit fields")
    holder: dict[str, Any] = Field(default_factory=dict, description="The agreed holder fields")
