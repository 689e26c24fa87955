"""The OpenAPI 3 spec at ``/api/v1/openapi.json`` and Swagger UI at ``/api/v1/docs``.

Routes describe their own request, query and success models with quart-schema's
``document_*`` decorators (the models live in ``runlater.schemas``). What every route shares is
added here, from the route's method and path, so no route can forget it: bearer auth, 401, 413,
429 and 503; 404 when the path names a resource; for mutating routes the ``Idempotency-Key``
header and its 400/409/422 answers; 400/422 when a body or query is documented. Each error
answer's schema limits ``error.code`` to the codes listed for it. Route-specific codes are
declared with :func:`errors`, a 204 answer with :func:`no_content`, an optional body with
:func:`optional_body`.

Id path parameters (``*_id``) are UUIDs; query models become parameters (required ones marked,
no ``null``); each documented JSON body gets an ``example`` composed from its models' examples;
an answer's ``data.<name>_id`` is linked to the operations whose path takes ``{<name>_id}``.
"""

from __future__ import annotations

import copy
import importlib.util
import mimetypes
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import trio
from quart import Quart, Response
from quart_schema import (
    HttpSecurityScheme,
    Info,
    OpenAPIProvider,
    QuartSchema,
    hide,
)
from quart_schema.openapi import QUART_SCHEMA_REQUEST_ATTRIBUTE
from werkzeug.exceptions import NotFound
from werkzeug.routing import Rule
from werkzeug.security import safe_join

from runlater.schemas.common import ErrorResponse
from runlater.web.qstash import spec as qstash_spec
from runlater.web.spec_extras import COMPONENT_PREFIX, add_examples, add_links

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
    "bad_request": "malformed input (e.g. an Idempotency-Key of more than 255 characters)",
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
_WWW_AUTHENTICATE = {
    "WWW-Authenticate": {
        "description": "`Bearer`: how to authenticate",
        "schema": {"type": "string", "const": "Bearer"},
    }
}
# Every API request: its key, its rate, the database, and its size (any body is read first).
_API_CODES = frozenset({"unauthorized", "rate_limited", "unavailable", "payload_too_large"})
_IDEMPOTENCY_CODES = frozenset({"bad_request", "idempotency_conflict", "idempotency_mismatch"})
_ERRORS_ATTRIBUTE = "_runlater_error_codes"
_PUBLIC_ATTRIBUTE = "_runlater_public"
_NO_CONTENT_ATTRIBUTE = "_runlater_no_content"
_OPTIONAL_BODY_ATTRIBUTE = "_runlater_optional_body"
# Every error response refers to this one component (a client generator makes one error
# class); which codes a route can answer is in the response's description and its
# ``x-error-codes``.
ERROR_COMPONENT = "Error"
_ERROR_SCHEMA_REF = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}


def errors(*codes: str) -> Callable[[F], F]:
    """Declare the route-specific error codes a route can answer (beyond the shared ones)."""
    unknown = [code for code in codes if code not in ERROR_CODES]
    if unknown:
        raise ValueError(f"unknown error codes {unknown}")

    def mark(func: F) -> F:
        setattr(func, _ERRORS_ATTRIBUTE, {*getattr(func, _ERRORS_ATTRIBUTE, ()), *codes})
        return func

    return mark


def no_content(func: F) -> F:
    """Document a ``204`` answer without a body."""
    setattr(func, _NO_CONTENT_ATTRIBUTE, True)
    return func


def optional_body(func: F) -> F:
    """The documented request body may be left out (bodies are required otherwise)."""
    setattr(func, _OPTIONAL_BODY_ATTRIBUTE, True)
    return func


def public(func: F) -> F:
    """Mark a route as answering without an API key."""
    setattr(func, _PUBLIC_ATTRIBUTE, True)
    return func


def is_public(func: Callable[..., Any]) -> bool:
    return bool(getattr(func, _PUBLIC_ATTRIBUTE, False))


class RunlaterOpenAPI(OpenAPIProvider):
    """quart-schema's provider plus the conventions every Runlater route shares."""

    _built: dict[str, Any] | None = None

    def schema(self) -> dict[str, Any]:
        """The spec (a copy); built once, as routes do not change once the app serves."""
        if self._built is None:
            self._built = self._build()
        return copy.deepcopy(self._built)

    def _build(self) -> dict[str, Any]:
        spec = super().schema()
        spec["openapi"] = "3.1.0"
        components = spec["components"]["schemas"]
        error = ErrorResponse.model_json_schema(ref_template=COMPONENT_PREFIX + "{model}")
        defs = error.pop("$defs", {})
        defs["ErrorBody"]["properties"]["code"]["enum"] = sorted(ERROR_CODES)
        components.update(defs, **{ERROR_COMPONENT: error})
        components[qstash_spec.ERROR_COMPONENT] = qstash_spec.ERROR_SCHEMA
        spec["paths"] = dict(sorted(spec["paths"].items()))
        for operations in spec["paths"].values():
            for operation in operations.values():
                add_examples(operation, components)
        add_links(spec)
        _name_inline_schemas(spec)
        ready = {int(k): v for k, v in spec["paths"]["/health/ready"]["get"]["responses"].items()}
        ready[200]["description"] = "ready: the database answered within the deadline"
        ready[503]["description"] = "not ready: the database did not answer in time"
        ready[503]["content"]["application/json"]["example"] = {
            "status": "error",
            "database": "unreachable",
        }
        return _markdown(spec)

    def generate_rules(self) -> Iterable[Rule]:
        """The API's routes: the dashboard's pages (``web/pages``) are for browsers, not
        part of the API's contract."""
        return [r for r in super().generate_rules() if not r.endpoint.startswith("pages.")]

    def operation_id(self, method: str, path: str, func: Callable[..., Any]) -> str | None:
        name = func.__name__
        verb = method.lower()
        return name if name.startswith(f"{verb}_") else f"{verb}_{name}"

    def build_path_parameter(self, name: str, converter: Any) -> dict[str, Any]:
        parameter = super().build_path_parameter(name, converter)
        if name.endswith("_id"):
            parameter["schema"] = {"type": "string", "format": "uuid"}
            parameter["description"] = (
                "a UUID; an unknown, malformed or another organization's id is 404"
            )
        return parameter

    def build_querystring_parameters(self, model: Any) -> tuple[list[dict[str, Any]], dict]:
        """A query parameter is a string or absent, never null; required ones say so."""
        parameters, components = super().build_querystring_parameters(model)
        required = set(model.model_json_schema().get("required", ()))
        for parameter in parameters:
            parameter["schema"] = _without_null(parameter["schema"])
            parameter["required"] = parameter["name"] in required
            for key in ("title", "examples"):
                value = parameter["schema"].pop(key, None)
                if key == "examples" and value:
                    parameter["example"] = value[0]
        return parameters, components

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
        if path.startswith(qstash_spec.PREFIX):  # the QStash-compatible API: its own shapes
            return qstash_spec.complete(method, operation, func.__name__)
        operation = dict(operation)
        operation["parameters"] = list(operation.get("parameters", []))
        responses: dict[Any, Any] = dict(operation.get("responses", {}))
        if getattr(func, _NO_CONTENT_ATTRIBUTE, False):
            responses[204] = {}
        for status in [s for s in responses if int(s) == 204]:
            responses[status] = {"description": "done; no content"}
        if path.startswith(API_PREFIX):
            operation["tags"] = [path.removeprefix(API_PREFIX).split("/")[1]]
        codes = set(getattr(func, _ERRORS_ATTRIBUTE, ()))
        if is_public(func):
            operation["security"] = []
        elif path.startswith(API_PREFIX):
            codes |= _API_CODES
        if "{" in path:
            codes.add("not_found")
        if operation["parameters"] and any(p["in"] == "query" for p in operation["parameters"]):
            codes.add("validation_error")
        if method in MUTATING and path.startswith(API_PREFIX) and not is_public(func):
            codes |= _IDEMPOTENCY_CODES
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
            body = dict(operation["requestBody"])
            body["required"] = not getattr(func, _OPTIONAL_BODY_ATTRIBUTE, False)
            operation["requestBody"] = body
        by_status: dict[int, list[str]] = {}
        for code in sorted(codes):
            by_status.setdefault(ERROR_CODES[code], []).append(code)
        for status, status_codes in sorted(by_status.items()):
            described = "; ".join(f"`{c}`: {ERROR_MEANINGS[c]}" for c in status_codes)
            response: dict[str, Any] = {
                "description": described,
                "x-error-codes": status_codes,
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
            elif status == 401:
                response["headers"] = _WWW_AUTHENTICATE
            responses.setdefault(status, response)
        for status, response in responses.items():
            if int(status) in (429, 503):  # also where a route documents its own 503 model
                responses[status] = {**response, "headers": _RETRY_AFTER}
        operation["responses"] = dict(sorted(responses.items(), key=lambda item: int(item[0])))
        if not operation["parameters"]:
            del operation["parameters"]
        return operation


def _name_inline_schemas(spec: dict[str, Any]) -> None:
    """A request or response model written inline (quart-schema does so for a route's own
    models) becomes a component named by its title, referred to wherever it is used: a client
    generator then makes one class with the model's name, not one per route and status."""
    components = spec["components"]["schemas"]
    for operations in spec["paths"].values():
        for operation in operations.values():
            bodies = [operation.get("requestBody", {}), *operation.get("responses", {}).values()]
            for response in bodies:
                media = response.get("content", {}).get("application/json")
                schema = media.get("schema") if media else None
                if not isinstance(schema, dict) or not schema.get("title"):
                    continue
                title = schema["title"]
                if "$ref" in schema or schema.get("type") != "object":
                    continue
                name = re.sub(r"[^A-Za-z0-9._-]+", "_", title).strip("_")  # Page[X]: Page_X
                if components.setdefault(name, schema) == schema:
                    media["schema"] = {"$ref": f"{COMPONENT_PREFIX}{name}"}


def _markdown(value: Any) -> Any:
    """Docstrings use reStructuredText's double backticks; the spec's texts are Markdown."""
    if isinstance(value, dict):
        return {
            k: v.replace("``", "`")
            if k in ("description", "summary") and isinstance(v, str)
            else _markdown(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_markdown(v) for v in value]
    return value


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [X, null]`` (pydantic's ``X | None``) as ``X``, keeping the annotations."""
    branches = [b for b in schema.get("anyOf", ()) if b.get("type") != "null"]
    out = {k: v for k, v in schema.items() if k != "anyOf"}
    if len(branches) == 1 and len(schema["anyOf"]) == 2:
        out.update(branches[0])
    elif branches:
        out["anyOf"] = branches
    if out.get("default", "") is None:
        del out["default"]
    return out


# Swagger UI from the installed bundle: no CDN, and no validator badge (which would send the
# spec's URL to validator.swagger.io).
DOCS_PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Runlater API</title>
  <link rel="stylesheet" href="{DOCS_ASSETS}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{DOCS_ASSETS}/swagger-ui-bundle.js"></script>
  <script>
    SwaggerUIBundle({{
      url: "{SPEC_PATH}",
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis],
    }});
  </script>
</body>
</html>
"""


def swagger_ui_assets() -> Path:
    """The static files of Swagger UI 5 (OpenAPI 3.1 needs 5; 4.x refuses the spec with
    "does not specify a valid version field"), from the swagger-ui-py package, located
    without importing it (its framework adapters are not needed)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed: pip install swagger-ui-py")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def install(app: Quart, version: str) -> None:
    """Serve the spec and Swagger UI (its assets from the installed bundle, not a CDN)."""
    assets = swagger_ui_assets()
    QuartSchema(
        app,
        openapi_path=SPEC_PATH,
        swagger_ui_path=None,
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
    async def docs() -> Any:
        return Response(DOCS_PAGE, content_type="text/html; charset=utf-8")

    @hide
    async def docs_asset(name: str) -> Any:
        # Read whole (at most ~1 MB) rather than streamed: quart's streamed file bodies stall
        # under quart-trio's test client.
        path = safe_join(str(assets), name)
        if path is None or not await trio.Path(path).is_file():
            raise NotFound()
        kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
        response = Response(await trio.Path(path).read_bytes(), content_type=kind)
        response.headers["Cache-Control"] = "public, max-age=43200"
        return response

    app.add_url_rule(DOCS_PATH, "docs", docs)
    app.add_url_rule(f"{DOCS_PATH}/", "docs_slash", docs)  # the same page, as people type it
    app.add_url_rule(f"{DOCS_ASSETS}/<path:name>", "docs_asset", docs_asset)
