"""Queue names and the OpenAPI models of ``/api/v1/queues``."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

# A name that can be written in a URL path segment as it is: letters, digits and ``._:-``,
# starting with a letter or digit, at most 200 characters.
QUEUE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$"
QUEUE_NAME_HELP = (
    "must be 1-200 characters: letters, digits and . _ : -, starting with a letter or digit"
)
_QUEUE_NAME = re.compile(QUEUE_NAME_PATTERN)


def check_queue_name(value: str | None) -> str | None:
    """The name unchanged, or ValueError with :data:`QUEUE_NAME_HELP`."""
    if value is not None and not _QUEUE_NAME.fullmatch(value):
        raise ValueError(QUEUE_NAME_HELP)
    return value


class Queue(BaseModel):
    """A named queue of the organization: it runs one execution at a time, oldest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "emails", "paused": False, "pending": 12, "running": 1}]
        }
    )

    name: str = Field(description="the `queue` its tasks name")
    paused: bool = Field(description="a paused queue starts nothing; running work finishes")
    pending: int = Field(ge=0, description="executions waiting in the queue")
    running: int = Field(ge=0, le=1, description="executions running now (at most one)")


class QueueState(BaseModel):
    """A queue's name and whether it is paused, after a pause or resume."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "emails", "paused": True}]})

    name: str
    paused: bool
