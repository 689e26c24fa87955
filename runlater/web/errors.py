"""The API's one error shape: ``{"error": {"code", "message", "details"?}}``."""

from __future__ import annotations

from typing import Any

from quart import Response, jsonify

from runlater.errors import InvalidInput, invalid

# The HTTP status of each code an InvalidInput carries (api.md); any other code is 422.
INPUT_STATUS = {
    "invalid_json": 400,
    "invalid_delay": 400,
    "invalid_run_at": 400,
    "payload_too_large": 413,
}


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


def input_status(exc: InvalidInput) -> int:
    return INPUT_STATUS.get(exc.code, 422)


# Route handlers refuse query parameters the same way the schemas refuse fields.
validation_error = invalid
