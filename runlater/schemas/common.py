"""Shapes shared by every API resource: the error envelope, ``{"data": ...}`` and list pages.

These models describe responses for the OpenAPI spec; handlers build the JSON themselves.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class ErrorBody(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. validation_error")
    message: str = Field(description="a human sentence")
    details: dict[str, list[str]] | None = Field(
        default=None, description="problems keyed by field name"
    )


class ErrorResponse(BaseModel):
    """An error; ``error.code`` says which."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "validation_error",
                        "message": "invalid input",
                        "details": {"url": ["is required"]},
                    }
                }
            ]
        }
    )

    error: ErrorBody


class Data(BaseModel, Generic[T]):
    """``{"data": ...}``"""

    data: T


class FieldWarning(BaseModel):
    """Something accepted that may not work as meant, e.g. a host name that does not resolve."""

    field: str = Field(description="the field's path in the request", examples=["url"])
    message: str


def warnings_field() -> Any:
    """The optional ``warnings`` of a write's answer (absent when there are none)."""
    return Field(
        default=None,
        description="present only when something accepted may not work as meant: a URL whose "
        "host name does not resolve now (each delivery resolves it again)",
    )


class DataWarnings(BaseModel, Generic[T]):
    """``{"data": ..., "warnings"?: [...]}``"""

    data: T
    warnings: list[FieldWarning] | None = warnings_field()


class DataMessage(BaseModel, Generic[T]):
    """``{"data": ..., "message": ...}``"""

    data: T
    message: str


class Page(BaseModel, Generic[T]):
    """One page of a list: ``?limit=`` (1-100, default 50) and ``?offset=``."""

    data: list[T]
    has_more: bool = Field(description="whether items follow this page", examples=[False])
    limit: int = Field(ge=1, le=100, examples=[50])
    offset: int = Field(ge=0, examples=[0])


class PageQuery(BaseModel):
    limit: int = Field(default=50, ge=1, le=100, description="items per page")
    offset: int = Field(default=0, ge=0, le=10_000_000, description="items to skip")


class Health(BaseModel):
    """Liveness: the process answers (always 200). ``database`` is the last readiness probe's
    answer, reported without waiting: ``connected``, ``unreachable``, or ``unknown`` before the
    first probe."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "ok", "database": "connected"}]}
    )

    status: str = Field(examples=["ok"])
    database: str = Field(examples=["connected"])


class Readiness(BaseModel):
    """Readiness: ``ok``/``connected`` when the database answered within its deadline (1 s in
    all), else ``error``/``unreachable`` with 503."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "ok", "database": "connected"},
                {"status": "error", "database": "unreachable"},
            ]
        }
    )

    status: str = Field(examples=["ok"])
    database: str = Field(examples=["connected"])
