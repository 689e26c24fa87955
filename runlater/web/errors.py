"""The API's one error shape: ``{"error": {"code", "message", "details"?}}``."""

from __future__ import annotations

from typing import Any

from quart import Response, jsonify


class ApiError(Exception):
    """Raised by route handlers; rendered by the app's error handler."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    payload: dict[str, Any] = {"code": code, "message": message}
    if details:
        payload["details"] = details
    response = jsonify({"error": payload})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def not_found(what: str = "resource") -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def validation_error(details: dict[str, list[str]], message: str = "invalid input") -> ApiError:
    return ApiError(422, "validation_error", message, details)
