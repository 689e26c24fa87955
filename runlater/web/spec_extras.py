"""Finishing touches on the generated spec: an ``example`` for each JSON body, composed from the
examples of the models it is made of, and links from answers to the operations their ids lead
to."""

from __future__ import annotations

from typing import Any

COMPONENT_PREFIX = "#/components/schemas/"

_MISSING = object()


def compose_example(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> Any:
    """An instance of ``schema`` built from the examples of the models it is made of.

    Models carry their own examples; envelopes (``Data[T]``, ``Page[T]``) get theirs from T's.
    Plain scalars without an example fall back to their const/enum/default/minimum, or to
    ``False``/``0``; a string without any of those is missing (so is the whole example).
    """
    if depth > 20:
        return _MISSING
    if "example" in schema:
        return schema["example"]
    if schema.get("examples"):
        return schema["examples"][0]
    if "$ref" in schema:
        target = components.get(schema["$ref"].removeprefix(COMPONENT_PREFIX), {})
        return compose_example(target, components, depth + 1)
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        for branch in schema.get(key, ()):
            if branch.get("type") != "null":
                found = compose_example(branch, components, depth + 1)
                if found is not _MISSING:
                    return found
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        out = {}
        for name, prop in schema.get("properties", {}).items():
            value = compose_example(prop, components, depth + 1)
            if value is _MISSING:
                if name in schema.get("required", ()):
                    return _MISSING
                continue
            out[name] = value
        return out
    if kind == "array":
        item = compose_example(schema.get("items", {}), components, depth + 1)
        return [] if item is _MISSING else [item]
    if kind == "boolean":
        return False
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "string" and schema.get("format") == "date-time":
        return "2026-01-01T09:00:00.000Z"
    return _MISSING


def add_links(spec: dict[str, Any]) -> None:
    """Link each answer's ``data.<name>_id`` to the operations whose path takes ``{<name>_id}``
    (e.g. a queued task's ``execution_id`` to ``GET /executions/{execution_id}``), so clients
    and stateful testers can follow them."""
    components = spec["components"]["schemas"]
    takes: dict[str, list[str]] = {}
    for operations in spec["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", ()):
                if parameter["in"] == "path" and parameter["name"].endswith("_id"):
                    takes.setdefault(parameter["name"], []).append(operation["operationId"])
    for operations in spec["paths"].values():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                media = response.get("content", {}).get("application/json")
                if not 200 <= int(status) < 300 or media is None:
                    continue
                data = _resolved(media["schema"], components).get("properties", {}).get("data")
                fields = _resolved(data or {}, components).get("properties", {})
                links = {
                    f"{target}.{name}": {
                        "operationId": target,
                        "parameters": {name: f"$response.body#/data/{name}"},
                    }
                    for name in sorted(fields)
                    for target in takes.get(name, ())
                }
                if links:
                    response["links"] = links


def _resolved(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components.get(schema["$ref"].removeprefix(COMPONENT_PREFIX), {})
    return schema


def add_examples(operation: dict[str, Any], components: dict[str, Any]) -> None:
    """Give each JSON request and response body of ``operation`` an ``example``."""
    bodies = [operation.get("requestBody", {}), *operation.get("responses", {}).values()]
    for body in bodies:
        media = body.get("content", {}).get("application/json")
        if media is None or "example" in media:
            continue
        example = compose_example(media["schema"], components)
        if example is not _MISSING:
            media["example"] = example
