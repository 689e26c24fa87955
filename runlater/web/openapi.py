"""The OpenAPI 3 spec at ``/api/v1/openapi.json`` and Swagger UI at ``/api/v1/docs``.

Routes describe their own request, query and success models with quart-schema's
``document_*`` decorators (the models live in ``runlater.schemas``). What every route shares is
added here, from the route's method and path, so no route can forget it: bearer auth, 401, 429
and 503; 404 when the path names a resource; for mutating routes the ``Idempotency-Key`` header,
409/422 idempotency answers and 413; 400/422 when a body or query is documented. Route-specific
error codes are declared with :func:`errors`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import swagger_ui_bundle
from quart import Quart, send_from_directory
from quart_schema import (
    HttpSecurityScheme,
    Info,
    OpenAPIProvider,
    QuartSchema,
    hide,
)
from quart_schema.openapi import QUART_SCHEMA_REQUEST_ATTRIBUTE
from werkzeug.routing import Rule

from runlater.schemas.common import ErrorResponse

F = TypeVar("F", bound=Callable[..., Any])

API_PREFIX = "/api/v1"
SPEC_PATH = f"{API_PREFIX}/openapi.json"
DOCS_PATH = f"{API_PREFIX}/docs"
DOCS_ASSETS = f"{DOCS_PATH}/assets"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Every error code of the contract (api.md), by status.
ERROR_CODES: dict[str, int] = {
    "bad_request": 400,
    "invalid_json": 400,
    "invalid_delay": 400,
    "invalid_run_at": 400,
    "unauthorized": 401,
    "not_found": 404,
    "idempotency_conflict": 409,
    "payload_too_large": 413,
    "validation_error": 422,
    "limit_exceeded": 422,
    "url_not_allowed": 422,
    "idempotency_mismatch": 422,
    "rate_limited": 429,
    "unavailable": 503,
}
ERROR_MEANINGS: dict[str, str] = {
    "bad_request": "malformed input",
    "invalid_json": "the body is not JSON or not a JSON object",
    "invalid_delay": "`delay` is not like '30s', '5m', '2h', '1d' or seconds",
    "invalid_run_at": "`run_at` is not an ISO-8601 time with offset, or too far in the past",
    "unauthorized": "missing, malformed, unknown or revoked API key",
    "not_found": "unknown id, another organization's id, or a malformed id",
    "idempotency_conflict": "a request with the same Idempotency-Key is still in progress",
    "payload_too_large": "the request body is over its size limit",
    "validation_error": "a field is missing, of the wrong type or out of range (see details)",
    "limit_exceeded": "the organization's plan does not allow this",
    "url_not_allowed": "a URL points at a private, loopback or metadata address",
    "idempotency_mismatch": "the Idempotency-Key was used before with a different body",
    "rate_limited": "too many requests; wait for Retry-After seconds",
    "unavailable": "the database is unreachable; retry after Retry-After seconds",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before retrying",
        "schema": {"type": "integer", "minimum": 1},
    }
}
_ERRORS_ATTRIBUTE = "_runlater_error_codes"
_PUBLIC_ATTRIBUTE = "_runlater_public"
_ERROR_SCHEMA_REF = {"$ref": "#/components/schemas/ErrorResponse"}


def errors(*codes: str) -> Callable[[F], F]:
    """Declare the route-specific error codes a route can answer (beyond the shared ones)."""
    unknown = [code for code in codes if code not in ERROR_CODES]
    if unknown:
        raise ValueError(f"unknown error codes {unknown}")

    def mark(func: F) -> F:
        setattr(func, _ERRORS_ATTRIBUTE, {*getattr(func, _ERRORS_ATTRIBUTE, ()), *codes})
        return func

    return mark


def public(func: F) -> F:
    """Mark a route as answering without an API key."""
    setattr(func, _PUBLIC_ATTRIBUTE, True)
    return func


def is_public(func: Callable[..., Any]) -> bool:
    return bool(getattr(func, _PUBLIC_ATTRIBUTE, False))


class RunlaterOpenAPI(OpenAPIProvider):
    """quart-schema's provider plus the conventions every Runlater route shares."""

    def schema(self) -> dict[str, Any]:
        spec = super().schema()
        spec["openapi"] = "3.1.0"
        error = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
        spec["components"]["schemas"].update(error.pop("$defs", {}), ErrorResponse=error)
        spec["paths"] = dict(sorted(spec["paths"].items()))
        return spec

    def operation_id(self, method: str, path: str, func: Callable[..., Any]) -> str | None:
        name = func.__name__
        verb = method.lower()
        return name if name.startswith(f"{verb}_") else f"{verb}_{name}"

    def build_path_parameter(self, name: str, converter: Any) -> dict[str, Any]:
        parameter = super().build_path_parameter(name, converter)
        if name.endswith("_id"):
            parameter["description"] = "a UUID; an unknown or another organization's id is 404"
        return parameter

    def build_paths(self, rule: Rule) -> tuple[dict, dict]:
        paths, components = super().build_paths(rule)
        func = self._app.view_functions[rule.endpoint]
        for path, operations in paths.items():
            for method, operation in operations.items():
                operations[method] = self._complete(path, method.upper(), operation, func)
        return paths, components

    def _complete(
        self, path: str, method: str, operation: dict[str, Any], func: Callable[..., Any]
    ) -> dict[str, Any]:
        operation = dict(operation)
        operation["parameters"] = list(operation.get("parameters", []))
        responses: dict[Any, Any] = dict(operation.get("responses", {}))
        for status in [s for s in responses if int(s) == 204]:
            responses[status] = {"description": "done; no content"}
        codes = set(getattr(func, _ERRORS_ATTRIBUTE, ()))
        if is_public(func):
            operation["security"] = []
        elif path.startswith(API_PREFIX):
            codes |= {"unauthorized", "rate_limited", "unavailable"}
        if "{" in path:
            codes.add("not_found")
        if operation["parameters"] and any(p["in"] == "query" for p in operation["parameters"]):
            codes.add("validation_error")
        if method in MUTATING and path.startswith(API_PREFIX) and not is_public(func):
            codes |= {"idempotency_conflict", "idempotency_mismatch", "payload_too_large"}
            operation["parameters"].append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": (
                        "repeat-safe key (per organization, kept 24 h): a repeat returns the "
                        "first response without acting again"
                    ),
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                }
            )
        if getattr(func, QUART_SCHEMA_REQUEST_ATTRIBUTE, None) is not None:
            codes |= {"invalid_json", "validation_error"}
        by_status: dict[int, list[str]] = {}
        for code in sorted(codes):
            by_status.setdefault(ERROR_CODES[code], []).append(code)
        for status, status_codes in sorted(by_status.items()):
            described = "; ".join(f"`{c}`: {ERROR_MEANINGS[c]}" for c in status_codes)
            response: dict[str, Any] = {
                "description": described,
                "content": {
                    "application/json": {
                        "schema": _ERROR_SCHEMA_REF,
                        "example": {
                            "error": {
                                "code": status_codes[0],
                                "message": ERROR_MEANINGS[status_codes[0]],
                            }
                        },
                    }
                },
            }
            if status in (429, 503):
                response["headers"] = _RETRY_AFTER
            responses.setdefault(status, response)
        operation["responses"] = dict(sorted(responses.items(), key=lambda item: int(item[0])))
        if not operation["parameters"]:
            del operation["parameters"]
        return operation


def install(app: Quart, version: str) -> None:
    """Serve the spec and Swagger UI (its assets from the installed bundle, not a CDN)."""
    assets = Path(swagger_ui_bundle.swagger_ui_path)
    app.config["QUART_SCHEMA_SWAGGER_JS_URL"] = f"{DOCS_ASSETS}/swagger-ui-bundle.js"
    app.config["QUART_SCHEMA_SWAGGER_CSS_URL"] = f"{DOCS_ASSETS}/swagger-ui.css"
    QuartSchema(
        app,
        openapi_path=SPEC_PATH,
        swagger_ui_path=DOCS_PATH,
        redoc_ui_path=None,
        scalar_ui_path=None,
        info=Info(
            title="Runlater API",
            version=version,
            description=(
                "Delayed HTTP tasks, cron jobs, queues and webhooks. Authenticate with "
                "`Authorization: Bearer <api key>`."
            ),
        ),
        security_schemes={"bearer": HttpSecurityScheme(scheme="bearer")},
        security=[{"bearer": []}],
        openapi_provider_class=RunlaterOpenAPI,
    )

    @hide
    async def docs_asset(name: str) -> Any:
        return await send_from_directory(assets, name)

    app.add_url_rule(f"{DOCS_ASSETS}/<path:name>", "docs_asset", docs_asset)
