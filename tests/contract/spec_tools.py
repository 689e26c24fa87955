"""Reading the served OpenAPI spec in tests: operations, error codes, schemas and examples."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema_rs

API = "/api/v1"
COMPONENTS = "#/components/schemas/"

# The error table of docs/api.md ("Conventions"): status by code.
CONTRACT_ERROR_CODES: dict[str, int] = {
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


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path, operation) of every operation in the spec."""
    return [
        (method.upper(), path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]


def api_operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """The operations that act inside an organization (under /api/v1, with a key)."""
    return [
        (method, path, op)
        for method, path, op in operations(spec)
        if path.startswith(API) and op.get("security") != []
    ]


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` itself, or the component it refers to."""
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].removeprefix(COMPONENTS)]
    return schema


def error_codes(spec: dict[str, Any], operation: dict[str, Any]) -> dict[str, int]:
    """The error codes an operation documents, with their status: each 4xx/5xx response's
    ``x-error-codes``, every one of them a value of the shared ``Error`` schema's code enum."""
    shared = resolve(spec, {"$ref": f"{COMPONENTS}ErrorBody"})["properties"]["code"]["enum"]
    found: dict[str, int] = {}
    for status, response in operation["responses"].items():
        if int(status) < 400 or "x-error-codes" not in response:
            continue  # a success, or a route's own model (/health/ready's 503)
        schema = response["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"{COMPONENTS}Error"}, (status, schema)
        for value in response["x-error-codes"]:
            assert value in shared, value
            found[value] = int(status)
    return found


def json_bodies(operation: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, media type object) of each JSON request and response body."""
    request = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if request is not None:
        yield "request", request
    for status, response in operation["responses"].items():
        media = response.get("content", {}).get("application/json")
        if media is not None:
            yield status, media


def schema_errors(spec: dict[str, Any], schema: dict[str, Any], instance: Any) -> list[str]:
    """Why ``instance`` does not match ``schema`` (whose refs point into the spec), formats too."""
    rooted = {**schema, "components": spec["components"]}
    validator = jsonschema_rs.Draft202012Validator(rooted, validate_formats=True)
    return [f"{error.instance_path}: {error.message}" for error in validator.iter_errors(instance)]


def data_models(spec: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """The named models a body is made of: the schema's own ref, each ref of a union, or the
    ref inside an envelope's ``data`` (``Data[T]``, ``Page[T]``)."""
    if "$ref" in schema:
        envelope = resolve(spec, schema).get("properties", {}).get("data")
        if envelope is not None:  # a named envelope: its data is the model
            return data_models(spec, envelope.get("items", envelope))
        return [schema["$ref"].removeprefix(COMPONENTS)]
    if "anyOf" in schema:
        return [name for branch in schema["anyOf"] for name in data_models(spec, branch)]
    data = schema.get("properties", {}).get("data")
    if data is not None:
        return data_models(spec, data.get("items", data))
    return []
